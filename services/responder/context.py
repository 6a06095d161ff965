"""Context assembly: the conversation's recent turns plus the most similar turns from the
same user's memory (never another user's: every read below is scoped)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts import TurnRecorded
from convmem.ports import ChatMessage, Embedder, MemoryScope, Store, VectorIndex

SYSTEM_PROMPT = (
    "You are a helpful assistant with a long-term memory of this user's earlier conversations. "
    "Use the remembered turns when they are relevant and cite them as [1], [2], ... "
    "If neither the conversation nor the memory holds the answer, say you do not know."
)


@dataclass(frozen=True)
class RecallPolicy:
    recent_turns: int = 12
    recall_k: int = 5
    min_score: float = 0.25


@dataclass(frozen=True)
class Recalled:
    turn: TurnRecorded
    score: float


@dataclass(frozen=True)
class Context:
    recent: list[TurnRecorded]
    recalled: list[Recalled]

    @property
    def sources(self) -> list:
        return [r.turn.message_id for r in self.recalled]

    def messages(self, current: TurnRecorded) -> list[ChatMessage]:
        system = SYSTEM_PROMPT
        if self.recalled:
            lines = [f"[{i}] {r.turn.occurred_at:%Y-%m-%d} {_speaker(r.turn)}: {r.turn.text}"
                     for i, r in enumerate(self.recalled, 1)]
            system += "\n\nMemory from earlier turns:\n" + "\n".join(lines)
        msgs = [ChatMessage("system", system)]
        msgs += [ChatMessage("assistant" if t.role == "assistant" else "user", t.text) for t in self.recent]
        msgs.append(ChatMessage("user", current.text))
        return msgs


def _speaker(turn: TurnRecorded) -> str:
    return "the user said" if turn.role == "user" else "you said"


async def build_context(turn: TurnRecorded, store: Store, index: VectorIndex, embedder: Embedder,
                        policy: RecallPolicy) -> Context:
    user = MemoryScope(turn.tenant_id, turn.user_id)
    conversation = MemoryScope(turn.tenant_id, turn.user_id, turn.conversation_id)
    recent = await store.recent_turns(conversation, before_seq=turn.seq, limit=policy.recent_turns) \
        if policy.recent_turns else []
    if not policy.recall_k or not turn.text.strip():
        return Context(recent, [])
    seen = {t.message_id for t in recent} | {turn.message_id}
    [query] = await embedder.embed([turn.text])
    hits = await index.search(query, user, limit=policy.recall_k + len(seen))
    wanted = [h for h in hits if h.id not in seen and h.score >= policy.min_score][: policy.recall_k]
    # Postgres is the source of truth: a turn deleted since it was indexed is not recalled.
    stored = {t.message_id: t for t in await store.turns_by_ids(user, [h.id for h in wanted])}
    recalled = [Recalled(stored[h.id], h.score) for h in wanted if h.id in stored]
    return Context(recent, recalled)
