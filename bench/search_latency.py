"""Search latency at scale: 10k and 100k stored turns (turns from the evaluation set's
generator, 300 per user), searched through the same Retriever the API uses, on the real
Postgres and an embedded Qdrant Edge shard. Baselines in the same run: one query embedding,
one raw vector query, one raw full-text query.

Turns are bulk-loaded with COPY and their vectors upserted directly (the pipeline's own
throughput is bench/pipeline.py's subject); each distinct text is embedded once.

Usage: python bench/search_latency.py [--sizes 10000,100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evalset import generate
from bench.percentiles import pct
from convmem.adapters.embedder import OnnxEmbedder
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.vectors import EdgeVectorIndex
from convmem.memory.retrieval import Retriever, Stages
from convmem.memory.units import refresh_units
from convmem.migrations import migrate
from convmem.ports import MemoryScope, VectorPoint
from convmem.settings import CommonSettings, load

CONFIGS = [("full-text only", Stages.parse("fts", "none")),
           ("vector only", Stages.parse("vector", "none")),
           ("hybrid, no stages (RRF)", Stages.parse("hybrid", "none")),
           ("default stages", Stages()),
           ("default + units", Stages(units=True)),
           ("default + expand", Stages(expand=True)),
           ("all stages", Stages(sessions=True, rerank=True))]


def line(name: str, ms: list[float]) -> str:
    return f"  {name:<44} p50 {pct(ms, 50):7.1f} ms  p95 {pct(ms, 95):7.1f} ms  p99 {pct(ms, 99):7.1f} ms  (n={len(ms)})"


async def load_turns(conn: asyncpg.Connection, storage: PostgresStorage, index: EdgeVectorIndex,
                     embedder: OnnxEmbedder, tenant: str, size: int, cache: dict[str, list[float]]
                     ) -> tuple[list[str], list[str], float]:
    users = max(1, size // 300)
    data = generate(seed=11, users=users, sessions=16, turns_per_session=18)
    conv_rows, msg_rows, points = [], [], []
    texts: list[str] = []
    for u in data.users:
        for turns in u.sessions:
            conv = uuid.uuid4()
            first = datetime.fromisoformat(turns[0].occurred_at)
            conv_rows.append((conv, tenant, u.user, "import", turns[0].text[:80], first, len(turns)))
            for seq, t in enumerate(turns, 1):
                mid = uuid.uuid4()
                when = datetime.fromisoformat(t.occurred_at)
                msg_rows.append((mid, tenant, u.user, conv, seq, t.role, "import", t.text, when, False))
                points.append((mid, t.text, {"tenant_id": tenant, "user_id": u.user, "conversation_id": str(conv),
                                             "message_id": str(mid), "role": t.role, "seq": seq,
                                             "occurred_at": when.timestamp()}))
                texts.append(t.text)
                if len(msg_rows) >= size:
                    break
            if len(msg_rows) >= size:
                break
        if len(msg_rows) >= size:
            break
    started = time.perf_counter()
    await conn.copy_records_to_table("conversations", records=conv_rows, columns=[
        "id", "tenant_id", "user_id", "channel", "title", "created_at", "message_count"])
    await conn.copy_records_to_table("messages", records=msg_rows, columns=[
        "id", "tenant_id", "user_id", "conversation_id", "seq", "role", "channel", "content", "occurred_at",
        "reply_expected"])
    await conn.execute("ANALYZE messages")
    fresh = sorted({t for t in texts if t not in cache})
    for i in range(0, len(fresh), 256):
        chunk = fresh[i:i + 256]
        cache.update(zip(chunk, await embedder.embed(chunk), strict=True))
    for i in range(0, len(points), 2000):
        await index.upsert([VectorPoint(mid, cache[text], payload) for mid, text, payload in points[i:i + 2000]])
    # Bursts (consecutive turns of one role) became units as the rows went in: their points too.
    await refresh_units(storage.embeddings, embedder, index)
    loaded = time.perf_counter() - started
    return sorted({u.user for u in data.users}), [q.question for q in data.questions], loaded


async def run(sizes: list[int], queries: int) -> None:
    common = load(CommonSettings)
    url = common.database_url.get_secret_value()
    await migrate(url)
    embedder = OnnxEmbedder(remember=0)  # every query pays for its embedding, as a cold one would
    await embedder.embed(["warm up"])
    print(f"convmem search latency benchmark: sizes {sizes}, {queries} sequential queries per configuration")
    cache: dict[str, list[float]] = {}
    for size in sizes:
        tenant = f"latency-{uuid.uuid4().hex[:8]}"
        folder = Path(tempfile.mkdtemp(prefix="convmem-latency-"))
        index = EdgeVectorIndex(folder, embedder.dimension)
        conn = await asyncpg.connect(url)
        storage = await PostgresStorage.connect(url, max_size=4)
        try:
            users, questions, loaded = await load_turns(conn, storage, index, embedder, tenant, size, cache)
            await index.optimize()  # build HNSW off the clock
            total = await conn.fetchval("SELECT count(*) FROM messages")
            print(f"\n{size} turns for this tenant ({len(users)} users of ~300 turns; {total} rows in the table), "
                  f"loaded in {loaded:.1f} s")
            asked = [(users[i % len(users)], questions[i % len(questions)]) for i in range(queries)]

            base_embed, base_vec, base_fts = [], [], []
            for user, q in asked:
                t = time.perf_counter()
                [vec] = await embedder.embed([q])
                base_embed.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await index.search(vec, MemoryScope(tenant, user), 50)
                base_vec.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await conn.fetch("""SELECT id FROM messages WHERE tenant_id = $1 AND user_id = $2
                                    AND search_tsv @@ plainto_tsquery('english', $3) LIMIT 50""", tenant, user, q)
                base_fts.append((time.perf_counter() - t) * 1000)
            print(" baselines:")
            print(line("embed one query (ONNX MiniLM int8)", base_embed))
            print(line("raw vector query, user filter, k=50", base_vec))
            print(line("raw full-text query (AND), user filter", base_fts))
            print(" Retriever.search, k=10:")
            retriever = Retriever(storage.memory, index, embedder)
            now = datetime.now(UTC)
            for name, stages in CONFIGS:
                lat = []
                for user, q in asked:
                    t = time.perf_counter()
                    await retriever.search(q, MemoryScope(tenant, user), 10, now, stages)
                    lat.append((time.perf_counter() - t) * 1000)
                print(line(name, lat))
        finally:
            await conn.execute("DELETE FROM conversations WHERE tenant_id = $1", tenant)
            await conn.close()
            await storage.close()
            await index.close()
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=200)
    a = p.parse_args()
    asyncio.run(run([int(s) for s in a.sizes.split(",")], a.queries))


if __name__ == "__main__":
    main()
