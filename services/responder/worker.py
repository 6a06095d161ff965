"""Kafka adapter of the responder."""

from __future__ import annotations

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from contracts import ReplyGenerated, TurnRecorded, topics
from convmem.delivery import open_or_drop
from convmem.errors import RetryableError
from convmem.resources import Resources
from services.responder.context import RecallPolicy
from services.responder.reply import respond
from services.responder.upkeep import name_conversation, refresh_summary

log = structlog.get_logger("convmem.responder")


def register(broker: KafkaBroker, res: Resources, group_prefix: str, policy: RecallPolicy) -> None:
    replies_out = broker.publisher(
        topics.REPLIES, schema=ReplyGenerated, title="responder -> conv.replies.v1",
        description="One reply per user turn, with the ids of the turns recalled as memory.")

    @broker.subscriber(topics.TURNS, group_id=f"{group_prefix}.responder",
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest",
                       title="responder <- conv.turns.v1",
                       description="Answers recorded user turns that expect a reply.")
    async def answer(event: TurnRecorded) -> None:
        turn = await open_or_drop(res.sealer, event)
        if turn is None:
            return
        reply = await respond(turn, store=res.store, retriever=res.retriever(),
                              model=res.chat_model, policy=policy)
        if reply is not None:
            await replies_out.publish(await res.sealer.seal(reply), key=reply.key)
            await res.store.mark_reply_published(reply.in_reply_to)
        if turn.role == "user":
            # Upkeep after the reply is out: a model outage delays a summary, never an answer,
            # and the next turn tries again.
            try:
                await name_conversation(turn, res.store, res.chat_model)
                await refresh_summary(turn, res.store, res.chat_model, policy)
            except RetryableError as exc:
                log.warning("upkeep_deferred", conversation_id=str(turn.conversation_id), error=str(exc))
