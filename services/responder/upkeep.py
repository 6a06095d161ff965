"""Conversation upkeep after a reply: the rolling summary of turns that left the recent
window, and a title written by the model for a new conversation. Both are written by the
model when one is configured and made without it otherwise."""

from __future__ import annotations

import re

from contracts import TurnRecorded
from convmem.memory.context import RecallPolicy
from convmem.ports import ChatMessage, ChatModel, Conversations, MemoryReader, MemoryScope, Summary

SUMMARY_PROMPT = (
    "You maintain a running summary of a conversation between a user and an assistant. "
    "Rewrite the summary so that it also covers the new turns. Keep facts about the user "
    "(names, places, dates, preferences, plans, decisions) with their dates; drop small talk. "
    "Answer with the summary only, at most {chars} characters."
)
TITLE_PROMPT = ("Write a title of at most six words for a conversation that starts with the message below. "
                "Answer with the title only, no quotes.")
_TITLE_CHARS = 80
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'll|my|me|we|our)\b", re.IGNORECASE)


def _informative(sentence: str) -> float:
    """How much a sentence is likely to carry a fact worth keeping: statements about the
    speaker, numbers and names count; greetings and short acknowledgements do not."""
    words = sentence.split()
    if len(words) < 4:
        return 0.0
    names = sum(1 for w in words[1:] if w[:1].isupper())
    return (2.0 * bool(_FIRST_PERSON.search(sentence)) + 1.0 * bool(re.search(r"\d", sentence))
            + 0.5 * min(names, 3) + min(len(words), 30) / 30)


def extractive_summary(previous: str | None, turns: list[TurnRecorded], max_chars: int,
                       per_turns: int = 4) -> str:
    """Offline: keep the most informative user sentences (about one per `per_turns` turns),
    dated and in order, after the previous summary; the oldest lines go first when it is full."""
    scored = []
    for t in turns:
        if t.role != "user":
            continue
        for sentence in _SENTENCE.split(t.text.strip()):
            if (score := _informative(sentence)) > 0:
                scored.append((score, t.seq, f"{t.occurred_at:%Y-%m-%d}: {sentence.strip()}"))
    keep = max(1, len(turns) // per_turns)
    chosen = sorted(sorted(scored, reverse=True)[:keep], key=lambda x: x[1])
    lines = (previous.splitlines() if previous else []) + [line for _, _, line in chosen]
    while lines and len("\n".join(lines)) > max_chars:
        lines.pop(0)
    return "\n".join(lines)


async def refresh_summary(turn: TurnRecorded, memory: MemoryReader, conversations: Conversations,
                          model: ChatModel | None, policy: RecallPolicy) -> Summary | None:
    """Fold the turns that have left the recent window into the summary, once enough have."""
    horizon = turn.seq - policy.recent_turns  # turns up to here are no longer in the window
    current = await memory.summary(turn.conversation_id)
    done = current.through_seq if current else 0
    if horizon - done < policy.summary_every:
        return None
    scope = MemoryScope(turn.tenant_id, turn.user_id, turn.conversation_id)
    new = [t for t in (await memory.conversation_turns(scope, after_seq=done, limit=horizon - done) or [])
           if t.seq <= horizon]
    if not new:
        return None
    previous = current.text if current else None
    if model is None:
        text, method = extractive_summary(previous, new, policy.summary_max_chars), "extractive"
    else:
        transcript = "\n".join(f"{t.occurred_at:%Y-%m-%d} {t.role}: {t.text}" for t in new)
        completion = await model.complete([
            ChatMessage("system", SUMMARY_PROMPT.format(chars=policy.summary_max_chars)),
            ChatMessage("user", f"Summary so far:\n{previous or '(none)'}\n\nNew turns:\n{transcript}"),
        ])
        text, method = completion.text.strip()[: policy.summary_max_chars], "model"
    summary = Summary(turn.conversation_id, text, new[-1].seq, method)
    await conversations.save_summary(scope, summary)
    return summary


async def name_conversation(turn: TurnRecorded, conversations: Conversations, model: ChatModel | None) -> str | None:
    """A model-written title for a live conversation's first turn. Without a model, and for
    imported history (no model calls in bulk), the title stays the first message's opening,
    set when it was recorded; a title a person set is kept."""
    if model is None or turn.seq != 1 or turn.role != "user" or not turn.reply_expected:
        return None
    completion = await model.complete([ChatMessage("system", TITLE_PROMPT), ChatMessage("user", turn.text)])
    title = completion.text.strip().strip("\"'").splitlines()[0][:_TITLE_CHARS].strip() if completion.text.strip() else ""
    if not title:
        return None
    return title if await conversations.set_model_title(turn.conversation_id, title) else None
