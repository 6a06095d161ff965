"""WhatsApp Cloud API webhooks: signature check and mapping to convmem events. Pure
functions; the HTTP route is a thin adapter around them.

The envelope (entry, changes, value, metadata, contacts, messages, statuses, ids, senders,
timestamps) is read strictly: a part of the wrong JSON type is a WebhookError naming its path
(`entry[0].changes[0].value.messages[3].id`), answered 400: that body is not a webhook. What
Meta adds without notice is never refused: a change field, status value or message type we do
not know is kept raw in metadata or skipped and reported in `Delivery.unknown` (the route
counts and logs it), and the rest of the delivery is recorded. A message's own body is read
leniently (services.ingest.whatsapp_content). Every event is then checked against its
contract, so what this accepts can be recorded."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, get_args

from pydantic import ValidationError

from contracts import DeliveryStatusChanged, MessageAmended, MessageReceived, identity
from contracts.events import DeliveryStatus
from contracts.values import storable_text
from services.ingest.whatsapp_content import AMENDMENTS, d, edit_text, raw, referral, render, s

SIGNATURE_HEADER = "X-Hub-Signature-256"
_STATUSES: frozenset[str] = frozenset(get_args(DeliveryStatus))
# The change fields that carry conversations; any other (calls, account or template updates,
# history sync, ...) is acknowledged and reported as unknown, never read as messages.
MESSAGES_FIELD, ECHOES_FIELD = "messages", "smb_message_echoes"


class WebhookError(ValueError):
    """The payload is signed but not a WhatsApp webhook we can read."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def signature_valid(app_secret: bytes, raw_body: bytes, header: str | None) -> bool:
    """HMAC-SHA256 of the raw bytes, compared in constant time (before any parsing). A header
    that is not ASCII cannot be a hex digest: refused before comparing."""
    if not header or not header.isascii() or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret, raw_body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower().encode())


# ----------------------------------------------------------------- reading the envelope


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookError(path, "must be an object")
    return value


def _objects(value: Any, path: str) -> list[dict[str, Any]]:
    """A list of objects; absent or null is an empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookError(path, "must be a list")
    return [_object(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _text(value: Any, path: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise WebhookError(path, "must be a non-empty string")
    try:
        return storable_text(value)  # ids are derived from it before the contract sees it
    except ValueError as exc:
        raise WebhookError(path, str(exc)) from None


def _ts(value: Any, path: str) -> datetime:
    try:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise WebhookError(path, "must be a Unix time in seconds") from None


E = TypeVar("E", MessageReceived, DeliveryStatusChanged, MessageAmended)


def _event(path: str, build: type[E], **fields: Any) -> E:
    """The event, or the first rule of its contract it breaks, at `path`."""
    try:
        return build(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise WebhookError(path, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


# ------------------------------------------------------------------------ the payload


@dataclass(frozen=True)
class Unknown:
    """Something Meta sent that this code does not know (kept raw or skipped, never refused)."""

    kind: str  # change_field, status, message_type, system_type, amendment
    value: str  # Meta's name for it (a field, status or type name, at most 64 characters)
    path: str


@dataclass(frozen=True)
class NumberChange:
    """A WhatsApp user changed their number or business-scoped id (a `system` message): the new
    ids name the same convmem user from now on."""

    tenant_id: str
    user_id: str  # the id the system message came from (before aliases are resolved)
    new_ids: tuple[str, ...]
    occurred_at: datetime


@dataclass
class Delivery:
    """What one webhook delivery asks of convmem."""

    messages: list[MessageReceived] = field(default_factory=list)  # users' messages and business echoes
    statuses: list[DeliveryStatusChanged] = field(default_factory=list)
    amendments: list[MessageAmended] = field(default_factory=list)
    number_changes: list[NumberChange] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # Meta's errors on a change, not on a message
    # (tenant, id) of every WhatsApp user named, as sent: what the route resolves aliases for.
    senders: set[tuple[str, str]] = field(default_factory=set)


def _callback_data(value: Any) -> str | None:
    return value[:512] if isinstance(value, str) and value else None


@dataclass(frozen=True)
class _Change:
    """One change's value, read: where its events belong and how to name its users."""

    at: str
    tenant: str
    phone_id: str
    meta: dict[str, Any]
    contacts: dict[str, dict[str, Any]]
    value_errors: list[dict[str, Any]]
    aliases: dict[tuple[str, str], str]

    def user(self, raw_id: str) -> str:
        return self.aliases.get((self.tenant, raw_id), raw_id)


def parse_webhook(payload: Any, tenants: dict[str, str], default_tenant: str = "default",
                  aliases: dict[tuple[str, str], str] | None = None) -> Delivery:
    """The delivery's events. `aliases` maps (tenant, an id a user was known by) to the convmem
    user it names (numbers changed earlier, see NumberChange)."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise WebhookError("object", "must be 'whatsapp_business_account'")
    out = Delivery()
    for e, entry in enumerate(_objects(payload.get("entry"), "entry")):
        for c, change in enumerate(_objects(entry.get("changes"), f"entry[{e}].changes")):
            at = f"entry[{e}].changes[{c}].value"
            kind = change.get("field", MESSAGES_FIELD)
            if kind not in (MESSAGES_FIELD, ECHOES_FIELD):
                out.unknown.append(Unknown("change_field", s(kind)[:64] or type(kind).__name__, f"entry[{e}].changes[{c}]"))
                continue
            value = _object(change.get("value", {}), at)
            found = _objects(value.get("messages"), f"{at}.messages")
            reported = _objects(value.get("statuses"), f"{at}.statuses")
            echoed = _objects(value.get("message_echoes"), f"{at}.message_echoes")
            value_errors = _objects(value.get("errors"), f"{at}.errors")
            out.errors.extend(value_errors)
            if not found and not reported and not echoed:
                continue
            meta = _object(value.get("metadata"), f"{at}.metadata")
            phone_id = _text(meta.get("phone_number_id"), f"{at}.metadata.phone_number_id") or ""
            contacts: dict[str, dict[str, Any]] = {}
            for i, contact in enumerate(_objects(value.get("contacts"), f"{at}.contacts")):
                wa_id = _text(contact.get("wa_id"), f"{at}.contacts[{i}].wa_id", required=False)
                if wa_id is not None:
                    contacts[wa_id] = contact
            here = _Change(at, tenants.get(phone_id, default_tenant), phone_id, meta, contacts,
                           [v for v in (raw(x, 2048) for x in value_errors) if v is not None], aliases or {})
            for i, msg in enumerate(found):
                _message(out, msg, f"{at}.messages[{i}]", here, echo=False)
            for i, msg in enumerate(echoed):
                _message(out, msg, f"{at}.message_echoes[{i}]", here, echo=True)
            for i, st in enumerate(reported):
                _status(out, st, f"{at}.statuses[{i}]", here)
    return out


def _message(out: Delivery, msg: dict[str, Any], path: str, here: _Change, echo: bool) -> None:
    """A user's message (or, with `echo`, one the business sent from the WhatsApp Business app
    to that user) becomes a turn, an amendment of an earlier one, or a number change."""
    wamid = _text(msg.get("id"), f"{path}.id") or ""
    sender = _text(msg.get("from"), f"{path}.from") or ""
    # An echo's user is its recipient; a message's, its sender.
    wa_id = (_text(msg.get("to"), f"{path}.to") or "") if echo else sender
    contact = here.contacts.get(wa_id, {})
    # The business-scoped user id (2026) is stable across number changes; prefer it.
    raw_user = (_text(msg.get("to_user_id" if echo else "from_user_id"), f"{path}.user_id", required=False)
                or _text(contact.get("user_id"), f"{path}(contact).user_id", required=False) or wa_id)
    out.senders.add((here.tenant, raw_user))
    user = here.user(raw_user)
    kind = _text(msg.get("type", "unsupported"), f"{path}.type") or "unsupported"
    occurred_at = _ts(msg.get("timestamp"), f"{path}.timestamp")
    tenant = here.tenant
    conversation_id = identity.whatsapp_conversation_id(tenant, here.phone_id, user)
    if kind == "system" and not echo:
        _system(out, d(msg.get("system")), path, tenant, raw_user, occurred_at)
        return
    if kind in AMENDMENTS:
        body = d(msg.get(kind))
        target = _text(body.get("original_message_id"), f"{path}.{kind}.original_message_id", required=False)
        if target is None:
            out.unknown.append(Unknown("amendment", f"{kind} without original_message_id", path))
            return
        edited = kind == "edit"
        out.amendments.append(_event(path, MessageAmended, tenant_id=tenant, user_id=user,
                                     conversation_id=conversation_id,
                                     message_id=identity.message_id_for_external(tenant, user, target),
                                     amendment_id=identity.amendment_id_for(tenant, user, wamid),
                                     kind="edited" if edited else "revoked", external_id=wamid,
                                     target_external_id=target, text=edit_text(body) if edited else "",
                                     occurred_at=occurred_at,
                                     metadata={"whatsapp": {"phone_number_id": here.phone_id, "wa_id": wa_id,
                                                            "echo": echo or None}}))
        return
    content = render(msg, kind)
    if not content.known:
        out.unknown.append(Unknown("message_type", kind[:64], path))
    # wa_id: where the sender sends replies (the recipient of the Cloud API's messages call).
    whatsapp = {"phone_number_id": here.phone_id, "wa_id": wa_id,
                "display_phone_number": s(here.meta.get("display_phone_number")) or None,
                "profile_name": s(d(contact.get("profile")).get("name")) or None,
                "context": raw(d(msg.get("context")), 2048) or None}
    extras: dict[str, Any] = {"referral": referral(msg), "errors": raw(msg.get("errors"), 4096) or None,
                              "value_errors": here.value_errors or None,
                              "source": "business_app" if echo else None}
    whatsapp |= {k: v for k, v in extras.items() if v is not None}
    out.messages.append(_event(
        path, MessageReceived, tenant_id=tenant, user_id=user, conversation_id=conversation_id,
        message_id=identity.message_id_for_external(tenant, user, wamid), external_id=wamid,
        channel="whatsapp", role="assistant" if echo else "user", content_type=content.content_type,
        text=content.text, occurred_at=occurred_at, reply_expected=content.reply_expected and not echo,
        metadata={"whatsapp": whatsapp, **content.metadata}))


def _system(out: Delivery, body: dict[str, Any], path: str, tenant: str, raw_user: str,
            occurred_at: datetime) -> None:
    """`user_changed_number` names the new number (`wa_id`, formerly `new_wa_id`) and, since
    2026, the new business-scoped `user_id`; `user_changed_user_id` names the new user_id only.
    Either way the user stays who they were: their new ids become aliases."""
    kind = s(body.get("type"))
    if kind not in ("user_changed_number", "user_changed_user_id", "customer_changed_number"):
        out.unknown.append(Unknown("system_type", kind[:64] or "none", path))
        return
    new_ids = tuple(dict.fromkeys(i for i in (s(body.get("wa_id")), s(body.get("new_wa_id")), s(body.get("user_id")))
                                  if i and i != raw_user))
    previous = s(body.get("previous_user_id"))
    user = previous if kind == "user_changed_user_id" and previous else raw_user
    if new_ids:
        out.number_changes.append(NumberChange(tenant, user, tuple(storable_text(i)[:256] for i in new_ids),
                                               occurred_at))


def _status(out: Delivery, st: dict[str, Any], path: str, here: _Change) -> None:
    status = st.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        out.unknown.append(Unknown("status", s(status)[:64] or type(status).__name__, f"{path}.status"))
        return
    raw_user = (_text(st.get("recipient_user_id"), f"{path}.recipient_user_id", required=False)
                or _text(st.get("recipient_id"), f"{path}.recipient_id"))
    assert raw_user is not None
    out.senders.add((here.tenant, raw_user))
    user = here.user(raw_user)
    out.statuses.append(_event(
        path, DeliveryStatusChanged, tenant_id=here.tenant, user_id=user,
        conversation_id=identity.whatsapp_conversation_id(here.tenant, here.phone_id, user),
        external_id=_text(st.get("id"), f"{path}.id"), status=status,
        occurred_at=_ts(st.get("timestamp"), f"{path}.timestamp"),
        errors=_objects(st.get("errors"), f"{path}.errors"), metadata={"phone_number_id": here.phone_id},
        callback_data=_callback_data(st.get("biz_opaque_callback_data"))))


__all__ = ["Delivery", "NumberChange", "Unknown", "WebhookError", "parse_webhook", "signature_valid"]
