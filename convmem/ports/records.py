"""The values that cross the ports: plain frozen records, no behaviour that touches I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from contracts import ReplyGenerated, TurnRecorded


@dataclass(frozen=True)
class MemoryScope:
    """Whose memory a read may touch. Every read of turns or vectors takes one; tenant and
    user are mandatory, so an unscoped read cannot be written."""

    tenant_id: str
    user_id: str
    conversation_id: UUID | None = None
    since: datetime | None = None  # inclusive, on the turn's occurred_at
    until: datetime | None = None  # exclusive

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.user_id:
            raise ValueError("a memory scope needs both tenant_id and user_id")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("a memory scope's since must be before its until")

    def between(self, since: datetime | None, until: datetime | None) -> MemoryScope:
        return replace(self, since=since, until=until)

    def admits(self, tenant_id: str, user_id: str, conversation_id: UUID, occurred_at: datetime) -> bool:
        """The in-memory form of the filter the adapters push down (fakes use it)."""
        return ((tenant_id, user_id) == (self.tenant_id, self.user_id)
                and (self.conversation_id is None or conversation_id == self.conversation_id)
                and (self.since is None or occurred_at >= self.since)
                and (self.until is None or occurred_at < self.until))


# A chat line as exports and imports write it: "maria: on my way" (a name of one to three
# words before a colon and a space at the very start). Python and Postgres read it alike.
NAMED_LINE = re.compile(r"^([^\s:,.!?]{1,40}(?: [^\s:,.!?]{1,40}){0,2}):\s")


def speaker_name(turn: TurnRecorded) -> str | None:
    """Who said a turn, when the history names its speakers: metadata.speaker, or else the
    name a line starts with ("maria: ...")."""
    who = turn.metadata.get("speaker")
    if isinstance(who, str) and who.strip():
        return who.strip()
    found = NAMED_LINE.match(turn.text)
    return found.group(1).strip() if found else None


@dataclass(frozen=True)
class Speaker:
    """Someone a question names who speaks in the user's memory. Their turns carry `name` as
    metadata.speaker or start with it ("name: ..."); in a history without names, `role` says
    which side is theirs."""

    name: str
    role: str | None = None
    called: str | None = None  # the word the question used for them ("Katya" for "katia")

    def said(self, turn: TurnRecorded) -> bool:
        who = speaker_name(turn)
        if who is not None and self.role is None:
            return who.casefold() == self.name.casefold() or who.split(" ")[0].casefold() == self.name.casefold()
        return self.role is not None and turn.role == self.role


@dataclass(frozen=True)
class RecordOutcome:
    turn: TurnRecorded
    created: bool  # False: this message was already stored (a redelivery)
    published: bool  # True: its TurnRecorded event already went out


@dataclass(frozen=True)
class AmendOutcome:
    """What an amendment found: the turn as it now reads (None: not recorded yet, so the
    amendment waits and is applied when it is)."""

    turn: TurnRecorded | None
    revoked: bool = False  # the turn is out of history and search (this or an earlier revoke)


@dataclass(frozen=True)
class StoredReply:
    reply: ReplyGenerated
    published: bool


@dataclass(frozen=True)
class ConversationRef:
    conversation_id: UUID
    tenant_id: str
    user_id: str
    status: str = "active"


@dataclass(frozen=True)
class Enrichment:
    language: str | None = None  # ISO 639-1
    intent: str | None = None
    intent_confidence: float | None = None


ConversationStatus = Literal["active", "archived", "deleted"]


@dataclass(frozen=True)
class ConversationInfo:
    conversation_id: UUID
    tenant_id: str
    user_id: str
    channel: str
    title: str | None
    title_source: str
    conversation_type: str
    status: ConversationStatus
    message_count: int
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ConversationFilter:
    tenant_id: str
    user_id: str | None  # None: the whole tenant (admins only; the HTTP edge decides)
    status: ConversationStatus | None = None
    conversation_type: str | None = None
    since: datetime | None = None  # on created_at
    until: datetime | None = None
    after: tuple[datetime, UUID] | None = None  # keyset cursor: (created_at, id) of the last row seen


@dataclass(frozen=True)
class Summary:
    conversation_id: UUID
    text: str
    through_seq: int  # turns up to and including this seq are folded in
    method: str  # "model" or "extractive"


@dataclass(frozen=True)
class UserSummary:
    """What convmem knows about a user's interactions as a whole (kept longer than messages)."""

    conversations: int
    messages: int
    user_messages: int
    first_at: datetime | None
    last_at: datetime | None
    languages: dict[str, int]
    intents: dict[str, int]
    updated_at: datetime

    @property
    def preferred_language(self) -> str | None:
        return max(self.languages.items(), key=lambda kv: (kv[1], kv[0]))[0] if self.languages else None

    def common_intents(self, n: int = 3) -> list[tuple[str, int]]:
        return sorted(self.intents.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass(frozen=True)
class TenantPolicy:
    """A tenant's own privacy and retention settings; None fields fall back to the defaults."""

    tenant_id: str
    pii_mode: Literal["immediate", "delayed", "off"] | None = None
    pii_delay_hours: int | None = None
    phone_region: str | None = None
    message_retention_days: int | None = None
    summary_retention_days: int | None = None


@dataclass(frozen=True)
class ErasureStatus:
    request_id: UUID
    tenant_id: str
    user_id: str
    status: Literal["requested", "completed"]
    requested_at: datetime
    completed_at: datetime | None
    counts: dict[str, int]
    announced: bool = False


@dataclass(frozen=True)
class Stats:
    users: int
    conversations: int
    messages: int
    by_role: dict[str, int]
    reply_expected: int  # user turns that asked for a reply
    replied: int  # ... and got one
    first_interaction: datetime | None
    last_interaction: datetime | None

    @property
    def success_rate(self) -> float | None:
        return None if not self.reply_expected else round(self.replied / self.reply_expected, 4)


@dataclass(frozen=True)
class VectorPoint:
    id: UUID
    vector: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class Unit:
    """A burst: consecutive turns of one speaker a short gap apart, searched as one text
    beside its turns (migration 010). `text` is what its vector is made from: its live
    members, one per line; empty once fewer than two are left, and then its point goes."""

    unit_id: UUID
    tenant_id: str
    user_id: str
    conversation_id: UUID
    members: tuple[UUID, ...]
    occurred_at: datetime
    text: str
    version: int  # bumped by every change: marking an older version embedded does nothing


PointKind = Literal["turn", "unit"]


@dataclass(frozen=True)
class VectorHit:
    id: UUID
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


# What the sender knows about one part of a reply it sends: claimed ("sending"), given back
# after a retryable refusal ("pending"), "sent", refused for good ("failed"), possibly sent
# by a process that stopped before recording it ("unknown": never sent again), or "skipped".
PartState = Literal["sending", "pending", "sent", "failed", "unknown", "skipped"]
# What a claim found: this caller may send ("claimed"), another is sending ("busy"), or the
# part's settled state.
ClaimOutcome = Literal["claimed", "busy", "sent", "failed", "unknown", "skipped"]
_PROGRESS = ("sent", "delivered", "read")


@dataclass(frozen=True)
class SendPart:
    reply_id: UUID
    tenant_id: str
    user_id: str
    conversation_id: UUID
    part: int  # 0-based: a reply longer than the channel's limit goes out in parts, in order
    parts: int


@dataclass(frozen=True)
class DeliveredPart:
    part: int
    state: PartState
    wamid: str | None
    error_code: int | None
    error: str | None
    statuses: dict[str, datetime]  # what the channel reported for it: status -> when


@dataclass(frozen=True)
class Delivery:
    """A reply's way to its recipient: the sender's record of each part, with the statuses the
    channel reported for it."""

    parts: tuple[DeliveredPart, ...]

    @property
    def state(self) -> str:
        states = {p.state for p in self.parts}
        for settled in ("failed", "skipped", "unknown"):
            if settled in states:
                return settled
        return "sent" if states == {"sent"} else "sending"

    @property
    def status(self) -> str | None:
        """What the channel reported for the reply as a whole: failed if any part failed,
        else the least advanced of sent, delivered, read over its parts (a reply is read
        when all of it was)."""
        if any("failed" in p.statuses for p in self.parts):
            return "failed"
        reached = [max((_PROGRESS.index(s) for s in p.statuses if s in _PROGRESS), default=-1) for p in self.parts]
        least = min(reached, default=-1)
        return None if least < 0 else _PROGRESS[least]

    @property
    def error(self) -> str | None:
        return next((p.error for p in self.parts if p.error), None)


@dataclass(frozen=True)
class KeyDisclosure:
    """A data key as served to a downstream consumer; `secret` is None once erased."""

    key_id: UUID
    tenant_id: str
    user_id: str
    secret: bytes | None


@dataclass(frozen=True)
class TicketGrant:
    """What a stream ticket stands for: who asked for it (the bearer's identity at the time)
    and the one stream it opens (`conversation:<id>` or `user:<user id>`, in the tenant)."""

    subject: str
    tenant_id: str
    roles: tuple[str, ...]
    stream: str
