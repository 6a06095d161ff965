"""Bulk history: how fast an import becomes searchable (recorded in Postgres and embedded in
the vector index), next to the raw embedding rate of the same texts measured in the same run.

The history is bench/evalset.py's generator (two-party chat over months: about 600 turns per
user, 27 sessions each), written as JSON Lines and loaded with `convmem import` as a user
would, while the indexer runs in this process on fresh consumer groups (no backlog). That
generator repeats its phrasings (about 350 distinct texts in 6,000 turns), and the embedder
computes a text it saw recently once, so by default every turn is made distinct: a repeated
text is joined with other sentences of both generators (bench/dialogues.py's too), as a
person who writes two or three at once would, until it is new. `--repeats` keeps them.

Usage: python bench/import_drain.py [--users 11] [--sessions 27] [--turns 22] [--repeats]   (logs: 2>file)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import embedding_rates
from bench.dialogues import generate_dialogues
from bench.evalset import generate
from composition.roles import consumer_groups
from composition.runtime import Runtime
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import CommonSettings, IndexerSettings, load


def history(tenant: str, users: int, sessions: int, turns: int, distinct: bool = True) -> list[dict[str, str]]:
    data = generate(seed=11, users=users, sessions=sessions, turns_per_session=turns)
    lines = [{"tenant": tenant, "user": u.user, "conversation": f"{u.user}-s{s:02d}", "role": t.role,
              "text": t.text, "external_id": t.external_id, "timestamp": t.occurred_at}
             for u in data.users for s, session in enumerate(u.sessions) for t in session]
    if distinct:
        pool = sorted({line["text"] for line in lines} | {t.text for u in generate_dialogues(seed=11).users
                                                         for session in u.sessions for t in session})
        rng = random.Random(11)
        seen: set[str] = set()
        for line in lines:
            text = line["text"]
            while text in seen:
                text = f"{text} {rng.choice(pool)}"
            seen.add(text)
            line["text"] = text
    return lines


async def progress(url: str, tenant: str) -> tuple[int, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("""SELECT count(*) AS recorded, count(embedded_at) AS embedded
                                     FROM messages WHERE tenant_id = $1""", tenant)
        assert row is not None
        return int(row["recorded"]), int(row["embedded"])
    finally:
        await conn.close()


async def run(a: argparse.Namespace) -> None:
    common = load(CommonSettings)
    url = common.database_url.get_secret_value()
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    lines = history(tenant, a.users, a.sessions, a.turns, distinct=not a.repeats)
    texts = [line["text"] for line in lines]
    print(f"import drain: {len(lines)} turns ({len(set(texts))} distinct texts: the embedder computes a text "
          f"it saw recently once), {a.users} users, {a.users * a.sessions} conversations")
    sample = texts[: min(len(texts), 1536)]
    rates = await asyncio.to_thread(embedding_rates, sample)
    print(f"  raw embedding of the same texts (n={len(sample)}): one at a time {rates['single']:.1f}/s, "
          f"batches of 64 {rates['batched']:.1f}/s, batches sorted by length {rates['batched_sorted']:.1f}/s; "
          f"convmem's embedder {rates['convmem']:.1f}/s")

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    indexer = load(IndexerSettings, group_prefix=prefix, log_level="WARNING", ops_port=0)  # beside other processes
    await start_groups_at_end(common.kafka_bootstrap, consumer_groups(("indexer",), prefix))
    runtime = Runtime(("indexer",), indexer=indexer)
    await runtime.start()
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write("\n".join(json.dumps(line) for line in lines) + "\n")
        started = time.time()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "composition.cli", "import", f.name, "--keep-expired",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        imported = time.time() - started
        recorded_at = None
        while True:
            recorded, embedded = await progress(url, tenant)
            if recorded_at is None and recorded >= len(lines):
                recorded_at = time.time() - started
            if embedded >= len(lines) or time.time() - started > a.timeout:
                break
            await asyncio.sleep(0.5)
        searchable = time.time() - started
    finally:
        await runtime.stop()
        await asyncio.to_thread(Path(f.name).unlink, missing_ok=True)
    print(f"  convmem import: {out.decode().strip().splitlines()[-1] if out else '?'} ({imported:.1f} s)")
    print(f"  recorded: {len(lines) / (recorded_at or searchable):.1f} turns/s ({recorded_at or float('nan'):.1f} s)")
    rate = embedded / searchable
    print(f"  searchable (recorded and embedded): {embedded}/{len(lines)} in {searchable:.1f} s = {rate:.1f} turns/s")
    print(f"  ratio to raw batched embedding: {rate / rates['batched']:.2f} (arrival order), "
          f"{rate / rates['batched_sorted']:.2f} (sorted by length)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=11)
    p.add_argument("--sessions", type=int, default=27)
    p.add_argument("--turns", type=int, default=22)
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--repeats", action="store_true", help="keep the generator's repeated texts")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
