"""Deterministic ids. A producer that retries, or Meta redelivering a webhook, must
land on the same message id, so ids for externally keyed facts are derived, not drawn.

A producer's key (external id, an import's conversation key) is scoped to its tenant AND
user: two users who happen to send the same key get two messages, never one message that
silently swallows the other's (see the README, "Idempotency")."""

import uuid

# A fixed namespace of our own: changing it would re-key every derived id.
NAMESPACE = uuid.UUID("6f1d3c1e-9a55-4d0e-b3a7-2c4f5e8d9b10")
_SEP = "\x1f"


def _derive(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, _SEP.join(parts))


def message_id_for_external(tenant_id: str, user_id: str, external_id: str) -> uuid.UUID:
    return _derive("user-message", tenant_id, user_id, external_id)


def amendment_id_for(tenant_id: str, user_id: str, external_id: str) -> uuid.UUID:
    """An edit or revoke, by the channel's id of it: a redelivered amendment is applied once."""
    return _derive("amendment", tenant_id, user_id, external_id)


def conversation_id_for_external(tenant_id: str, user_id: str, external_id: str) -> uuid.UUID:
    """The conversation a first message with no conversation id opens; derived so that a
    retried request lands in the same one."""
    return _derive("user-conversation", tenant_id, user_id, external_id)


def whatsapp_conversation_id(tenant_id: str, phone_number_id: str, user_id: str) -> uuid.UUID:
    """One running conversation per WhatsApp user and business number, as the user sees it."""
    return _derive("whatsapp", tenant_id, phone_number_id, user_id)


def reply_id_for(in_reply_to: uuid.UUID) -> uuid.UUID:
    """At most one reply per user turn: the reply's id is a function of the turn's."""
    return _derive("reply", str(in_reply_to))


def turn_recorded_event_id(message_id: uuid.UUID) -> uuid.UUID:
    """A turn is announced once: every announcement of it (a redelivery, a retry after a crash
    between publish and mark) carries the same event id, so copies are recognisable as one."""
    return _derive("turn-recorded", str(message_id))


_SEND_REF = "convmem-reply"


def send_ref(reply_id: uuid.UUID, part: int) -> str:
    """What the sender attaches to each message it sends (WhatsApp's biz_opaque_callback_data),
    so a status callback names the reply part it reports on even when the send was never
    recorded (a crash between the request and its record)."""
    return f"{_SEND_REF}:{reply_id}:{part}"


def parse_send_ref(value: str | None) -> tuple[uuid.UUID, int] | None:
    if not value or not value.startswith(_SEND_REF + ":"):
        return None
    try:
        _, reply_id, part = value.split(":")
        return uuid.UUID(reply_id), int(part)
    except ValueError:
        return None
