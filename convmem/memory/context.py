"""The context block: what a model needs to answer the next turn of a conversation, under a
token budget. The conversation's rolling summary, turns recalled from the same user's memory
by the retriever (never another user's: every read is scoped), with their dates, speakers
and ids, and as much of the recent window as still fits. The responder sends exactly this to
its model; GET /v1/context and the MCP tool hand the same block to apps that bring their own.

Tokens are counted with a real tokenizer (the TokenCounter port), not estimated from
characters, which undercounts text in scripts without spaces several times over."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from contracts import TurnRecorded
from convmem.memory.retrieval import Retriever, SearchHit
from convmem.ports import ChatMessage, MemoryReader, MemoryScope, Summary, TokenCounter

SYSTEM_PROMPT = (
    "You are a helpful assistant with a long-term memory of this user's earlier conversations. "
    "Use the remembered turns when they are relevant and cite them as [1], [2], ... "
    "Dates are when a turn was said; use them for questions about time. "
    "If neither the conversation nor the memory holds the answer, say you do not know."
)
SUMMARY_HEADER = "\n\nSummary of this conversation so far:\n"
MEMORY_HEADER = "\n\nMemory from earlier turns:\n"
MESSAGE_OVERHEAD = 4  # tokens a chat format spends around each message (role, separators)
END = 2**31 - 1  # a seq after every turn: the window of a conversation as it stands


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


def speaker(turn: TurnRecorded) -> str:
    """Who said it, as the block names them: the person's name when the history has names."""
    name = turn.metadata.get("speaker")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return "the user" if turn.role == "user" else "you"


def line(turn: TurnRecorded) -> str:
    return f"{turn.occurred_at:%Y-%m-%d} {speaker(turn)}: {turn.text}"


@dataclass(frozen=True)
class Recalled:
    turn: TurnRecorded
    score: float
    context: list[TurnRecorded] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [line(t) for t in sorted([*self.context, self.turn], key=lambda t: t.seq)]


@dataclass(frozen=True)
class Context:
    recent: list[TurnRecorded]
    recalled: list[Recalled]
    summary: Summary | None
    question: str
    tokens: int  # what messages() costs, counted by the tokenizer
    budget: int

    @property
    def sources(self) -> list[UUID]:
        """The recalled turns' ids: source [n] of the block is sources[n-1]."""
        return [r.turn.message_id for r in self.recalled]

    def system_prompt(self) -> str:
        system = SYSTEM_PROMPT
        if self.summary is not None:
            system += SUMMARY_HEADER + self.summary.text
        if self.recalled:
            system += MEMORY_HEADER + "\n".join(_memory_entry(i, r) for i, r in enumerate(self.recalled, 1))
        return system

    def messages(self) -> list[ChatMessage]:
        """What the responder sends: the block as the system message, the recent window as
        the chat so far, and the question last."""
        msgs = [ChatMessage("system", self.system_prompt())]
        msgs += [ChatMessage("assistant" if t.role == "assistant" else "user", t.text) for t in self.recent]
        msgs.append(ChatMessage("user", self.question))
        return msgs

    def block(self) -> str:
        """The same, as one text for an app that builds its own prompt."""
        text = self.system_prompt()
        if self.recent:
            text += "\n\nRecent turns of this conversation:\n" + "\n".join(line(t) for t in self.recent)
        return text


def _memory_entry(i: int, r: Recalled) -> str:
    return f"[{i}] " + "\n    ".join(r.lines())


def fit(question: str, recent: list[TurnRecorded], recalled: list[Recalled], summary: Summary | None,
        budget: int, tokens: TokenCounter) -> Context:
    """Spend the budget in order of need: the instructions and the question (always sent),
    the summary (up to a quarter), recalled memory (best first, up to a third), then the
    recent window, newest first. Pieces are counted as they will be sent, and the total is
    counted again on the finished messages: `tokens` is what the model will read."""
    spent = tokens.count(SYSTEM_PROMPT) + tokens.count(question) + 2 * MESSAGE_OVERHEAD
    if summary is not None and (cost := tokens.count(SUMMARY_HEADER + summary.text)) <= budget // 4:
        spent += cost
    else:
        summary = None
    memory_left = budget // 3 - tokens.count(MEMORY_HEADER)
    kept: list[Recalled] = []
    for r in recalled:
        for candidate in (r, Recalled(r.turn, r.score)):  # without its neighbours it may still fit
            cost = tokens.count("\n" + _memory_entry(len(kept) + 1, candidate))
            if cost <= memory_left:
                kept.append(candidate)
                memory_left -= cost
                spent += cost
                break
    if kept:
        spent += tokens.count(MEMORY_HEADER)
    window: list[TurnRecorded] = []
    for t in reversed(recent):
        cost = tokens.count(t.text) + MESSAGE_OVERHEAD
        if spent + cost > budget:
            break
        window.insert(0, t)
        spent += cost
    ctx = Context(window, kept, summary, question, 0, budget)
    while True:  # pieces add up as counted unless a tokenizer merges across their seams
        total = sum(tokens.count(m.content) + MESSAGE_OVERHEAD for m in ctx.messages())
        if total <= budget or not ctx.recent:
            return replace(ctx, tokens=total)
        ctx = replace(ctx, recent=ctx.recent[1:])


def _relevant(hit: SearchHit, policy: RecallPolicy) -> bool:
    """Found by its words, close enough in meaning, or beside such a turn (an answer)."""
    lexical = any(name.startswith("fts") for name in hit.ranks)
    close = hit.similarity is not None and hit.similarity >= policy.min_similarity
    return lexical or close or not hit.ranks


@dataclass(frozen=True)
class ContextBuilder:
    memory: MemoryReader
    retriever: Retriever
    tokens: TokenCounter
    policy: RecallPolicy = field(default_factory=RecallPolicy)

    async def for_turn(self, turn: TurnRecorded) -> Context:
        """The responder's context for a turn it answers: the window ends before it."""
        return await self.build(MemoryScope(turn.tenant_id, turn.user_id, turn.conversation_id), turn.text,
                                turn.occurred_at, before_seq=turn.seq, exclude={turn.message_id})

    async def build(self, scope: MemoryScope, question: str, now: datetime, *, before_seq: int = END,
                    budget: int | None = None, exclude: set[UUID] | None = None) -> Context:
        """`scope` names the user and, optionally, the conversation whose summary and recent
        window come with the recalled memory (recall itself spans all the user's turns)."""
        policy = self.policy
        conversation = scope.conversation_id
        recent = await self.memory.recent_turns(scope, before_seq=before_seq, limit=policy.recent_turns) \
            if conversation is not None and policy.recent_turns else []
        summary = await self.memory.summary(conversation) if conversation is not None else None
        recalled: list[Recalled] = []
        if policy.recall_k and question.strip():
            seen = {t.message_id for t in recent} | (exclude or set())
            result = await self.retriever.search(question, MemoryScope(scope.tenant_id, scope.user_id),
                                                 policy.recall_k + len(seen), now=now)
            recalled = [Recalled(h.turn, h.score, [c for c in h.context if c.message_id not in seen])
                        for h in result.hits if h.turn.message_id not in seen and _relevant(h, policy)]
            recalled = recalled[: policy.recall_k]
        return fit(question, recent, recalled, summary, budget or policy.token_budget, self.tokens)
