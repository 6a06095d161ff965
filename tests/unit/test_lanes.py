"""Key-ordered concurrency without Kafka: order per key, concurrency across keys, the bound,
the commit watermark, and what revocation leaves committed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from convmem.delivery.lanes import Lanes, PartitionOffsets


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None


def recs(keys: str, partition: int = 0, start: int = 0) -> list[Rec]:
    return [Rec("t", partition, start + i, k.encode()) for i, k in enumerate(keys)]


def test_the_watermark_is_the_lowest_unfinished_offset() -> None:
    o = PartitionOffsets()
    assert o.watermark() is None
    for offset in (10, 11, 12, 13):
        o.admit(offset)
    assert o.watermark() == 10
    o.finish(11)
    o.finish(12)
    assert o.watermark() == 10  # 11 and 12 are done, but 10 is not: nothing past it
    o.finish(10)
    assert o.watermark() == 13
    o.finish(13)
    assert o.watermark() == 14  # all done: the next offset to read


async def test_same_key_runs_in_order_and_other_keys_run_alongside() -> None:
    started: list[tuple[bytes | None, int]] = []
    running = 0
    peak = 0

    async def handle(r: Rec) -> None:
        nonlocal running, peak
        started.append((r.key, r.offset))
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01 if r.key == b"a" else 0.002)
        running -= 1

    lanes: Lanes[Rec] = Lanes(handle, max_in_flight=16)
    for r in recs("aabcabca"):
        lanes.admit(r)
    await lanes.settle(None, deadline_s=5)
    assert [o for k, o in started if k == b"a"] == [0, 1, 4, 7]  # a's records, strictly in order
    assert [o for k, o in started if k == b"b"] == [2, 5]
    assert peak == 3  # one record per key at a time, three keys at once
    assert lanes.watermarks() == {("t", 0): 8} and lanes.in_flight == 0


async def test_admission_is_bounded() -> None:
    gate = asyncio.Event()

    async def handle(r: Rec) -> None:
        await gate.wait()

    lanes: Lanes[Rec] = Lanes(handle, max_in_flight=3)
    for r in recs("abc"):
        lanes.admit(r)
    assert lanes.free == 0
    with pytest.raises(RuntimeError):
        lanes.admit(Rec("t", 0, 3, b"d"))
    gate.set()
    await lanes.wait_for_room(1.0)
    assert lanes.free > 0
    await lanes.settle(None, deadline_s=5)


async def test_a_slow_record_holds_the_watermark_and_revocation_commits_nothing_past_it() -> None:
    release = asyncio.Event()

    async def handle(r: Rec) -> None:
        if r.offset == 1:
            await release.wait()  # a slow model call

    lanes: Lanes[Rec] = Lanes(handle, max_in_flight=10)
    for r in [*recs("abcd", partition=0), *recs("ef", partition=1, start=100)]:
        lanes.admit(r)
    await asyncio.sleep(0.05)
    assert lanes.watermarks() == {("t", 0): 1, ("t", 1): 102}
    await lanes.settle([("t", 0)], deadline_s=0.1)  # revoked: offset 1 never finished
    assert lanes.watermarks([("t", 0)]) == {("t", 0): 1}  # so a new owner starts there again
    assert lanes.in_flight == 0
    lanes.forget([("t", 0)])
    assert lanes.watermarks() == {("t", 1): 102}


async def test_a_record_the_policy_could_not_settle_is_retried_in_place() -> None:
    attempts: list[int] = []
    after: list[int] = []

    async def handle(r: Rec) -> None:
        if r.offset == 0:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("dead-letter topic unreachable")
        else:
            after.append(r.offset)

    lanes: Lanes[Rec] = Lanes(handle, max_in_flight=4, retry_after_s=0.01)
    for r in recs("aa"):
        lanes.admit(r)
    await lanes.settle(None, deadline_s=5)
    assert len(attempts) == 3 and after == [1]  # the key waited for its first record
    assert lanes.watermarks() == {("t", 0): 2}
