"""The ports domain code depends on. Adapters implement them over asyncpg, Qdrant, ONNX
and the openai client; tests implement them with hand-written fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded


@dataclass(frozen=True)
class MemoryScope:
    """Whose memory a read may touch. Every read of turns or vectors takes one; tenant and
    user are mandatory, so an unscoped read cannot be written."""

    tenant_id: str
    user_id: str
    conversation_id: UUID | None = None

    def __post_init__(self) -> None:
        if not self.tenant_id or not self.user_id:
            raise ValueError("a memory scope needs both tenant_id and user_id")


@dataclass(frozen=True)
class RecordOutcome:
    turn: TurnRecorded
    created: bool  # False: this message was already stored (a redelivery)
    published: bool  # True: its TurnRecorded event already went out


@dataclass(frozen=True)
class StoredReply:
    reply: ReplyGenerated
    published: bool


@dataclass(frozen=True)
class ConversationRef:
    conversation_id: UUID
    tenant_id: str
    user_id: str


class Store(Protocol):
    async def record_turn(self, event: MessageReceived | ReplyGenerated) -> RecordOutcome: ...
    async def mark_turn_published(self, message_id: UUID) -> None: ...
    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None: ...
    async def recent_turns(self, scope: MemoryScope, before_seq: int, limit: int) -> list[TurnRecorded]: ...
    async def turns_by_ids(self, scope: MemoryScope, ids: Sequence[UUID]) -> list[TurnRecorded]: ...
    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None: ...
    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply: ...
    async def mark_reply_published(self, in_reply_to: UUID) -> None: ...
    async def message_ref(self, tenant_id: str, external_id: str) -> tuple[UUID, UUID] | None: ...
    async def conversation(self, conversation_id: UUID) -> ConversationRef | None: ...
    async def conversation_turns(
        self, scope: MemoryScope, after_seq: int, limit: int
    ) -> list[TurnRecorded] | None: ...
    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None: ...
    async def purge_expired(self, cutoff: datetime, batch: int) -> list[UUID]: ...
    async def ping(self) -> None: ...


@dataclass(frozen=True)
class VectorPoint:
    id: UUID
    vector: list[float]
    payload: dict[str, Any]


@dataclass(frozen=True)
class VectorHit:
    id: UUID
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


class VectorIndex(Protocol):
    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...
    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int) -> list[VectorHit]: ...
    async def delete(self, ids: Sequence[UUID]) -> None: ...
    async def close(self) -> None: ...


class Embedder(Protocol):
    @property
    def dimension(self) -> int: ...
    @property
    def name(self) -> str: ...
    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


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


class ChatModel(Protocol):
    @property
    def name(self) -> str: ...
    async def complete(self, messages: Sequence[ChatMessage]) -> Completion: ...
