"""Kafka side of the sender: the replies of WhatsApp conversations, in order per
conversation and many conversations at once, so one conversation's backoff (a rate limit,
a user's own throughput limit) never holds the others up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contracts import ReplyGenerated, topics
from convmem.delivery import Subscriptions
from convmem.ports import SendLedger, WhatsAppApi
from services.sender.sending import SendPolicy, send_reply


@dataclass(frozen=True)
class SenderDeps:
    sends: SendLedger
    api: WhatsAppApi
    policy: SendPolicy


def register(subs: Subscriptions, deps: Callable[[], SenderDeps], concurrency: int = 1) -> None:
    @subs.each(topics.REPLIES, group="sender", event=ReplyGenerated, title="sender <- conv.replies.v1",
               description="Sends the replies of WhatsApp conversations through the Cloud API, each part at most "
                           "once, in order per conversation; a refused reply goes to conv.replies.v1.dlq with the "
                           "reason.", concurrency=concurrency)
    async def send(reply: ReplyGenerated) -> None:
        if reply.channel != "whatsapp":
            return
        d = deps()
        await send_reply(reply, sends=d.sends, api=d.api, policy=d.policy)
