"""Hand-written fakes of our own ports, for unit tests."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.errors import ConversationClosed, OwnershipConflict
from convmem.ports import (
    ChatMessage,
    Completion,
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    ConversationStatus,
    Enrichment,
    MemoryScope,
    RecordOutcome,
    Stats,
    StoredReply,
    Summary,
    VectorHit,
    VectorPoint,
)

_STOP = {"what", "is", "my", "the", "a", "an", "i", "did", "do", "you", "of", "to", "in", "and", "when", "was"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W_]+", text.lower()) if w not in _STOP}


class FakeStore:
    def __init__(self) -> None:
        self.turns: dict[UUID, TurnRecorded] = {}
        self.published: set[UUID] = set()
        self.owners: dict[UUID, tuple[str, str]] = {}
        self.replies: dict[UUID, StoredReply] = {}
        self.embedded: set[UUID] = set()
        self.statuses: list[DeliveryStatusChanged] = []
        self.conversations: dict[UUID, ConversationInfo] = {}
        self.summaries: dict[UUID, Summary] = {}

    async def record_turn(self, event: MessageReceived | ReplyGenerated,
                          enrichment: Enrichment | None = None) -> RecordOutcome:
        if event.message_id in self.turns:
            return RecordOutcome(self.turns[event.message_id], False, event.message_id in self.published)
        owner = self.owners.setdefault(event.conversation_id, (event.tenant_id, event.user_id))
        if owner != (event.tenant_id, event.user_id):
            raise OwnershipConflict("conversation belongs to another user")
        info = self.conversations.get(event.conversation_id)
        if info is not None and info.status == "deleted":
            raise ConversationClosed("deleted")
        if info is None:
            info = self.conversations[event.conversation_id] = ConversationInfo(
                event.conversation_id, event.tenant_id, event.user_id, event.channel, event.text[:80],
                "first_message", "general", "active", 0, event.occurred_at, event.occurred_at, None, {})
        self.conversations[event.conversation_id] = replace(info, message_count=info.message_count + 1,
                                                            last_message_at=event.occurred_at)
        found = enrichment or Enrichment()
        seq = 1 + sum(1 for t in self.turns.values() if t.conversation_id == event.conversation_id)
        user = isinstance(event, MessageReceived)
        turn = TurnRecorded(
            tenant_id=event.tenant_id, user_id=event.user_id, conversation_id=event.conversation_id,
            message_id=event.message_id, seq=seq, role=event.role if user else "assistant", channel=event.channel,
            text=event.text, external_id=event.external_id if user else None,
            in_reply_to=None if user else event.in_reply_to, reply_expected=event.reply_expected if user else False,
            occurred_at=event.occurred_at, recorded_at=datetime.now(UTC), language=found.language,
            intent=found.intent, intent_confidence=found.intent_confidence)
        self.turns[event.message_id] = turn
        return RecordOutcome(turn, True, False)

    async def mark_turn_published(self, message_id: UUID) -> None:
        self.published.add(message_id)

    async def mark_turns_published(self, message_ids: Sequence[UUID]) -> None:
        self.published.update(message_ids)

    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None:
        self.embedded.update(message_ids)

    async def texts_to_embed(self, message_ids: Sequence[UUID]) -> dict[UUID, str]:
        return {i: self.turns[i].text for i in message_ids if i in self.turns and i not in self.deleted}

    def _mine(self, scope: MemoryScope) -> list[TurnRecorded]:
        return [t for t in self.turns.values() if t.message_id not in self.deleted
                and scope.admits(t.tenant_id, t.user_id, t.conversation_id, t.occurred_at)]

    @property
    def deleted(self) -> set[UUID]:
        gone = {c for c, info in self.conversations.items() if info.status == "deleted"}
        return {t.message_id for t in self.turns.values() if t.conversation_id in gone}

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
        info = self.conversations.get(conversation_id)
        return None if owner is None else ConversationRef(conversation_id, *owner, info.status if info else "active")

    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        self.statuses.append(event)

    async def purge_expired(self, cutoff: datetime, batch: int,
                            deleted_before: datetime | None = None) -> list[UUID]:
        old = [t.message_id for t in self.turns.values() if t.occurred_at < cutoff][:batch]
        for i in old:
            del self.turns[i]
        return old

    async def ping(self) -> None:
        return None

    async def search_text(self, scope: MemoryScope, query: str, limit: int) -> list[tuple[UUID, float]]:
        q = _words(query)
        scored = [(t.message_id, len(q & _words(t.text)) / max(1, len(q))) for t in self._mine(scope)]
        return sorted([s for s in scored if s[1] > 0], key=lambda s: -s[1])[:limit]

    async def neighbours(self, scope: MemoryScope, places: Sequence[tuple[UUID, int]],
                         radius: int) -> list[TurnRecorded]:
        wanted = {(c, s + d) for c, s in places for d in range(-radius, radius + 1)}
        return [t for t in self._mine(MemoryScope(scope.tenant_id, scope.user_id))
                if (t.conversation_id, t.seq) in wanted]

    async def conversation_info(self, tenant_id: str, conversation_id: UUID) -> ConversationInfo | None:
        info = self.conversations.get(conversation_id)
        return info if info is not None and info.tenant_id == tenant_id else None

    async def list_conversations(self, where: ConversationFilter, limit: int) -> list[ConversationInfo]:
        rows = [c for c in self.conversations.values() if c.tenant_id == where.tenant_id
                and (where.user_id is None or c.user_id == where.user_id)
                and (c.status == where.status if where.status else c.status != "deleted")]
        rows.sort(key=lambda c: (c.created_at, c.conversation_id), reverse=True)
        if where.after is not None:
            rows = [c for c in rows if (c.created_at, c.conversation_id) < where.after]
        return rows[:limit]

    async def update_conversation(self, tenant_id: str, conversation_id: UUID, *, title: str | None = None,
                                  status: ConversationStatus | None = None) -> ConversationInfo | None:
        info = await self.conversation_info(tenant_id, conversation_id)
        if info is None or info.status == "deleted":
            return None
        info = replace(info, title=title or info.title, title_source="user" if title else info.title_source,
                       status=status or info.status)
        self.conversations[conversation_id] = info
        return info

    async def delete_conversation(self, tenant_id: str, conversation_id: UUID) -> list[UUID]:
        info = await self.conversation_info(tenant_id, conversation_id)
        if info is None:
            return []
        live = [t.message_id for t in self.turns.values() if t.conversation_id == conversation_id
                and t.message_id not in self.deleted]
        self.conversations[conversation_id] = replace(info, status="deleted")
        return live

    async def set_model_title(self, conversation_id: UUID, title: str) -> bool:
        info = self.conversations.get(conversation_id)
        if info is None or info.title_source != "first_message":
            return False
        self.conversations[conversation_id] = replace(info, title=title, title_source="model")
        return True

    async def stats(self, tenant_id: str, user_id: str | None) -> Stats:
        turns = [t for t in self.turns.values() if t.tenant_id == tenant_id and t.message_id not in self.deleted
                 and (user_id is None or t.user_id == user_id)]
        expected = [t for t in turns if t.role == "user" and t.reply_expected]
        return Stats(len({t.user_id for t in turns}), len({t.conversation_id for t in turns}), len(turns),
                     {r: sum(t.role == r for t in turns) for r in ("user", "assistant", "system")},
                     len(expected), sum(1 for t in expected if (r := self.replies.get(t.message_id)) and r.published),
                     min((t.occurred_at for t in turns), default=None), max((t.occurred_at for t in turns), default=None))

    async def summary(self, conversation_id: UUID) -> Summary | None:
        return self.summaries.get(conversation_id)

    async def save_summary(self, scope: MemoryScope, summary: Summary) -> None:
        old = self.summaries.get(summary.conversation_id)
        if old is None or old.through_seq < summary.through_seq:
            self.summaries[summary.conversation_id] = summary

    async def known_external_ids(self, tenant_id: str, external_ids: Sequence[str]) -> set[str]:
        return {t.external_id for t in self.turns.values()
                if t.tenant_id == tenant_id and t.external_id in set(external_ids) and t.external_id}


class FakeIndex:
    """Brute-force cosine search with the same scope semantics as the real adapters."""

    def __init__(self) -> None:
        self.points: dict[UUID, VectorPoint] = {}

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        self.points.update({p.id: p for p in points})

    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int) -> list[VectorHit]:
        from convmem.vectors import scope_range, scope_terms

        terms, bounds = scope_terms(scope), scope_range(scope) or {}
        hits = [VectorHit(p.id, _cos(vector, p.vector), p.payload) for p in self.points.values()
                if all(p.payload.get(k) == v for k, v in terms.items())
                and (not bounds or bounds.get("gte", -math.inf) <= p.payload["occurred_at"] < bounds.get("lt", math.inf))]
        return sorted(hits, key=lambda h: -h.score)[:limit]

    async def delete(self, ids: Sequence[UUID]) -> None:
        for i in ids:
            self.points.pop(i, None)

    async def delete_scope(self, scope: MemoryScope) -> None:
        from convmem.vectors import scope_terms

        terms = scope_terms(scope)
        for pid in [p.id for p in self.points.values() if all(p.payload.get(k) == v for k, v in terms.items())]:
            del self.points[pid]

    async def vectors(self, ids: Sequence[UUID]) -> dict[UUID, list[float]]:
        return {i: list(self.points[i].vector) for i in ids if i in self.points}

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
