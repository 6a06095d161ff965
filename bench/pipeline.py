"""Pipeline benchmark: N messages over M conversations through the whole system, with the
raw costs of its parts measured in the same run.

Stages, from the client's send time t0 (wall clock, same machine as Postgres):
  accepted  POST /v1/messages answered 202 (Kafka acked, acks=all)
  recorded  messages.recorded_at (turn in Postgres)
  embedded  messages.embedded_at (vector in the index)
  replied   replies.published_at (ReplyGenerated acknowledged by Kafka)
Baselines: aiokafka produce (acks=all), one-row Postgres INSERT transactions, ONNX embedding.

The workers run in this process (`convmem run all` equivalent, offline LLM), so the load
generator shares the machine's cores with them: figures are for one 2-core box.

Usage: python bench/pipeline.py [--messages 1000] [--conversations 100] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.percentiles import pct
from composition.runtime import ROLES, Runtime
from convmem.adapters.embedder import OnnxEmbedder
from convmem.settings import CommonSettings, IngestSettings, load
from services.ingest.auth import issue_token

TEXTS = [
    "I'd like to change my delivery address to the office on Rua Augusta.",
    "My daughter is allergic to peanuts, please keep that in mind for the order.",
    "Can you remind me what I ordered last Tuesday?",
    "The package arrived damaged, the box was crushed on one side.",
    "We need 400 boxes for 10 inch pizzas by Friday morning.",
]


def row(name: str, values_ms: list[float], rate: float | None = None) -> str:
    r = f"{rate:9.1f}/s" if rate is not None else " " * 11
    return (f"  {name:<34} {r}  p50 {pct(values_ms, 50):8.1f} ms  p95 {pct(values_ms, 95):8.1f} ms  "
            f"p99 {pct(values_ms, 99):8.1f} ms  (n={len(values_ms)})")


async def baseline_kafka(bootstrap: str, n: int) -> list[str]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    await producer.start()
    topic = "conv.bench.v1"
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, 6, 1, topic_configs={"retention.ms": "3600000"})])
    finally:
        await admin.close()

    payload = b"x" * 600  # about the size of a MessageReceived event
    lat = []
    try:
        t = time.perf_counter()
        for i in range(n):
            s = time.perf_counter()
            await producer.send_and_wait(topic, payload, key=str(i % 64).encode())
            lat.append((time.perf_counter() - s) * 1000)
        seq_rate = n / (time.perf_counter() - t)
        t = time.perf_counter()
        futs = [await producer.send(topic, payload, key=str(i % 64).encode()) for i in range(n)]
        await asyncio.gather(*futs)
        pipelined = n / (time.perf_counter() - t)
    finally:
        await producer.stop()
    return [row("kafka produce, one at a time", lat, seq_rate),
            f"  {'kafka produce, pipelined':<34} {pipelined:9.1f}/s"]


async def baseline_postgres(url: str, n: int) -> list[str]:
    conn = await asyncpg.connect(url)
    lat = []
    try:
        # A logged table: a TEMP one skips the WAL flush and would flatter the baseline.
        table = f"bench_rows_{uuid.uuid4().hex[:8]}"
        await conn.execute(f"CREATE TABLE {table} (id uuid PRIMARY KEY, body text, at timestamptz)")
        t = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            await conn.execute(f"INSERT INTO {table} VALUES ($1, $2, now())", uuid.uuid4(), "x" * 200)  # noqa: S608
            lat.append((time.perf_counter() - s) * 1000)
        rate = n / (time.perf_counter() - t)
        await conn.execute(f"DROP TABLE {table}")
    finally:
        await conn.close()
    return [row("postgres one-row insert (autocommit)", lat, rate)]


def baseline_embedding(n: int) -> list[str]:
    emb = OnnxEmbedder()
    texts = [TEXTS[i % len(TEXTS)] + f" #{i}" for i in range(n)]
    emb.embed_sync(texts[:8])  # warm-up
    t = time.perf_counter()
    for i in range(0, n, 64):
        emb.embed_sync(texts[i:i + 64])
    batched = n / (time.perf_counter() - t)
    single = []
    for text in texts[: min(n, 200)]:
        s = time.perf_counter()
        emb.embed_sync([text])
        single.append((time.perf_counter() - s) * 1000)
    return [f"  {'embedding, batches of 64':<34} {batched:9.1f}/s", row("embedding, one text", single, 1000 / statistics.mean(single))]


async def run(n: int, m: int, concurrency: int) -> None:
    common = load(CommonSettings)
    ingest = load(IngestSettings)
    print(f"convmem pipeline benchmark: {n} messages over {m} conversations, concurrency {concurrency}")
    print("baselines (same run):")
    for line in await baseline_kafka(common.kafka_bootstrap, n):
        print(line)
    for line in await baseline_postgres(common.database_url.get_secret_value(), n):
        print(line)
    for line in await asyncio.to_thread(baseline_embedding, n):
        print(line)

    runtime = Runtime(ROLES[:3], http_port=0)
    await runtime.start()
    run_id = uuid.uuid4().hex[:8]
    users = [f"bench-{run_id}-{i}" for i in range(m)]
    convs = [uuid.uuid4() for _ in range(m)]
    tokens = {u: issue_token(ingest.jwt_secret.get_secret_value(), u) for u in users}
    sent: dict[uuid.UUID, float] = {}
    accept_ms: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.port}", timeout=60,
                                     limits=httpx.Limits(max_connections=concurrency)) as api:
            async def one(i: int) -> None:
                k = i % m
                async with sem:
                    t0 = time.time()
                    r = await api.post("/v1/messages", headers={"Authorization": f"Bearer {tokens[users[k]]}"},
                                       json={"user_id": users[k], "conversation_id": str(convs[k]),
                                             "text": TEXTS[i % len(TEXTS)], "external_id": f"{run_id}-{i}"})
                    accept_ms.append((time.time() - t0) * 1000)
                    r.raise_for_status()
                    sent[uuid.UUID(r.json()["message_id"])] = t0

            started = time.time()
            await asyncio.gather(*(one(i) for i in range(n)))
            accepted_at = time.time()
        conn = await asyncpg.connect(common.database_url.get_secret_value())
        try:
            ids = list(sent)
            deadline = time.time() + 600
            while time.time() < deadline:
                done = await conn.fetchval(
                    "SELECT count(*) FROM replies WHERE in_reply_to = ANY($1::uuid[]) AND published_at IS NOT NULL", ids)
                embedded = await conn.fetchval(
                    "SELECT count(*) FROM messages WHERE id = ANY($1::uuid[]) AND embedded_at IS NOT NULL", ids)
                if done == n and embedded == n:
                    break
                await asyncio.sleep(0.25)
            rows = await conn.fetch(
                """SELECT m.id, m.recorded_at, m.embedded_at, r.published_at FROM messages m
                   LEFT JOIN replies r ON r.in_reply_to = m.id WHERE m.id = ANY($1::uuid[])""", ids)
        finally:
            await conn.close()
    finally:
        await runtime.stop()

    def ms(at: datetime | None, t0: float) -> float | None:
        return None if at is None else (at.timestamp() - t0) * 1000

    stages = {"recorded": [], "embedded": [], "replied": []}
    for r in rows:
        t0 = sent[r["id"]]
        for name, col in (("recorded", "recorded_at"), ("embedded", "embedded_at"), ("replied", "published_at")):
            v = ms(r[col], t0)
            if v is not None:
                stages[name].append(v)
    last = max((r["published_at"] for r in rows if r["published_at"]), default=datetime.now(UTC)).timestamp()
    print("pipeline (client send -> stage):")
    print(row("accepted (202 from ingest)", accept_ms, n / (accepted_at - started)))
    print(row("recorded in Postgres", stages["recorded"]))
    print(row("embedded in vector index", stages["embedded"]))
    print(row("reply published (end to end)", stages["replied"], len(stages["replied"]) / (last - started)))
    missing = n - len(stages["replied"])
    print(f"  completed {len(stages['replied'])}/{n} replies" + (f" ({missing} missing)" if missing else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000)
    p.add_argument("--conversations", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=16)
    a = p.parse_args()
    asyncio.run(run(a.messages, a.conversations, a.concurrency))


if __name__ == "__main__":
    main()
