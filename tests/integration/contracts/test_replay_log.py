"""ReplayLog: each dead-letter position is replayed at most once; a failed send is not
recorded, so it can be tried again."""

from __future__ import annotations

import asyncio
import random

import pytest

from convmem.ports import Position, Storage


def somewhere() -> Position:
    # The database outlives test runs: a position no earlier run used.
    return Position("conv.inbound.v1.dlq", random.randrange(1_000, 1_000_000), random.randrange(1 << 40))


async def test_a_position_is_replayed_once(storage: Storage) -> None:
    here, there = somewhere(), somewhere()
    sent: list[Position] = []

    async def send() -> None:
        sent.append(here)

    assert await storage.replays.replayed([here, there]) == set()
    assert await storage.replays.replay_once(here, "convmem.indexer.record-inbound", send) is True
    assert await storage.replays.replay_once(here, "convmem.indexer.record-inbound", send) is False
    assert sent == [here]
    assert await storage.replays.replayed([here, there]) == {here}
    assert await storage.replays.replayed([]) == set()


async def test_a_failed_send_is_not_recorded(storage: Storage) -> None:
    here = somewhere()

    async def broker_away() -> None:
        raise ConnectionError("kafka is away")

    with pytest.raises(ConnectionError):
        await storage.replays.replay_once(here, "g", broker_away)
    assert await storage.replays.replayed([here]) == set()

    async def fine() -> None:
        return None

    assert await storage.replays.replay_once(here, "g", fine) is True


async def test_two_replays_of_one_position_at_once_send_it_once(storage: Storage) -> None:
    here = somewhere()
    sent: list[int] = []

    async def slow_send() -> None:
        await asyncio.sleep(0.2)
        sent.append(1)

    results = await asyncio.gather(storage.replays.replay_once(here, "g", slow_send),
                                   storage.replays.replay_once(here, "g", slow_send))
    assert sorted(results) == [False, True] and sent == [1]
