"""How many heaps the C allocator keeps in this process. glibc gives each thread that
allocates under contention an arena of its own, up to eight per core, and rarely returns an
arena's memory: every thread that once ran the embedder (the loop's default executor has
several, and a backfill runs two at once) keeps its own high-water mark of tensor buffers.
A 20 msg/s soak grew by steps of 30-190 MB as new threads joined; the same embedder calls
in isolation reached 705 MB with glibc's default and 442 MB with two arenas, then stayed
there. Two arenas keep both cores busy without a heap per thread."""

from __future__ import annotations

import ctypes
import ctypes.util

import structlog

log = structlog.get_logger("convmem.runtime")

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


def bound_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas (before the worker threads start, so that they share them). False
    where the C library is not glibc (musl has no arenas to cap)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    done = bool(mallopt(M_ARENA_MAX, arenas))
    if not done:
        log.warning("malloc_arenas_not_bounded", arenas=arenas)
    return done
