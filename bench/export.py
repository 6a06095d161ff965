"""Export benchmark: one user with N stored turns (bulk-loaded with COPY), exported as JSON
and as CSV through the same streaming code the API and `convmem export` use. Prints time,
throughput and the process's peak memory growth, next to a baseline that fetches the same
rows into memory at once.

Usage: python bench/export.py [--turns 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convmem.adapters.postgres import PostgresStorage
from convmem.migrations import migrate
from convmem.settings import CommonSettings, load
from services.ingest.export import export_stream


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(turns: int) -> None:
    url = load(CommonSettings).database_url.get_secret_value()
    await migrate(url)
    tenant, user = f"export-{uuid.uuid4().hex[:8]}", "heavy-user"
    conn = await asyncpg.connect(url)
    storage = await PostgresStorage.connect(url, max_size=2)
    try:
        convs = [uuid.uuid4() for _ in range(max(1, turns // 200))]
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        await conn.copy_records_to_table("conversations", columns=["id", "tenant_id", "user_id", "channel"],
                                         records=[(c, tenant, user, "import") for c in convs])
        await conn.copy_records_to_table(
            "messages", columns=["id", "tenant_id", "user_id", "conversation_id", "seq", "role", "channel", "content",
                                 "occurred_at"],
            records=[(uuid.uuid4(), tenant, user, convs[i % len(convs)], i // len(convs) + 1,
                      "user" if i % 2 else "assistant", "import",
                      f"message {i}: a typical chat turn of some sixty or seventy characters, give or take",
                      t0 + timedelta(seconds=i)) for i in range(turns)])
        print(f"convmem export benchmark: one user, {turns} turns in {len(convs)} conversations")
        # Streamed exports first: ru_maxrss is a peak, so the all-at-once baseline must come last.
        for fmt in ("json", "csv"):
            before = peak_mb()
            t = time.perf_counter()
            size = 0
            async for chunk in export_stream(storage.privacy, tenant, user, fmt):
                size += len(chunk)
            s = time.perf_counter() - t
            print(f"  streamed {fmt:<4} export                {s:6.2f} s  {turns / s:9,.0f} rows/s  "
                  f"{size / s / 1e6:6.1f} MB/s  {size / 1e6:6.1f} MB out  peak RSS +{peak_mb() - before:6.1f} MB")
        start_mb = peak_mb()
        t = time.perf_counter()
        rows = await conn.fetch("SELECT * FROM messages WHERE tenant_id = $1 AND user_id = $2", tenant, user)
        base_s = time.perf_counter() - t
        print(f"  baseline: fetch all rows at once      {base_s:6.2f} s  {len(rows) / base_s:9,.0f} rows/s  "
              f"peak RSS +{peak_mb() - start_mb:6.1f} MB")
    finally:
        await conn.execute("DELETE FROM conversations WHERE tenant_id = $1", tenant)
        await conn.close()
        await storage.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", type=int, default=100_000)
    asyncio.run(run(p.parse_args().turns))


if __name__ == "__main__":
    main()
