"""How this process's C heap gives memory back. glibc keeps what Python, onnxruntime and
the embedded index free, for reuse, and hands it back to the kernel only from the top of
a heap, so a burst of short-lived buffers (long prompts tokenized, long answers streamed,
batches embedded) leaves the resident size at its high-water mark. Under a steady 20 msg/s
that showed as steps of 90-280 MB that never came back; `malloc_trim(0)` returned them
(anonymous memory 436 -> 347, 481 -> 364, 640 -> 360 MB in one soak). So the process
trims every TRIM_EVERY_S, off its event loop, and runs with two arenas instead of eight per
core, so that threads share heaps rather than each keeping its own high-water mark."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import time

import structlog

log = structlog.get_logger("convmem.runtime")

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2
TRIM_EVERY_S = 30.0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl has neither arenas to cap nor malloc_trim)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - present only in glibc
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def bound_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas (before the worker threads start, so that they share them)."""
    libc = _glibc()
    done = libc is not None and bool(libc.mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.warning("malloc_arenas_not_bounded", arenas=arenas)
    return done


def trim() -> bool:
    """Give the free pages of every arena back to the kernel now; True when some were."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


async def trim_periodically(every_s: float = TRIM_EVERY_S) -> None:
    """Trim in a worker thread every `every_s`: it walks the heaps (milliseconds) and must
    not hold the loop while it does."""
    if _glibc() is None:
        return
    while True:
        await asyncio.sleep(every_s)
        started = time.perf_counter()
        released = await asyncio.to_thread(trim)
        log.debug("heap_trimmed", released=released, ms=round(1000 * (time.perf_counter() - started), 1))
