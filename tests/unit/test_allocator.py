"""The process's C heap: arenas capped and free pages given back (glibc, as on this Linux)."""

from __future__ import annotations

import asyncio
import contextlib

from composition import allocator


def anonymous_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))


def test_freed_buffers_leave_the_resident_set_when_trimmed() -> None:
    assert allocator.bound_malloc_arenas()
    # Many mid-sized blocks (below the mmap threshold: they come from the heap), the last
    # one kept so the heap's top stays in use and only a trim can return the pages below it.
    blocks = [bytearray(64 * 1024) for _ in range(1600)]
    keep = blocks[-1]
    before = anonymous_kb()
    del blocks
    allocator.trim()
    after = anonymous_kb()
    assert before - after > 50_000, (before, after)  # most of the 100 MB came back
    assert keep


async def test_the_periodic_trim_runs_off_the_loop_until_cancelled() -> None:
    task = asyncio.create_task(allocator.trim_periodically(0.01))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
