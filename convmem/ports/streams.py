"""Ports of the live view of replies: the responder writes a reply's text as the model
produces it (TokenSink), the HTTP edge follows a conversation's replies as they happen
(ReplyFeed). Both run over Kafka in production (convmem.delivery.tokens, .feed), so the
responder and the edge may be different processes; neither side ever waits for the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from contracts import ReplyGenerated, ReplyTokensGenerated, TurnRecorded


class TextStream(Protocol):
    def write(self, text: str) -> None:
        """Queue a piece of text; returns at once, whatever the transport is doing."""
        ...

    async def close(self) -> None:
        """Send what is queued, for a bounded time; never raises (a live view is best effort)."""
        ...


class TokenSink(Protocol):
    def open(self, turn: TurnRecorded, reply_id: UUID) -> TextStream: ...


@dataclass(frozen=True)
class FeedItem:
    position: str  # opaque: following again `after` it resumes right behind this item
    event: ReplyGenerated | ReplyTokensGenerated  # opened (text readable)


class ReplyFeed(Protocol):
    def follow(self, conversation_id: UUID, after: str | None = None
               ) -> AbstractAsyncContextManager[AsyncIterator[FeedItem]]:
        """A conversation's reply events from now on (and, with `after`, those since that
        position first). Following starts on entering the context, so nothing published
        after that is missed. The iterator ends when the reader fell too far behind: it
        may follow again after the last position it saw."""
        ...

    def follow_user(self, tenant_id: str, user_id: str, after: str | None = None
                    ) -> AbstractAsyncContextManager[AsyncIterator[FeedItem]]:
        """As `follow`, for every conversation of one user, those begun later included."""
        ...
