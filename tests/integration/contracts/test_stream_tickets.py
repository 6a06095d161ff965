"""StreamTickets: a ticket opens its own stream once, within its life, and only by digest."""

from __future__ import annotations

import asyncio
import os

from convmem.ports import Storage, TicketGrant


def grant(stream: str = "conversation:c1") -> TicketGrant:
    return TicketGrant("ana", "default", ("user",), stream)


async def test_a_ticket_opens_its_stream_once(storage: Storage) -> None:
    digest = os.urandom(32)
    await storage.tickets.issue_ticket(digest, grant(), ttl_s=30)
    assert await storage.tickets.redeem_ticket(os.urandom(32), "conversation:c1") is None  # unknown
    assert await storage.tickets.redeem_ticket(digest, "user:ana") is None  # another stream
    assert await storage.tickets.redeem_ticket(digest, "conversation:c1") == grant()
    assert await storage.tickets.redeem_ticket(digest, "conversation:c1") is None  # used


async def test_an_expired_ticket_opens_nothing(storage: Storage) -> None:
    digest = os.urandom(32)
    await storage.tickets.issue_ticket(digest, grant(), ttl_s=0.2)
    await asyncio.sleep(0.4)
    assert await storage.tickets.redeem_ticket(digest, "conversation:c1") is None


async def test_two_redemptions_at_once_get_it_once(storage: Storage) -> None:
    digest = os.urandom(32)
    await storage.tickets.issue_ticket(digest, grant("user:ana"), ttl_s=30)
    got = await asyncio.gather(*(storage.tickets.redeem_ticket(digest, "user:ana") for _ in range(8)))
    assert [g for g in got if g is not None] == [grant("user:ana")]
