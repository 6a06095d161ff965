"""A reply's text to conv.tokens.v1 as the model produces it (the TokenSink port over Kafka).

The model's stream is never slowed by this: `write` only appends to a buffer, and one task
per reply publishes whatever has accumulated each time the previous publish was
acknowledged, at most one piece every `piece_interval_s` (the first piece at once). A model
streams a token every few tens of milliseconds: a piece per token would cost a seal and a
produce request each, for a live view that cannot show them faster than a person reads.
A fast model or a slow broker makes fewer, longer pieces, never a wait. The buffer is bounded by the reply itself (the model's max_tokens). Token pieces are a live
view, so a failed publish is logged and skipped: the ReplyGenerated that follows is the
reply, and a reader places each piece by its offset, so a gap costs nothing but a moment's
preview."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from uuid import UUID

import structlog

from contracts import ReplyTokensGenerated, TurnRecorded
from convmem.delivery.subscriptions import Outlet

log = structlog.get_logger("convmem.delivery")


@dataclass
class TokenPublisher:
    outlet: Outlet[ReplyTokensGenerated]
    # How long the end of a reply's token stream may hold the reply back: the reply is
    # published after its last pieces, so that a live view sees them in order.
    flush_timeout_s: float = 2.0
    # Pieces are coalesced by time: whatever the model wrote in this long goes out as one.
    piece_interval_s: float = 0.1

    def open(self, turn: TurnRecorded, reply_id: UUID) -> _Stream:
        return _Stream(self, turn, reply_id)


class _Stream:
    def __init__(self, owner: TokenPublisher, turn: TurnRecorded, reply_id: UUID) -> None:
        self._owner, self._turn, self._reply_id = owner, turn, reply_id
        self._pending: list[str] = []
        self._offset = 0
        self._closing = False
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._task = asyncio.create_task(self._pump(), name=f"tokens:{reply_id}")

    def write(self, text: str) -> None:
        if text:
            self._pending.append(text)
            self._wake.set()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._closed.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=self._owner.flush_timeout_s)
        except TimeoutError:
            log.warning("token_stream_abandoned", reply_id=str(self._reply_id))
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                text = "".join(self._pending)
                self._pending.clear()
                published = asyncio.get_running_loop().time()
                await self._publish(text)
                await self._gather(published + self._owner.piece_interval_s)
            if self._closing and not self._pending:
                return

    async def _gather(self, until: float) -> None:
        """Let the model's text accumulate until `until`, or until the stream closes."""
        left = until - asyncio.get_running_loop().time()
        if left > 0 and not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), left)

    async def _publish(self, text: str) -> None:
        turn = self._turn
        piece = ReplyTokensGenerated(tenant_id=turn.tenant_id, user_id=turn.user_id,
                                     conversation_id=turn.conversation_id, message_id=self._reply_id,
                                     in_reply_to=turn.message_id, offset=self._offset, text=text)
        self._offset += len(text)
        try:
            await self._owner.outlet.publish([piece])
        except Exception as exc:  # best effort: the reply itself is published by the subscriber
            log.warning("token_piece_not_published", reply_id=str(self._reply_id), error=type(exc).__name__)
