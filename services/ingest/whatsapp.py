"""WhatsApp Cloud API webhooks: signature check and mapping to convmem events. Pure
functions; the HTTP route is a thin adapter around them.

The envelope (entry, changes, value, metadata, contacts, messages, statuses, ids, senders,
timestamps) is read strictly: a part of the wrong JSON type is a WebhookError naming its path
(`entry[0].changes[0].value.messages[3].id`), answered 400. A message's own body is read
leniently (Meta adds fields and types): what cannot be read is left out of the text. Every
event is then checked against its contract, so what this accepts can be recorded."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from contracts import DeliveryStatusChanged, MessageReceived, identity
from contracts.events import ContentType
from contracts.values import storable_text

SIGNATURE_HEADER = "X-Hub-Signature-256"
_MEDIA: dict[str, ContentType] = {"image": "image", "audio": "audio", "video": "video", "document": "document",
                                  "sticker": "sticker"}
_STATUSES = {"sent", "delivered", "read", "failed", "deleted"}


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


E = TypeVar("E", MessageReceived, DeliveryStatusChanged)


def _event(path: str, build: type[E], **fields: Any) -> E:
    """The event, or the first rule of its contract it breaks, at `path`."""
    try:
        return build(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise WebhookError(path, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


# ------------------------------------------------------------------ a message's body


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _render(msg: dict[str, Any], kind: str, path: str) -> tuple[ContentType, str, dict[str, Any], bool]:
    """(content type, searchable text, metadata, reply expected) for one inbound message."""
    body = _d(msg.get(kind))
    if kind == "text":
        text = body.get("body")
        if not isinstance(text, str):
            raise WebhookError(f"{path}.text.body", "must be a string")
        return "text", text, {}, True
    if kind in _MEDIA:
        media = {k: body[k] for k in ("id", "mime_type", "sha256", "caption", "filename", "animated", "voice") if k in body}
        caption = _s(body.get("caption")) or _s(body.get("filename"))
        return _MEDIA[kind], f"[{kind}] {caption}".strip(), {"media": media}, True
    if kind == "location":
        where = ", ".join(p for p in (_s(body.get("name")), _s(body.get("address"))) if p)
        text = f"[location] {where} ({_s(body.get('latitude'))}, {_s(body.get('longitude'))})".replace("  ", " ")
        return "location", text, {"location": body}, True
    if kind == "contacts":
        cards: list[Any] = msg["contacts"] if isinstance(msg.get("contacts"), list) else []
        names = [_s(_d(_d(c).get("name")).get("formatted_name")) for c in cards]
        return "contacts", "[contacts] " + ", ".join(n for n in names if n), {"contacts": cards}, True
    if kind == "interactive":
        reply = _d(body.get("button_reply")) or _d(body.get("list_reply")) or _d(body.get("nfm_reply"))
        text = " - ".join(_s(reply.get(k)) for k in ("title", "description") if _s(reply.get(k)))
        return "interactive", text or f"[{_s(body.get('type')) or 'interactive'}]", {
            "interactive": {"type": _s(body.get("type")) or None, "id": _s(reply.get("id")) or None}}, True
    if kind == "button":
        return "button", _s(body.get("text")), {"button": {"payload": _s(body.get("payload")) or None}}, True
    if kind == "reaction":
        # A reaction annotates an earlier message; it does not ask for an answer.
        emoji = _s(body.get("emoji"))
        return "reaction", f"[reaction] {emoji}".strip(), {
            "reaction": {"message_id": _s(body.get("message_id")) or None, "emoji": emoji}}, False
    if kind == "order":
        return "order", "[order]", {"order": body}, True
    return "unsupported", f"[unsupported message type: {kind[:64]}]", {"raw_type": kind[:64]}, False


# ------------------------------------------------------------------------ the payload


def parse_webhook(payload: Any, tenants: dict[str, str], default_tenant: str = "default"
                  ) -> tuple[list[MessageReceived], list[DeliveryStatusChanged]]:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise WebhookError("object", "must be 'whatsapp_business_account'")
    messages: list[MessageReceived] = []
    statuses: list[DeliveryStatusChanged] = []
    for e, entry in enumerate(_objects(payload.get("entry"), "entry")):
        for c, change in enumerate(_objects(entry.get("changes"), f"entry[{e}].changes")):
            at = f"entry[{e}].changes[{c}].value"
            value = _object(change.get("value", {}), at)
            found = _objects(value.get("messages"), f"{at}.messages")
            reported = _objects(value.get("statuses"), f"{at}.statuses")
            if not found and not reported:
                continue  # another field (account or template updates): nothing for us
            meta = _object(value.get("metadata"), f"{at}.metadata")
            phone_id = _text(meta.get("phone_number_id"), f"{at}.metadata.phone_number_id") or ""
            tenant = tenants.get(phone_id, default_tenant)
            contacts: dict[str, dict[str, Any]] = {}
            for i, contact in enumerate(_objects(value.get("contacts"), f"{at}.contacts")):
                wa_id = _text(contact.get("wa_id"), f"{at}.contacts[{i}].wa_id", required=False)
                if wa_id is not None:
                    contacts[wa_id] = contact
            for i, msg in enumerate(found):
                messages.append(_message(msg, f"{at}.messages[{i}]", tenant, phone_id, meta, contacts))
            for i, st in enumerate(reported):
                statuses.append(_status(st, f"{at}.statuses[{i}]", tenant, phone_id))
    return messages, statuses


def _message(msg: dict[str, Any], path: str, tenant: str, phone_id: str, meta: dict[str, Any],
             contacts: dict[str, dict[str, Any]]) -> MessageReceived:
    wamid = _text(msg.get("id"), f"{path}.id") or ""
    sender = _text(msg.get("from"), f"{path}.from") or ""
    contact = contacts.get(sender, {})
    # The business-scoped user id (2026) is stable across number changes; prefer it.
    user = (_text(msg.get("from_user_id"), f"{path}.from_user_id", required=False)
            or _text(contact.get("user_id"), f"{path}(contact).user_id", required=False) or sender)
    kind = _text(msg.get("type", "unsupported"), f"{path}.type") or "unsupported"
    ctype, text, extra, reply_expected = _render(msg, kind, path)
    metadata = {"whatsapp": {"phone_number_id": phone_id, "display_phone_number": _s(meta.get("display_phone_number")) or None,
                             "profile_name": _s(_d(contact.get("profile")).get("name")) or None,
                             "context": _d(msg.get("context")) or None}, **extra}
    return _event(path, MessageReceived, tenant_id=tenant, user_id=user,
                  conversation_id=identity.whatsapp_conversation_id(tenant, phone_id, user),
                  message_id=identity.message_id_for_external(tenant, user, wamid), external_id=wamid,
                  channel="whatsapp", content_type=ctype, text=text,
                  occurred_at=_ts(msg.get("timestamp"), f"{path}.timestamp"), reply_expected=reply_expected,
                  metadata=metadata)


def _status(st: dict[str, Any], path: str, tenant: str, phone_id: str) -> DeliveryStatusChanged:
    status = st.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        raise WebhookError(f"{path}.status", f"must be one of {', '.join(sorted(_STATUSES))}")
    user = (_text(st.get("recipient_user_id"), f"{path}.recipient_user_id", required=False)
            or _text(st.get("recipient_id"), f"{path}.recipient_id"))
    assert user is not None
    return _event(path, DeliveryStatusChanged, tenant_id=tenant, user_id=user,
                  conversation_id=identity.whatsapp_conversation_id(tenant, phone_id, user),
                  external_id=_text(st.get("id"), f"{path}.id"), status=status,
                  occurred_at=_ts(st.get("timestamp"), f"{path}.timestamp"),
                  errors=_objects(st.get("errors"), f"{path}.errors"), metadata={"phone_number_id": phone_id})
