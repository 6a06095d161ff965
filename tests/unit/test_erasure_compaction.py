"""Erased rows leave the data files soon after the erasure, never on its path: the compaction
runs in the background, one at a time, once more for erasures that came during a run."""

from __future__ import annotations

import asyncio

from services.retention.erasure import Compaction


async def test_erasures_during_a_run_get_one_more_run_and_none_waits_for_it() -> None:
    runs: list[int] = []
    gate = asyncio.Event()

    async def compact() -> None:
        runs.append(len(runs))
        await gate.wait()

    compaction = Compaction(compact)
    compaction.request()  # returns at once: the erasure that asked does not wait
    await asyncio.sleep(0)
    assert runs == [0]
    for _ in range(5):
        compaction.request()  # five erasures commit while the first run works
    gate.set()
    await compaction.idle()
    assert runs == [0, 1]  # one more run covers all five
    compaction.request()
    await compaction.idle()
    assert runs == [0, 1, 2]


async def test_a_failed_run_is_logged_and_the_next_erasure_asks_again() -> None:
    calls = 0

    async def compact() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("postgres restarting")

    compaction = Compaction(compact)
    compaction.request()
    await compaction.idle()
    compaction.request()
    await compaction.idle()
    assert calls == 2


async def test_closing_ends_a_run_in_progress() -> None:
    started = asyncio.Event()

    async def compact() -> None:
        started.set()
        await asyncio.Event().wait()  # a vacuum of a very large table

    compaction = Compaction(compact)
    compaction.request()
    await started.wait()
    await asyncio.wait_for(compaction.close(), 1)
