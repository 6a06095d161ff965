"""Soak: resident memory of `convmem run all` under a steady load for a long time.

The workers run as bench/pipeline.py runs them (this process, plus the companion process
that `run all` starts on two cores), a model answers after `--model-latency` seconds, and
bench/load.py offers `--rate` messages a second over `--conversations` conversations for
`--minutes`. Every `--every` seconds the resident memory (VmRSS) of both processes is
sampled, with the number of points in the vector index: the embedded index keeps every
turn's vector in memory, which is data, not a leak, so the growth is also given per
thousand points stored. After the load, `--cooldown` seconds more show what comes back.

Usage: python bench/soak.py [--minutes 30] [--rate 20] [--conversations 400]   (logs: 2>file)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.percentiles import pct
from bench.pipeline import Workers, drive, model_server, workers


def rss_mb(pid: int | str, field: str = "VmRSS") -> float:
    """Resident memory of a process in MB (0 when it is gone): all of it (VmRSS), or its
    anonymous part (RssAnon: heaps, arenas, what a leak grows) or its file-backed part
    (RssFile: mapped files such as the index's segments, which the kernel may drop)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


async def sample(w: Workers, every_s: float, into: list[tuple[float, float, float, int, float, float]]) -> None:
    """(seconds since start, main MB, companion MB, index points, main's anonymous and
    file-backed MB), every `every_s`."""
    started = time.monotonic()
    while True:
        points = await w.runtime.res.index.count()
        main = rss_mb("self")
        other = rss_mb(w.companion.pid) if w.companion is not None and w.companion.pid else 0.0
        anon, mapped = rss_mb("self", "RssAnon"), rss_mb("self", "RssFile")
        into.append((time.monotonic() - started, main, other, points, anon, mapped))
        print(f"  {into[-1][0] / 60:6.1f} min  main {main:7.1f} MB (anon {anon:7.1f}, file "
              f"{mapped:6.1f})  companion {other:7.1f} MB  index {points} points", flush=True)
        await asyncio.sleep(every_s)


async def traced(after_s: float) -> tracemalloc.Snapshot:
    await asyncio.sleep(after_s)
    return tracemalloc.take_snapshot()


def growth(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot, top: int = 12) -> list[str]:
    """Where the main process's Python allocations grew between two snapshots."""
    stats = last.compare_to(first, "lineno")
    return [f"  {s.size_diff / 1e6:+8.2f} MB {s.count_diff:+8d} blocks  {s.traceback[0]}" for s in stats[:top]]


async def run(a: argparse.Namespace) -> None:
    print(f"soak: {a.rate} msg/s over {a.conversations} conversations for {a.minutes} min, model {a.model_latency} s")
    samples: list[tuple[float, float, float, int, float, float]] = []
    if a.trace:
        tracemalloc.start(1)
    async with model_server(a.model_latency) as llm, workers(llm, True, a.processes) as w:
        sampler = asyncio.create_task(sample(w, a.every, samples))
        # Python's own allocations at a third of the load and at its end (--trace).
        early = asyncio.create_task(traced(a.minutes * 20)) if a.trace else None
        try:
            out = await drive(w, a.conversations, ["--rate", str(a.rate), "--seconds", str(a.minutes * 60)],
                              f"{a.rate} msg/s for {a.minutes} min")
            loaded = len(samples)
            if early is not None and early.done():
                print("Python allocations that grew from a third of the load to its end (tracemalloc):")
                print("\n".join(growth(early.result(), tracemalloc.take_snapshot())))
            await asyncio.sleep(a.cooldown)
        finally:
            sampler.cancel()
            if early is not None:
                early.cancel()
    print("\n".join(out.report()))
    if len(samples) < 4:
        return
    during = samples[:loaded]
    half = during[len(during) // 2:]  # after warm-up: caches filled, pools grown
    for name, col in (("main", 1), ("main anon", 4), ("main file", 5), ("companion", 2)):
        series = [(x[0] / 60, float(x[col])) for x in half]
        print(f"  {name:<9} RSS: start {during[0][col]:.1f} MB, peak {max(s[col] for s in samples):.1f} MB, end of load "
              f"{during[-1][col]:.1f} MB, after cool-down {samples[-1][col]:.1f} MB; second half slope "
              f"{slope(series):+.2f} MB/min")
    grown = half[-1][3] - half[0][3]
    per_k = (half[-1][1] - half[0][1]) / grown * 1000 if grown else float("nan")
    print(f"  index: {during[0][3]} -> {during[-1][3]} points; main process growth in the second half "
          f"{per_k:.2f} MB per 1,000 points stored (one point: a 384-d vector and its payload)")
    print(f"  reply p99 over the whole soak {pct(out.stages['replied'], 99):.0f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--conversations", type=int, default=400)
    p.add_argument("--model-latency", type=float, default=1.0)
    p.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    p.add_argument("--cooldown", type=float, default=60.0, help="seconds sampled after the load")
    p.add_argument("--processes", type=int, choices=(1, 2), default=1)
    p.add_argument("--trace", action="store_true", help="also trace Python allocations (slower)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
