"""Hand-written fakes of our own ports, for unit tests."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.errors import OwnershipConflict
from convmem.ports import (
    ChatMessage,
    Completion,
    ConversationRef,
    MemoryScope,
    RecordOutcome,
    StoredReply,
    VectorHit,
    VectorPoint,
)


class FakeStore:
    def __init__(self) -> None:
        self.turns: dict[UUID, TurnRecorded] = {}
        self.published: set[UUID] = set()
        self.owners: dict[UUID, tuple[str, str]] = {}
        self.replies: dict[UUID, StoredReply] = {}
        self.embedded: set[UUID] = set()
        self.statuses: list[DeliveryStatusChanged] = []

    async def record_turn(self, event: MessageReceived | ReplyGenerated) -> RecordOutcome:
        if event.message_id in self.turns:
            return RecordOutcome(self.turns[event.message_id], False, event.message_id in self.published)
        owner = self.owners.setdefault(event.conversation_id, (event.tenant_id, event.user_id))
        if owner != (event.tenant_id, event.user_id):
            raise OwnershipConflict("conversation belongs to another user")
        seq = 1 + sum(1 for t in self.turns.values() if t.conversation_id == event.conversation_id)
        user = isinstance(event, MessageReceived)
        turn = TurnRecorded(
            tenant_id=event.tenant_id, user_id=event.user_id, conversation_id=event.conversation_id,
            message_id=event.message_id, seq=seq, role=event.role if user else "assistant", channel=event.channel,
            text=event.text, external_id=event.external_id if user else None,
            in_reply_to=None if user else event.in_reply_to, reply_expected=event.reply_expected if user else False,
            occurred_at=event.occurred_at, recorded_at=datetime.now(UTC))
        self.turns[event.message_id] = turn
        return RecordOutcome(turn, True, False)

    async def mark_turn_published(self, message_id: UUID) -> None:
        self.published.add(message_id)

    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None:
        self.embedded.update(message_ids)

    def _mine(self, scope: MemoryScope) -> list[TurnRecorded]:
        return [t for t in self.turns.values() if (t.tenant_id, t.user_id) == (scope.tenant_id, scope.user_id)
                and (scope.conversation_id is None or t.conversation_id == scope.conversation_id)]

    async def recent_turns(self, scope: MemoryScope, before_seq: int, limit: int) -> list[TurnRecorded]:
        return sorted((t for t in self._mine(scope) if t.seq < before_seq), key=lambda t: t.seq)[-limit:]

    async def turns_by_ids(self, scope: MemoryScope, ids: Sequence[UUID]) -> list[TurnRecorded]:
        return [t for t in self._mine(scope) if t.message_id in set(ids)]

    async def conversation_turns(self, scope: MemoryScope, after_seq: int, limit: int) -> list[TurnRecorded] | None:
        if self.owners.get(scope.conversation_id) != (scope.tenant_id, scope.user_id):  # type: ignore[arg-type]
            return None
        return sorted((t for t in self._mine(scope) if t.seq > after_seq), key=lambda t: t.seq)[:limit]

    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None:
        return self.replies.get(in_reply_to)

    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply:
        return self.replies.setdefault(reply.in_reply_to, StoredReply(reply, False))

    async def mark_reply_published(self, in_reply_to: UUID) -> None:
        self.replies[in_reply_to] = StoredReply(self.replies[in_reply_to].reply, True)

    async def message_ref(self, tenant_id: str, external_id: str) -> tuple[UUID, UUID] | None:
        for t in self.turns.values():
            if (t.tenant_id, t.external_id) == (tenant_id, external_id):
                return t.message_id, t.conversation_id
        return None

    async def conversation(self, conversation_id: UUID) -> ConversationRef | None:
        owner = self.owners.get(conversation_id)
        return None if owner is None else ConversationRef(conversation_id, *owner)

    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        self.statuses.append(event)

    async def purge_expired(self, cutoff: datetime, batch: int) -> list[UUID]:
        old = [t.message_id for t in self.turns.values() if t.occurred_at < cutoff][:batch]
        for i in old:
            del self.turns[i]
        return old

    async def ping(self) -> None:
        return None


class FakeIndex:
    """Brute-force cosine search with the same scope semantics as the real adapters."""

    def __init__(self) -> None:
        self.points: dict[UUID, VectorPoint] = {}

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        self.points.update({p.id: p for p in points})

    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int) -> list[VectorHit]:
        from convmem.vectors import scope_terms

        terms = scope_terms(scope)
        hits = [VectorHit(p.id, _cos(vector, p.vector), p.payload) for p in self.points.values()
                if all(p.payload.get(k) == v for k, v in terms.items())]
        return sorted(hits, key=lambda h: -h.score)[:limit]

    async def delete(self, ids: Sequence[UUID]) -> None:
        for i in ids:
            self.points.pop(i, None)

    async def close(self) -> None:
        return None


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class FakeEmbedder:
    """Hashed bag of words: texts sharing words are similar, which is all unit tests need."""

    name = "fake-bow"
    dimension = 64

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            v = [0.0] * self.dimension
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                v[int(hashlib.sha1(word.encode()).hexdigest(), 16) % self.dimension] += 1.0  # noqa: S324
            out.append(v)
        return out


class FakeChatModel:
    name = "fake-model"

    def __init__(self) -> None:
        self.calls: list[list[ChatMessage]] = []

    async def complete(self, messages: Sequence[ChatMessage]) -> Completion:
        self.calls.append(list(messages))
        return Completion(f"answer to: {messages[-1].content}", self.name, 7, 3, "stop")
