"""The events convmem publishes, as frozen Pydantic models named as past-tense facts.

Every event carries an event id, a schema version and the time it was emitted. A consumer
that meets a schema version it does not know dead-letters the event with that reason
rather than guessing. Additive, optional fields keep the version; anything else is a new
version (and a new `.vN` topic).
"""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from contracts.values import ExternalId, Instant, JsonObject, StoredText, TenantId, UserId

SCHEMA_VERSION: Literal[1] = 1

Role = Literal["user", "assistant", "system"]
Channel = Literal["http", "whatsapp", "import"]
ContentType = Literal[
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "unsupported",
]
# `played`: a voice message was listened to. A status value the edge does not know is not
# published (the edge counts and logs it), so consumers only ever meet these.
DeliveryStatus = Literal["sent", "delivered", "read", "failed", "deleted", "played"]
Amendment = Literal["edited", "revoked"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    schema_version: Literal[1] = SCHEMA_VERSION
    emitted_at: datetime = Field(default_factory=utcnow)


class Sealed(BaseModel):
    """A turn's text and metadata, encrypted (AES-256-GCM) with its user's data key. The key
    lives in Postgres and is destroyed on erasure, which leaves every copy of the event in the
    log unreadable. Bound to tenant, user and message id as associated data.

    To open one: fetch the key with `GET /v1/keys/{key_id}` (a `service` token of the event's
    tenant; 410 once the user was erased), then AES-256-GCM-decrypt `box` with `nonce` and
    the associated data `tenant_id + "\\x1f" + user_id + "\\x1f" + message_id` (UTF-8). The
    plaintext is JSON `{"text": ..., "metadata": {...}}`, which replaces the event's empty
    `text` and `metadata`. `convmem.opener.EventOpener` does all of this."""

    model_config = ConfigDict(frozen=True)

    key_id: UUID = Field(description="the user's data key: GET /v1/keys/{key_id} with a service token")
    nonce: str = Field(description="base64, 12 bytes")
    box: str = Field(description="base64 AES-256-GCM ciphertext of the JSON {text, metadata}, GCM tag appended; "
                                 "associated data: tenant_id, user_id, message_id joined by U+001F")


class ConversationEvent(Event):
    tenant_id: TenantId
    user_id: UserId
    conversation_id: UUID

    @property
    def key(self) -> bytes:
        return str(self.conversation_id).encode()


class TokenUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class MessageReceived(ConversationEvent):
    """A message arrived at the edge (HTTP, WhatsApp, or a bulk import) and was accepted."""

    message_id: UUID
    external_id: ExternalId | None = None
    channel: Channel = "http"
    role: Role = "user"
    content_type: ContentType = "text"
    # The rules of contracts.values: what the edge accepts is what the recorder can store.
    text: StoredText = Field(max_length=64_000)
    occurred_at: Instant
    reply_expected: bool = True
    metadata: JsonObject = Field(default_factory=dict)
    sealed: Sealed | None = Field(default=None, description="when set, text and metadata are inside it")


# The `model` of a reply no language model wrote: assembled from memory in offline mode. Such
# a reply is a notice, not something said: it is never sent as a model's answer, embedded or
# recalled as memory.
OFFLINE_MODEL = "offline"


class ReplyGenerated(ConversationEvent):
    """The responder answered a user turn. At most one per user turn (`in_reply_to`)."""

    message_id: UUID
    in_reply_to: UUID
    channel: Channel = "http"
    text: str
    model: str
    sources: list[UUID] = Field(default_factory=list, description="ids of the turns recalled as memory")
    usage: TokenUsage = Field(default_factory=TokenUsage)
    latency_ms: int = 0
    finish_reason: str | None = None
    occurred_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)
    sealed: Sealed | None = Field(default=None, description="when set, text and metadata are inside it")


class ReplyTokensGenerated(ConversationEvent):
    """Text of a reply as the model produces it, for live views (web clients' event streams).
    Best effort and short-lived: the ReplyGenerated that follows is the reply. A retried
    generation starts again at offset 0, so a reader places each piece at its `offset`
    rather than appending."""

    message_id: UUID = Field(description="the reply's id (ReplyGenerated.message_id once it is complete)")
    in_reply_to: UUID
    offset: int = Field(ge=0, description="where `text` starts in the reply, in characters")
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    sealed: Sealed | None = Field(default=None, description="when set, text and metadata are inside it")


class TurnRecorded(ConversationEvent):
    """A turn is durably stored in Postgres with its place (`seq`) in the conversation."""

    message_id: UUID
    seq: int = Field(ge=1)
    role: Role
    channel: Channel
    content_type: ContentType = "text"
    text: str
    external_id: str | None = None
    in_reply_to: UUID | None = None
    reply_expected: bool = False
    occurred_at: datetime
    recorded_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Enrichment by the recorder (additive and optional: same schema version).
    language: str | None = Field(default=None, description="ISO 639-1 code, when detected with confidence")
    intent: str | None = None
    intent_confidence: float | None = Field(default=None, ge=0, le=1)
    sealed: Sealed | None = Field(default=None, description="when set, text and metadata are inside it")


class DeliveryStatusChanged(ConversationEvent):
    """A channel reported the delivery state of an outbound message (WhatsApp statuses)."""

    external_id: ExternalId
    status: DeliveryStatus
    occurred_at: Instant
    errors: list[JsonObject] = Field(default_factory=list, max_length=50)
    metadata: JsonObject = Field(default_factory=dict)
    callback_data: str | None = Field(
        default=None, max_length=512,
        description="what the sender attached to the outgoing message (WhatsApp's biz_opaque_callback_data); "
                    "for convmem's own replies, the reply part it reports on")


class MessageAmended(ConversationEvent):
    """The author changed a message after sending it: `edited` (new text or caption in `text`)
    or `revoked` (deleted for everyone; `text` is empty). `message_id` is the amended message,
    which may not be recorded yet (Meta delivers out of order): the amendment then waits and
    is applied when it is. `amendment_id` (derived from the channel's id of the amendment)
    makes a redelivery a no-op."""

    message_id: UUID = Field(description="the message that was edited or revoked")
    amendment_id: UUID
    kind: Amendment
    external_id: ExternalId = Field(description="the channel's id of the amendment (the edit's or revoke's wamid)")
    target_external_id: ExternalId = Field(description="the channel's id of the amended message")
    channel: Channel = "whatsapp"
    text: StoredText = Field(default="", max_length=64_000, description="the new text (edited), else empty")
    occurred_at: Instant
    metadata: JsonObject = Field(default_factory=dict)
    sealed: Sealed | None = Field(default=None, description="when set, text and metadata are inside it")


class ErasureRequested(Event):
    """A data subject (or an admin of its tenant) asked for everything about it to be erased."""

    request_id: UUID
    tenant_id: TenantId
    user_id: UserId
    requested_by: UserId
    requested_at: datetime

    @property
    def key(self) -> bytes:
        return f"{self.tenant_id}\x1f{self.user_id}".encode()


class SubjectErased(Event):
    """Audit record of a completed erasure. Carries no personal data: the request id links
    it to the request, which the requester holds."""

    request_id: UUID
    tenant_id: TenantId
    counts: dict[str, int] = Field(description="what was removed: messages, conversations, summaries, keys, ...")
    requested_at: datetime
    completed_at: datetime

    @property
    def key(self) -> bytes:
        return self.tenant_id.encode()


class PiiScrubbed(Event):
    """Personal data was replaced by typed placeholders in a stored turn. Kinds and counts
    only, never the values."""

    tenant_id: TenantId
    conversation_id: UUID
    message_id: UUID
    kinds: dict[str, int]

    @property
    def key(self) -> bytes:
        return str(self.conversation_id).encode()


class RetentionPurged(Event):
    """A retention sweep removed data past its tenant's retention period."""

    tenant_id: str | None = Field(default=None, description="null: every tenant on default policy")
    messages: int
    conversation_summaries: int
    user_summaries: int
    swept_at: datetime

    @property
    def key(self) -> bytes:
        return (self.tenant_id or "retention").encode()


def is_offline_notice(turn: TurnRecorded) -> bool:
    """A recorded reply no model wrote (its model, kept in the turn's metadata, is OFFLINE_MODEL)."""
    return turn.role == "assistant" and turn.metadata.get("model") == OFFLINE_MODEL
