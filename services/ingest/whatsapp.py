"""WhatsApp Cloud API webhooks: signature check and mapping to convmem events. Pure
functions; the HTTP route is a thin adapter around them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from contracts import DeliveryStatusChanged, MessageReceived, identity
from contracts.events import ContentType

SIGNATURE_HEADER = "X-Hub-Signature-256"
_MEDIA = ("image", "audio", "video", "document", "sticker")
_KNOWN: set[str] = {"text", *_MEDIA, "location", "contacts", "interactive", "button", "reaction", "order"}
_STATUSES = {"sent", "delivered", "read", "failed", "deleted"}


class WebhookError(ValueError):
    """The payload is signed but not a WhatsApp webhook we can read."""


def signature_valid(app_secret: bytes, raw_body: bytes, header: str | None) -> bool:
    """HMAC-SHA256 of the raw bytes, compared in constant time (before any parsing)."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret, raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def _ts(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError):
        raise WebhookError(f"bad timestamp {value!r}") from None


def _render(msg: dict[str, Any]) -> tuple[ContentType, str, dict[str, Any], bool]:
    """(content type, searchable text, metadata, reply expected) for one inbound message."""
    kind = msg.get("type", "unsupported")
    raw_body = msg.get(kind)
    body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    if kind == "text":
        return "text", str(body.get("body", "")), {}, True
    if kind in _MEDIA:
        media = {k: body[k] for k in ("id", "mime_type", "sha256", "caption", "filename", "animated", "voice") if k in body}
        caption = body.get("caption") or body.get("filename") or ""
        return kind, f"[{kind}] {caption}".strip(), {"media": media}, True
    if kind == "location":
        parts = [body.get("name"), body.get("address")]
        where = ", ".join(str(p) for p in parts if p)
        text = f"[location] {where} ({body.get('latitude')}, {body.get('longitude')})".replace("  ", " ")
        return "location", text, {"location": body}, True
    if kind == "contacts":
        names = [c.get("name", {}).get("formatted_name", "") for c in msg.get("contacts", []) if isinstance(c, dict)]
        return "contacts", "[contacts] " + ", ".join(n for n in names if n), {"contacts": msg.get("contacts", [])}, True
    if kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or body.get("nfm_reply") or {}
        text = " - ".join(str(reply[k]) for k in ("title", "description") if reply.get(k)) or f"[{body.get('type', 'interactive')}]"
        return "interactive", text, {"interactive": {"type": body.get("type"), "id": reply.get("id")}}, True
    if kind == "button":
        return "button", str(body.get("text", "")), {"button": {"payload": body.get("payload")}}, True
    if kind == "reaction":
        # A reaction annotates an earlier message; it does not ask for an answer.
        emoji = body.get("emoji", "")
        return "reaction", f"[reaction] {emoji}".strip(), {"reaction": {"message_id": body.get("message_id"), "emoji": emoji}}, False
    if kind == "order":
        return "order", "[order]", {"order": body}, True
    return "unsupported", f"[unsupported message type: {kind}]", {"raw_type": kind}, False


def _callback_data(value: Any) -> str | None:
    return value[:512] if isinstance(value, str) and value else None


def parse_webhook(payload: Any, tenants: dict[str, str], default_tenant: str = "default"
                  ) -> tuple[list[MessageReceived], list[DeliveryStatusChanged]]:
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise WebhookError("object must be 'whatsapp_business_account'")
    messages: list[MessageReceived] = []
    statuses: list[DeliveryStatusChanged] = []
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            meta = value.get("metadata") or {}
            phone_id = str(meta.get("phone_number_id", ""))
            if not phone_id:
                raise WebhookError("value.metadata.phone_number_id is missing")
            tenant = tenants.get(phone_id, default_tenant)
            # The business-scoped user id (2026) is stable across number changes; prefer it.
            by_wa_id = {c.get("wa_id"): c for c in value.get("contacts") or [] if isinstance(c, dict)}
            for msg in value.get("messages") or []:
                contact = by_wa_id.get(msg.get("from"), {})
                user = msg.get("from_user_id") or contact.get("user_id") or msg.get("from")
                if not user or not msg.get("id"):
                    raise WebhookError("message without sender or id")
                ctype, text, extra, reply_expected = _render(msg)
                meta_out = {"whatsapp": {"phone_number_id": phone_id, "wa_id": msg.get("from"),
                                         "display_phone_number": meta.get("display_phone_number"),
                                         "profile_name": (contact.get("profile") or {}).get("name"),
                                         "context": msg.get("context")}, **extra}
                messages.append(MessageReceived(
                    tenant_id=tenant, user_id=str(user),
                    conversation_id=identity.whatsapp_conversation_id(tenant, phone_id, str(user)),
                    message_id=identity.message_id_for_external(tenant, msg["id"]), external_id=msg["id"],
                    channel="whatsapp", content_type=ctype, text=text, occurred_at=_ts(msg.get("timestamp")),
                    reply_expected=reply_expected, metadata=meta_out,
                ))
            for st in value.get("statuses") or []:
                user = st.get("recipient_user_id") or st.get("recipient_id")
                if st.get("status") not in _STATUSES or not user or not st.get("id"):
                    raise WebhookError(f"unreadable status callback: {st.get('status')!r}")
                statuses.append(DeliveryStatusChanged(
                    tenant_id=tenant, user_id=str(user),
                    conversation_id=identity.whatsapp_conversation_id(tenant, phone_id, str(user)),
                    external_id=st["id"], status=st["status"], occurred_at=_ts(st.get("timestamp")),
                    errors=st.get("errors") or [], metadata={"phone_number_id": phone_id},
                    callback_data=_callback_data(st.get("biz_opaque_callback_data")),
                ))
    return messages, statuses
