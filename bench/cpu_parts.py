"""Where a running convmem process spends its CPU, by part of the message's path.

Samples the process with py-spy (a sampling profiler outside the process: nothing to install
in it) for `--seconds`, or reads a py-spy raw file written earlier (`--raw`), and sorts every
sample into the part of the path it belongs to, by the frames on its stack (the first rule
that matches wins; rules go from the innermost concern to the outermost). With
`--messages-per-second`, the share of each part becomes milliseconds of CPU per message.

Usage: python bench/cpu_parts.py --pid PID [--seconds 60] [--rate 50] [--messages-per-second 20]
       python bench/cpu_parts.py --raw profile.txt [--rate 50] [--messages-per-second 20]
(py-spy: `pip install py-spy`; it needs ptrace rights over the process.)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

# (part, substrings of a frame's file): the first part any frame of a stack matches.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("embedding (model, tokenizer)", ("adapters/embedder.py", "onnxruntime")),
    ("context block and its tokens", ("memory/context.py", "adapters/tokenizer.py", "tokenizers")),
    ("recall (retrievers, stages)", ("convmem/memory/", "adapters/vectors.py", "edge_generations.py",
                                     "qdrant_edge")),
    ("sealing and opening", ("privacy/sealing.py", "cryptography")),
    ("model client", ("adapters/chat_model.py", "openai/", "httpx/", "httpcore/", "h11/")),
    ("responder (other)", ("services/responder/",)),
    ("recording", ("services/indexer/recording.py", "postgres/recording.py", "postgres/batching.py")),
    ("indexer (other)", ("services/indexer/",)),
    ("HTTP edge", ("services/ingest/", "uvicorn/", "starlette/", "fastapi/")),
    ("Postgres client (other)", ("asyncpg/", "adapters/postgres/")),
    ("token frames and stream tail", ("delivery/feed.py", "delivery/tail.py")),
    ("delivery (decode, retry, publish)", ("convmem/delivery/",)),
    ("Kafka client", ("aiokafka/", "kafka/")),
    ("FastStream dispatch", ("faststream/", "fast_depends/")),
    ("pydantic (events)", ("pydantic/", "contracts/")),
    ("metrics and logs", ("prometheus_client/", "convmem/telemetry/", "structlog/", "logging/")),
    ("event loop", ("asyncio/",)),
]
OTHER = "other"
# A stack whose innermost frame is one of these waits (epoll, a lock, a queue): py-spy's
# non-blocking mode cannot always tell an idle thread, so such samples are not CPU.
WAITING = ("EpollSelector.select", "Condition.wait", "Queue.get", "_wait (", "lock.acquire", "Event.wait")


def part_of(stack: str) -> str:
    for part, needles in PARTS:
        if any(n in stack for n in needles):
            return part
    return OTHER


def tally(raw: str) -> tuple[Counter[str], Counter[str]]:
    """Samples per part on the event loop's thread and on every other thread."""
    loop: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        thread, _, frames = stack.partition(";")
        if frames.rsplit(";", 1)[-1].startswith(WAITING) or not frames:
            continue
        (loop if "MainThread" in thread else threads)[part_of(stack)] += int(count)
    return loop, threads


def report(loop: Counter[str], threads: Counter[str], rate_hz: float, seconds: float,
           per_second: float | None) -> list[str]:
    ms_per_sample = 1000 / rate_hz
    lines = [f"{'part':<36} {'loop ms/s':>10} {'threads ms/s':>13}" + ("  ms CPU/message" if per_second else "")]
    for part in [p for p, _ in PARTS] + [OTHER]:
        on_loop, off_loop = loop[part] * ms_per_sample / seconds, threads[part] * ms_per_sample / seconds
        if not on_loop and not off_loop:
            continue
        line = f"{part:<36} {on_loop:10.1f} {off_loop:13.1f}"
        if per_second:
            line += f"  {(on_loop + off_loop) / per_second:15.2f}"
        lines.append(line)
    total_loop = sum(loop.values()) * ms_per_sample / seconds
    total_threads = sum(threads.values()) * ms_per_sample / seconds
    line = f"{'all':<36} {total_loop:10.1f} {total_threads:13.1f}"
    if per_second:
        line += f"  {(total_loop + total_threads) / per_second:15.2f}"
    return [*lines, line]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int)
    p.add_argument("--raw", type=Path, help="a py-spy raw (collapsed stacks) file instead of sampling")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--rate", type=int, default=50, help="samples per second per thread")
    p.add_argument("--messages-per-second", type=float, help="the offered load, for ms of CPU per message")
    a = p.parse_args()
    if a.raw is None:
        if a.pid is None:
            p.error("--pid or --raw")
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        a.raw = Path(tempfile.mkstemp(suffix=".txt")[1])
        subprocess.run([  # noqa: S603 - py-spy with our own arguments
            spy, "record", "--pid", str(a.pid), "--rate", str(a.rate), "--duration",
                        str(int(a.seconds)), "--format", "raw", "--nonblocking", "--threads",
                        "--output", str(a.raw)], check=True, stdout=sys.stderr)
    loop, threads = tally(a.raw.read_text())
    print("\n".join(report(loop, threads, a.rate, a.seconds, a.messages_per_second)))


if __name__ == "__main__":
    main()
