"""Replies as they happen, for web clients: which of a conversation's reply events a caller
sees (its event stream), and waiting a bounded time for the reply to one message (`wait`).
Plain functions over the ReplyFeed and ReplyLedger ports; the HTTP edge frames them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from contracts import ReplyGenerated, ReplyTokensGenerated
from convmem.ports import ConversationRef, FeedItem, ReplyLedger

_REMEMBERED = 256  # replies a stream remembers having ended, to drop their late pieces and copies


@dataclass(frozen=True)
class StreamEvent:
    kind: Literal["token", "reply"]
    position: str  # the frame's id: resume after it with Last-Event-ID
    event: ReplyGenerated | ReplyTokensGenerated


async def conversation_events(items: AsyncIterator[FeedItem], owner: ConversationRef) -> AsyncIterator[StreamEvent]:
    """The owner's reply pieces and replies, each reply once. Pieces of a reply that already
    ended (they can trail it, or come from a retried generation) are left out, and so are
    copies of a reply (a re-publish after a crash): the reply frame is the last word."""
    async for event in _once_each(items, lambda e: (e.tenant_id, e.user_id, e.conversation_id) == (
            owner.tenant_id, owner.user_id, owner.conversation_id)):
        yield event


async def user_events(items: AsyncIterator[FeedItem], tenant_id: str, user_id: str) -> AsyncIterator[StreamEvent]:
    """As conversation_events, for every conversation of one user."""
    async for event in _once_each(items, lambda e: (e.tenant_id, e.user_id) == (tenant_id, user_id)):
        yield event


async def _once_each(items: AsyncIterator[FeedItem], mine: Callable[[ReplyGenerated | ReplyTokensGenerated], bool]
                     ) -> AsyncIterator[StreamEvent]:
    ended: dict[UUID, None] = {}
    async for item in items:
        event = item.event
        if not mine(event):
            continue  # defence in depth: the routing says this reader's, the event must agree
        if event.message_id in ended:
            continue
        if isinstance(event, ReplyGenerated):
            ended[event.message_id] = None
            if len(ended) > _REMEMBERED:
                del ended[next(iter(ended))]
            yield StreamEvent("reply", item.position, event)
        else:
            yield StreamEvent("token", item.position, event)


async def reply_within(items: AsyncIterator[FeedItem], replies: ReplyLedger, message_id: UUID,
                       seconds: float) -> ReplyGenerated | None:
    """The reply to `message_id` if it is ready within `seconds`: from the store when it was
    claimed already (a retried post), else from the feed, which the caller began following
    before the message was published, so the reply cannot slip past."""
    stored = await replies.find_reply(message_id)
    if stored is not None:
        return stored.reply
    deadline = time.monotonic() + seconds

    async def first() -> ReplyGenerated | None:
        async for item in items:
            if isinstance(item.event, ReplyGenerated) and item.event.in_reply_to == message_id:
                return item.event
        return None  # the feed cut us off: the store is asked below

    try:
        found = await asyncio.wait_for(first(), timeout=seconds)
    except TimeoutError:
        found = None
    while found is None:
        stored = await replies.find_reply(message_id)
        if stored is not None:
            return stored.reply
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
    return found
