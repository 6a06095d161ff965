"""HTTP request and response bodies (they make the OpenAPI document). Request fields use the
types of contracts.values, the rules the recorder applies: a body that passes here can be
stored, so a 202 is never followed by a dead letter."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from contracts.events import ContentType, Role
from contracts.values import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    ExternalId,
    StoredText,
    UserId,
    WrittenInstant,
    WrittenJsonObject,
    storable_json,
)


def _whole_number(value: Any) -> Any:
    """A JSON integer as JSON Schema's `integer` defines it: 30 and 30.0 alike, never true or
    "30" (a schema-valid request must not be refused)."""
    if isinstance(value, bool | str):
        raise ValueError("must be a whole number")
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Integers within bounds that take what JSON Schema's `integer` takes (the bounds first, so
# the document shows them as minimum and maximum).
DelayHours = Annotated[int, Field(ge=0, le=24 * 365), BeforeValidator(_whole_number)]
RetentionDays = Annotated[int, Field(ge=1, le=36500), BeforeValidator(_whole_number)]

MAX_ATTACHMENTS = 10
# Stated in the document as the server enforces them (a schema-valid attachment is taken).
_MIME_PATTERN = r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+( *;[ -~]*)?$"
# No white space or control character, spelled out: `\s` means different sets in the
# document's (ECMA) regex and the server's (Rust) one; this class is every character either
# counts, so both read the pattern the same.
_NOT_SPACE = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_URL_PATTERN = rf"^https?://[^{_NOT_SPACE}/?#]+[^{_NOT_SPACE}]*$"
FileSize = Annotated[int, Field(ge=0, le=2**53), BeforeValidator(_whole_number)]


class Attachment(BaseModel):
    """A file that came with a message, by reference (convmem stores no file): where it is
    (`url`, or `id` in the producer's media store, or both), what it is, and its caption.
    Stored in the turn's metadata as WhatsApp media are; the caption (else the file name) is
    searchable."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"anyOf": [  # present and not null, as _located checks
                                  {"required": ["url"], "properties": {"url": {"type": "string"}}},
                                  {"required": ["id"], "properties": {"id": {"type": "string"}}}]})

    url: str | None = Field(default=None, max_length=2048, pattern=_URL_PATTERN, description="http(s) URL of the file")
    id: ExternalId | None = Field(default=None, validate_default=True,
                                  description="the file's id in the producer's media store")
    mime_type: str = Field(min_length=3, max_length=255, pattern=_MIME_PATTERN, description="type/subtype, e.g. image/jpeg")
    file_name: StoredText | None = Field(default=None, min_length=1, max_length=255)
    size: FileSize | None = Field(default=None, description="bytes")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$", description="hex digest of the file")
    caption: StoredText | None = Field(default=None, max_length=1024, description="searchable with the message")

    @field_validator("id")
    @classmethod
    def _located(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("url") is None and "url" in info.data:
            raise ValueError("give url or id: where the file is")
        return value

    def as_media(self) -> dict[str, Any]:
        """As a turn's metadata keeps it: WhatsApp's names for media (`filename`), plus size."""
        media = {"id": self.id, "url": self.url, "mime_type": self.mime_type, "sha256": self.sha256,
                 "caption": self.caption, "filename": self.file_name, "size": self.size}
        return {k: v for k, v in media.items() if v is not None}


# Text, attachments or both; files in `attachments`, not also in metadata.attachments.
_SAYS_SOMETHING: dict[str, Any] = {"allOf": [
    {"anyOf": [{"required": ["text"], "properties": {"text": {"minLength": 1}}},
               {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}}]},
    {"not": {"required": ["attachments", "metadata"], "properties": {
        "attachments": {"minItems": 1}, "metadata": {"required": ["attachments"]}}}}]}


class PostMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_SAYS_SOMETHING)

    user_id: UserId
    conversation_id: UUID | None = Field(default=None, description="omit to start a new conversation")
    # Before `text`, whose check reads it.
    attachments: list[Attachment] = Field(default_factory=list, max_length=MAX_ATTACHMENTS,
                                          description="files sent with the message, by reference")
    text: StoredText = Field(default="", max_length=32_000, validate_default=True,
                             description="no NUL characters; may be empty when attachments are given")
    external_id: ExternalId | None = Field(
        default=None, description="the producer's idempotency key, scoped to the tenant and user_id")
    occurred_at: WrittenInstant | None = Field(
        default=None, description="RFC 3339 with a UTC offset, between 1970-01-01 and 9999-12-30")
    role: Literal["user", "assistant"] = Field(
        default="user", description="assistant turns (history from another system) need a service or admin token")
    reply_expected: StrictBool = Field(
        default=True, description="false for history (stored and searchable, not answered): service or admin only")
    metadata: WrittenJsonObject = Field(
        default_factory=dict, description=f"JSON object: at most {MAX_JSON_DEPTH} levels and {MAX_JSON_BYTES} bytes, "
                                          "64-bit integers, finite numbers, no NUL characters")

    @field_validator("text")
    @classmethod
    def _says_something(cls, text: str, info: ValidationInfo) -> str:
        if not text and not info.data.get("attachments") and "attachments" in info.data:
            raise ValueError("give text, attachments or both")
        return text

    @field_validator("metadata")
    @classmethod
    def _room_for_attachments(cls, metadata: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """The attachments go into metadata.attachments: that key is theirs, and the whole must
        still be metadata a turn can hold."""
        attachments: list[Attachment] = info.data.get("attachments") or []
        if attachments:
            if "attachments" in metadata:
                raise ValueError("attachments: give the files in attachments, not in metadata")
            storable_json({**metadata, "attachments": [a.as_media() for a in attachments]})
        return metadata


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message_id: UUID
    conversation_id: UUID
    duplicate: bool = Field(description="true when this external_id was accepted before")


class WebhookAccepted(BaseModel):
    """What a WhatsApp delivery asked for, all of it now in the log."""

    status: Literal["accepted"] = "accepted"
    messages: int = Field(description="messages in the delivery (users' messages and business echoes)")
    already_recorded: int = Field(
        description="of those, messages already stored (a redelivery). One redelivered before its first copy was "
                    "stored is not counted here: it is accepted and deduplicated downstream (by wamid)")
    statuses: int = Field(description="delivery states passed on")
    amendments: int = Field(default=0, description="edits and revokes of earlier messages passed on")
    number_changes: int = Field(default=0, description="users' number or id changes followed")
    unknown: int = Field(default=0, description="parts convmem does not know (a change field, status or message "
                                                "type): kept raw or skipped, counted in convmem_whatsapp_unknown_total")


class UsageView(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReplyView(BaseModel):
    """A reply as web clients get it: in `POST /v1/messages?wait=` and as the `reply` frame
    of a conversation's event stream."""

    message_id: UUID
    in_reply_to: UUID
    conversation_id: UUID
    text: str
    sources: list[UUID] = Field(description="ids of the turns recalled as memory")
    model: str = Field(description="the model that answered; `offline` when none is configured")
    usage: UsageView
    finish_reason: str | None
    occurred_at: datetime


class TokenView(BaseModel):
    """A `token` frame: a piece of a reply as the model produces it. Place `text` at `offset`
    (Unicode code points): a retried generation starts again at 0."""

    message_id: UUID
    in_reply_to: UUID
    conversation_id: UUID  # a user's stream carries every conversation of the user
    offset: int
    text: str


class Answered(BaseModel):
    status: Literal["answered"] = "answered"
    message_id: UUID
    conversation_id: UUID
    duplicate: bool = Field(description="true when this external_id was accepted before")
    reply: ReplyView


class DeliveryPartView(BaseModel):
    part: int
    state: Literal["sending", "pending", "sent", "failed", "unknown", "skipped"]
    wamid: str | None = Field(description="the channel's id of the message sent")
    error_code: int | None
    error: str | None
    statuses: dict[str, datetime] = Field(description="what the channel reported: sent, delivered, read, failed")


class DeliveryView(BaseModel):
    state: str = Field(description="the sender's outcome: sending, sent, failed, unknown (a send interrupted "
                                   "mid-request, never repeated), skipped")
    status: str | None = Field(description="what the channel reported for the whole reply: failed, or the least "
                                           "advanced of sent, delivered, read over its parts")
    error: str | None
    parts: list[DeliveryPartView] = Field(description="a reply over the channel's length limit is sent in parts")


class KeyView(BaseModel):
    """A user's data key, for opening the `sealed` fields of events (see the AsyncAPI document)."""

    key_id: UUID
    tenant_id: str
    user_id: str
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key: str = Field(description="base64, 32 bytes")
    associated_data: str = Field(default="tenant_id + U+001F + user_id + U+001F + message_id, UTF-8")


class MessageView(BaseModel):
    message_id: UUID
    seq: int
    role: Role
    content_type: ContentType
    text: str
    external_id: str | None
    in_reply_to: UUID | None
    occurred_at: datetime
    metadata: dict[str, Any]
    language: str | None = None
    intent: str | None = None
    intent_confidence: float | None = None
    delivery: DeliveryView | None = Field(default=None, description="replies sent through a channel (WhatsApp)")


class ConversationMessages(BaseModel):
    conversation_id: UUID
    messages: list[MessageView]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page; null at the end")


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    message: str
    fields: list[ErrorField] = Field(default_factory=list)


class OutcomeUnknown(ErrorBody):
    """A 503 `outcome_unknown`: the event log took the message and did not confirm it in time,
    so it may still be recorded. A retry with the same Idempotency-Key (or external_id) lands
    on these ids and is recorded once; any other 503 means nothing was published."""

    outcome: Literal["unknown"] = "unknown"
    message_id: UUID = Field(description="the id the message has if it is recorded")
    conversation_id: UUID


class ConversationView(BaseModel):
    conversation_id: UUID
    user_id: str
    channel: str
    title: str | None
    title_source: Literal["first_message", "model", "user"]
    conversation_type: str
    status: Literal["active", "archived", "deleted"]
    message_count: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    metadata: dict[str, Any]


class ConversationPage(BaseModel):
    conversations: list[ConversationView]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at the end")


class ConversationDetail(ConversationView):
    messages: list[MessageView]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page of messages")


class PatchConversation(BaseModel):
    # A title or a status, not null: the route refuses a patch that changes nothing.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["title"], "properties": {"title": {"type": "string"}}},
        {"required": ["status"], "properties": {"status": {"type": "string"}}}]})

    title: StoredText | None = Field(default=None, min_length=1, max_length=200)
    status: Literal["active", "archived"] | None = None


class Deleted(BaseModel):
    status: Literal["deleted"] = "deleted"
    conversation_id: UUID
    messages: int = Field(description="turns removed from search and history")


class SearchHitView(BaseModel):
    message_id: UUID
    external_id: str | None
    conversation_id: UUID
    seq: int
    role: Role
    text: str
    occurred_at: datetime
    score: float
    speaker: str | None = Field(default=None, description="who said it, when the turn names its speaker")
    matched_by: dict[str, int] = Field(
        description="retriever -> rank, e.g. {'fts': 2, 'vector': 1}; empty for a turn found beside a hit")
    context: list[MessageView] = Field(description="the turns just before and after, in order")


class SearchResponse(BaseModel):
    query: str
    mode: Literal["hybrid", "fts", "vector"]
    stages: list[str]
    timeframe: dict[str, datetime] | None = Field(description="the time window read from the query, if any")
    speakers: list[str] = Field(default_factory=list, description="people of the history the query names")
    hits: list[SearchHitView]


class ContextTurn(BaseModel):
    message_id: UUID
    conversation_id: UUID
    seq: int
    role: Role
    speaker: str = Field(description="the speaker's name when the turn carries one, else 'the user' or 'you'")
    occurred_at: datetime
    text: str


class RecalledTurn(ContextTurn):
    score: float
    context: list[ContextTurn] = Field(description="the turns around it that came with it, in order")


class ChatMessageView(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ContextView(BaseModel):
    conversation_id: UUID | None
    question: str = Field(description="what memory was recalled for")
    block: str = Field(description="summary, recalled memory ([n] is sources[n-1]) and recent turns, as one text")
    messages: list[ChatMessageView] = Field(
        description="exactly what the responder sends its model: the block as system message, the recent "
                    "window, the question")
    summary: str | None
    recalled: list[RecalledTurn]
    recent: list[ContextTurn]
    sources: list[UUID] = Field(description="ids of the recalled turns, in the block's order")
    tokens: int = Field(description="what `messages` costs, counted by `tokenizer`")
    budget: int
    tokenizer: str


class StatsView(BaseModel):
    scope: Literal["user", "tenant"]
    tenant_id: str
    user_id: str | None
    users: int
    conversations: int
    messages: int
    by_role: dict[str, int]
    reply_expected: int
    replied: int
    success_rate: float | None = Field(description="replied / reply_expected; null with no user turns")
    first_interaction: datetime | None
    last_interaction: datetime | None


class ErasureView(BaseModel):
    request_id: UUID
    user_id: str
    status: Literal["requested", "completed"]
    requested_at: datetime
    completed_at: datetime | None
    counts: dict[str, int] = Field(description="what was removed, once completed")


class UserSummaryView(BaseModel):
    user_id: str
    conversations: int
    messages: int
    user_messages: int
    first_interaction: datetime | None
    last_interaction: datetime | None
    preferred_language: str | None
    languages: dict[str, int]
    common_intents: list[dict[str, Any]]
    updated_at: datetime


class TenantPolicyView(BaseModel):
    """null fields use the service's defaults (CONVMEM_PII_MODE, ..._RETENTION_DAYS)."""

    model_config = ConfigDict(extra="forbid")

    pii_mode: Literal["immediate", "delayed", "off"] | None = None
    # Whole numbers: JSON true is not 1 day, and "30" is not a number.
    pii_delay_hours: DelayHours | None = None
    phone_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2")
    message_retention_days: RetentionDays | None = None
    summary_retention_days: RetentionDays | None = None

    @classmethod
    def of(cls, p: Any) -> TenantPolicyView:
        return cls(pii_mode=p.pii_mode, pii_delay_hours=p.pii_delay_hours, phone_region=p.phone_region,
                   message_retention_days=p.message_retention_days, summary_retention_days=p.summary_retention_days)


class StreamTicketRequest(BaseModel):
    """The one stream a ticket opens: a conversation's events, or a user's (exactly one)."""

    # The document states the rule the validator below enforces; the fields are not nullable.
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["conversation_id"]}, {"required": ["user_id"]}]})

    conversation_id: UUID = Field(default=None, description="GET /v1/conversations/{id}/events (or its socket)")  # type: ignore[assignment]
    user_id: UserId = Field(default=None, description="GET /v1/users/{user_id}/events (or its socket)")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one_stream(self) -> StreamTicketRequest:
        if (self.conversation_id is None) == (self.user_id is None):
            raise ValueError("name exactly one stream: conversation_id or user_id")
        return self


class StreamTicket(BaseModel):
    ticket: str = Field(description="pass as `?ticket=` once, within `expires_in` seconds")
    expires_in: float
    events: str = Field(description="the stream's Server-Sent Events path, ticket included")
    socket: str = Field(description="the stream's WebSocket path, ticket included")
