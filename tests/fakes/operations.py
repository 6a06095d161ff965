"""Fakes of the operating ports: the backlog read from the fake database's turns, and the
replay log kept beside them."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from contracts import TurnRecorded
from convmem.ports import Backlog, Pending, Position, ReplayLog, StreamTickets, TicketGrant
from tests.fakes.db import FakeDb


def _pending(turns: Iterable[TurnRecorded]) -> Pending:
    times = [t.recorded_at for t in turns]
    return Pending(len(times), min(times, default=None))


class FakeBacklog(Backlog):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    def _live(self, tenant_id: str | None) -> list[TurnRecorded]:
        hidden = self.db.deleted
        return [t for t in self.db.turns.values()
                if t.message_id not in hidden and (tenant_id is None or t.tenant_id == tenant_id)]

    async def unembedded(self, tenant_id: str | None = None) -> Pending:
        return _pending(t for t in self._live(tenant_id) if t.message_id not in self.db.embedded and t.text.strip())

    async def unreplied(self, tenant_id: str | None = None) -> Pending:
        def replied(turn: TurnRecorded) -> bool:
            stored = self.db.replies.get(turn.message_id)
            return stored is not None and stored.published

        return _pending(t for t in self._live(tenant_id)
                        if t.role == "user" and t.reply_expected and not replied(t))


class FakeReplayLog(ReplayLog):
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def replayed(self, positions: Sequence[Position]) -> set[Position]:
        return {p for p in positions if p in self.db.replays}

    async def replay_once(self, position: Position, group: str, send: Callable[[], Awaitable[None]]) -> bool:
        if position in self.db.replays:
            return False
        self.db.replays[position] = group  # claimed first, as the row lock does: a second call skips
        try:
            await send()
        except BaseException:
            del self.db.replays[position]
            raise
        return True


class FakeStreamTickets(StreamTickets):
    """Tickets by digest with their expiry on the monotonic clock; redeeming removes them."""

    def __init__(self, db: FakeDb) -> None:
        self.db = db

    async def issue_ticket(self, digest: bytes, grant: TicketGrant, ttl_s: float) -> None:
        now = time.monotonic()
        for old in [d for d, (_, until) in self.db.tickets.items() if until < now]:
            del self.db.tickets[old]
        self.db.tickets[digest] = (grant, now + ttl_s)

    async def redeem_ticket(self, digest: bytes, stream: str) -> TicketGrant | None:
        found = self.db.tickets.get(digest)
        if found is None or found[0].stream != stream or found[1] <= time.monotonic():
            return None
        del self.db.tickets[digest]
        return found[0]
