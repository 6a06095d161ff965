"""Kafka side of the responder: one reply per recorded user turn, then conversation upkeep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from contracts import ReplyGenerated, ReplyTokensGenerated, TurnRecorded, topics
from convmem.delivery import Subscriptions
from convmem.delivery.tokens import TokenPublisher
from convmem.errors import RetryableError
from convmem.memory.context import ContextBuilder, RecallPolicy
from convmem.ports import ChatModel, Conversations, MemoryReader, ReplyLedger
from services.responder.reply import respond
from services.responder.upkeep import name_conversation, refresh_summary

log = structlog.get_logger("convmem.responder")


@dataclass(frozen=True)
class ResponderDeps:
    replies: ReplyLedger
    memory: MemoryReader
    conversations: Conversations
    context: Callable[[], ContextBuilder]  # built when a reply needs it: upkeep runs without an index
    model: ChatModel | None
    policy: RecallPolicy
    # The same model for conversation upkeep, where the process tells its calls apart (metrics).
    titles: ChatModel | None = None
    summaries: ChatModel | None = None


def awaits_reply(turn: TurnRecorded) -> bool:
    """Only user turns are answered and move the upkeep: every other turn (the replies
    themselves, half of the topic) is acknowledged unopened."""
    return turn.role == "user"


def register(subs: Subscriptions, deps: Callable[[], ResponderDeps], concurrency: int = 1) -> None:
    """Two subscriptions on the recorded turns: the replies, and the upkeep (titles and
    summaries) in a consumer group of its own, so that no model call but the reply's ever
    sits on the path of an answer. Both answer many conversations at once, each in order."""
    replies_out = subs.outlet(topics.REPLIES, ReplyGenerated, "responder -> conv.replies.v1",
                              "One reply per user turn, with the ids of the turns recalled as memory.")
    tokens = TokenPublisher(subs.outlet(
        topics.TOKENS, ReplyTokensGenerated, "responder -> conv.tokens.v1",
        "A reply's text as the model produces it, for live views (best effort, kept one hour). Each "
        "piece carries its offset in the reply; the ReplyGenerated that follows is the reply."))

    async def published(replies: Sequence[ReplyGenerated]) -> None:
        for reply in replies:
            await deps().replies.mark_reply_published(reply.in_reply_to)

    @subs.each(topics.TURNS, group="responder", event=TurnRecorded, title="responder <- conv.turns.v1",
               description="Answers recorded user turns that expect a reply.",
               publish_to=replies_out, mark=published, concurrency=concurrency, wants=awaits_reply)
    async def answer(turn: TurnRecorded) -> ReplyGenerated | None:
        d = deps()
        return await respond(turn, replies=d.replies, context=d.context(), model=d.model, tokens=tokens)

    @subs.each(topics.TURNS, group="responder.upkeep", event=TurnRecorded,
               title="responder.upkeep <- conv.turns.v1",
               description="Titles new conversations and folds turns that left the recent window into the "
                           "conversation's summary.", concurrency=concurrency, wants=awaits_reply)
    async def upkeep(turn: TurnRecorded) -> None:
        """A model outage delays a title or a summary, never an answer; the next turn of the
        conversation tries the summary again."""
        if turn.role != "user":
            return
        d = deps()
        try:
            await name_conversation(turn, d.conversations, d.titles or d.model)
            await refresh_summary(turn, d.memory, d.conversations, d.summaries or d.model, d.policy)
        except RetryableError as exc:
            log.warning("upkeep_deferred", conversation_id=str(turn.conversation_id), error=str(exc))
