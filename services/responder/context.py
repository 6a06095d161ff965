"""Context assembly under a token budget: the conversation's rolling summary, turns recalled
from the same user's memory by hybrid retrieval (never another user's: every read is
scoped), and as much of the recent window as still fits."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from contracts import TurnRecorded
from convmem.ports import ChatMessage, MemoryReader, MemoryScope, Summary
from convmem.retrieval import Retriever, SearchHit

SYSTEM_PROMPT = (
    "You are a helpful assistant with a long-term memory of this user's earlier conversations. "
    "Use the remembered turns when they are relevant and cite them as [1], [2], ... "
    "Dates are when a turn was said; use them for questions about time. "
    "If neither the conversation nor the memory holds the answer, say you do not know."
)


def estimate_tokens(text: str) -> int:
    """About four characters per token for English with BPE tokenizers; the budget keeps a
    margin, so an estimate that is off by a tenth does no harm and costs no tokenizer."""
    return len(text) // 4 + 4


@dataclass(frozen=True)
class RecallPolicy:
    recent_turns: int = 12
    recall_k: int = 5
    # A recalled turn must share words with the question or be at least this close to it.
    min_similarity: float = 0.25
    token_budget: int = 3000
    # Refresh the summary once this many turns have left the recent window since the last one.
    summary_every: int = 20
    summary_max_chars: int = 2000


@dataclass(frozen=True)
class Recalled:
    turn: TurnRecorded
    score: float
    context: list[TurnRecorded] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{t.occurred_at:%Y-%m-%d} {_speaker(t)}: {t.text}" for t in
                sorted([*self.context, self.turn], key=lambda t: t.seq)]


@dataclass(frozen=True)
class Context:
    recent: list[TurnRecorded]
    recalled: list[Recalled]
    summary: Summary | None = None

    @property
    def sources(self) -> list[UUID]:
        return [r.turn.message_id for r in self.recalled]

    def system_prompt(self) -> str:
        system = SYSTEM_PROMPT
        if self.summary is not None:
            system += "\n\nSummary of this conversation so far:\n" + self.summary.text
        if self.recalled:
            blocks = [f"[{i}] " + "\n    ".join(r.lines()) for i, r in enumerate(self.recalled, 1)]
            system += "\n\nMemory from earlier turns:\n" + "\n".join(blocks)
        return system

    def messages(self, current: TurnRecorded) -> list[ChatMessage]:
        msgs = [ChatMessage("system", self.system_prompt())]
        msgs += [ChatMessage("assistant" if t.role == "assistant" else "user", t.text) for t in self.recent]
        msgs.append(ChatMessage("user", current.text))
        return msgs

    def tokens(self, current: TurnRecorded) -> int:
        return sum(estimate_tokens(m.content) for m in self.messages(current))


def _speaker(turn: TurnRecorded) -> str:
    return "the user said" if turn.role == "user" else "you said"


def _relevant(hit: SearchHit, policy: RecallPolicy) -> bool:
    lexical = any(name.startswith("fts") for name in hit.ranks)
    return lexical or (hit.similarity is not None and hit.similarity >= policy.min_similarity)


def fit(current: TurnRecorded, recent: list[TurnRecorded], recalled: list[Recalled], summary: Summary | None,
        budget: int) -> Context:
    """Spend the budget in order of need: the question itself, the summary (up to a quarter),
    recalled memory (best first, up to a third), then the recent window, newest first."""
    spent = estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(current.text)
    if summary is not None and estimate_tokens(summary.text) <= budget // 4:
        spent += estimate_tokens(summary.text)
    else:
        summary = None
    memory_left = budget // 3
    kept: list[Recalled] = []
    for r in recalled:
        for candidate in (r, Recalled(r.turn, r.score)):  # without its neighbours it may still fit
            cost = sum(estimate_tokens(line) for line in candidate.lines())
            if cost <= memory_left:
                kept.append(candidate)
                memory_left -= cost
                spent += cost
                break
    window: list[TurnRecorded] = []
    for t in reversed(recent):
        if spent + estimate_tokens(t.text) > budget:
            break
        window.insert(0, t)
        spent += estimate_tokens(t.text)
    return Context(window, kept, summary)


async def build_context(turn: TurnRecorded, memory: MemoryReader, retriever: Retriever,
                        policy: RecallPolicy) -> Context:
    user = MemoryScope(turn.tenant_id, turn.user_id)
    conversation = MemoryScope(turn.tenant_id, turn.user_id, turn.conversation_id)
    recent = await memory.recent_turns(conversation, before_seq=turn.seq, limit=policy.recent_turns) \
        if policy.recent_turns else []
    summary = await memory.summary(turn.conversation_id)
    recalled: list[Recalled] = []
    if policy.recall_k and turn.text.strip():
        seen = {t.message_id for t in recent} | {turn.message_id}
        result = await retriever.search(turn.text, user, policy.recall_k + len(seen), now=turn.occurred_at)
        recalled = [Recalled(h.turn, h.score, [c for c in h.context if c.message_id not in seen])
                    for h in result.hits if h.turn.message_id not in seen and _relevant(h, policy)]
        recalled = recalled[: policy.recall_k]
    return fit(turn, recent, recalled, summary, policy.token_budget)
