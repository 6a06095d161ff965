"""Calls that wait at the same moment share one statement (convmem.adapters.postgres.batching)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from convmem.adapters.postgres.batching import Batched


async def test_callers_of_the_same_moment_share_one_statement_and_get_their_own_result() -> None:
    statements: list[list[int]] = []

    async def run(items: Sequence[int]) -> dict[int, str]:
        statements.append(list(items))
        await asyncio.sleep(0.01)
        return {i: f"row {i}" for i in items if i % 2 == 0}

    lookup: Batched[int, str] = Batched(run)
    first = await asyncio.gather(*(lookup(i) for i in range(10)))
    assert first == [f"row {i}" if i % 2 == 0 else None for i in range(10)]
    assert statements == [list(range(10))]
    # Callers that come while a statement runs form the next one.
    early = asyncio.ensure_future(lookup(100))
    await asyncio.sleep(0.001)
    late = await asyncio.gather(*(lookup(i) for i in (102, 102, 103)))
    assert await early == "row 100" and late == ["row 102", "row 102", None]
    assert statements[1:] == [[100], [102, 103]]


async def test_a_failed_statement_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(items: Sequence[int]) -> dict[int, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return {i: i for i in items}

    lookup: Batched[int, int] = Batched(run, max_items=2)
    results = await asyncio.gather(*(lookup(i) for i in range(4)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [ConnectionError, ConnectionError]
    assert results[2:] == [2, 3]  # a second statement, after the first failed
    with pytest.raises(ConnectionError):
        calls = 0
        await lookup(7)
