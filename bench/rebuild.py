"""Rebuild speed next to the raw embedding rate, in the same run: N turns from the evaluation
set's generator (a repeated text numbered, so that every turn is distinct) are loaded (COPY) into a database of the bench's own on the stack's cluster,
their texts are embedded in the rebuild's batches with nothing else around (the raw rate),
then `convmem index rebuild`'s code rebuilds an embedded index from that database into a
temporary folder (read, embed, upsert, record progress, remove stale points, optimize, catch
up, switch).

Usage: python bench/rebuild.py [--turns 10000] [--batch 512]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evalset import generate
from convmem.adapters.edge_generations import EdgeGenerations
from convmem.adapters.embedder import OnnxEmbedder
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.rebuild import PgIndexBuilds, PgTurnSource
from convmem.migrations import migrate
from convmem.settings import CommonSettings, load
from services.indexer.rebuilding import Rebuild


async def load_turns(url: str, size: int) -> None:
    data = generate(seed=11, users=max(1, size // 288), sessions=16, turns_per_session=18)
    conversations, messages = [], []
    seen: dict[str, int] = {}

    def distinct(text: str) -> str:
        # The generator repeats its small talk; people rarely send the same text twice, and
        # a batch embeds a repeated text once, which would flatter both rates.
        seen[text] = seen.get(text, 0) + 1
        return text if seen[text] == 1 else f"{text} ({seen[text]})"

    for u in data.users:
        for turns in u.sessions:
            conv = uuid.uuid4()
            conversations.append((conv, "bench", u.user, "import", datetime.fromisoformat(turns[0].occurred_at)))
            for seq, t in enumerate(turns, 1):
                messages.append((uuid.uuid4(), "bench", u.user, conv, seq, t.role, "import", distinct(t.text),
                                 datetime.fromisoformat(t.occurred_at), False))
    messages = messages[:size]
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table("conversations", records=conversations,
                                         columns=["id", "tenant_id", "user_id", "channel", "created_at"])
        await conn.copy_records_to_table("messages", records=messages, columns=[
            "id", "tenant_id", "user_id", "conversation_id", "seq", "role", "channel", "content", "occurred_at",
            "reply_expected"])
        await conn.execute("ANALYZE messages")
    finally:
        await conn.close()


async def raw_rate(url: str, embedder: OnnxEmbedder, batch: int) -> tuple[int, int, float]:
    """The same texts, in the same batches and order as the rebuild reads them, through the
    same embedder call: nothing but the model."""
    conn = await asyncpg.connect(url)
    try:
        texts = [r["content"] for r in await conn.fetch(
            "SELECT content FROM messages WHERE deleted_at IS NULL AND btrim(content) <> '' ORDER BY id")]
    finally:
        await conn.close()
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        await embedder.embed(texts[i:i + batch])
    return len(texts), len(set(texts)), time.perf_counter() - started


async def run(size: int, batch: int) -> None:
    base = load(CommonSettings).database_url.get_secret_value()
    name = f"convmem_bench_rebuild_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    try:
        await migrate(url)
        await load_turns(url, size)
        embedder = OnnxEmbedder(threads=os.cpu_count() or 2, remember=0)  # as `convmem index rebuild` builds it
        await embedder.embed(["warm up"])
        # The raw rate before and after the rebuild: on a shared machine the two bracket it.
        n, distinct, before = await raw_rate(url, embedder, batch)
        # A batch embeds each distinct text once: how often texts repeat sets both rates.
        print(f"convmem rebuild benchmark: {n} turns ({distinct} distinct texts), batches of {batch}, "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print(f"  raw embedding, before (ONNX MiniLM int8, length-bucketed) {n / before:8.1f} turns/s  ({before:.1f} s)")
        storage = await PostgresStorage.connect(url, max_size=4)
        with tempfile.TemporaryDirectory(prefix="convmem-rebuild-") as folder:
            rebuild = Rebuild(PgTurnSource(storage.pool), PgIndexBuilds(storage.pool, url),
                              EdgeGenerations(Path(folder) / "vectors"), embedder, batch=batch)
            report = await rebuild.run()
        await storage.close()
        rate = report.embedded / report.seconds
        print(f"  index rebuild (read, embed, upsert, optimize, switch)      {rate:8.1f} turns/s  "
              f"({report.seconds:.1f} s, of which optimize {report.optimize_seconds:.1f} s; "
              f"{report.embedded} embedded, {report.caught_up} caught up)")
        _, _, after = await raw_rate(url, embedder, batch)
        print(f"  raw embedding, after                                      {n / after:8.1f} turns/s  ({after:.1f} s)")
        print(f"  rebuild / raw (mean of before and after): {rate / (2 * n / (before + after)):.2f}; "
              f"load average now {os.getloadavg()[0]:.1f}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=512)
    a = p.parse_args()
    asyncio.run(run(a.turns, a.batch))


if __name__ == "__main__":
    main()
