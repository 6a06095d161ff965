"""Raw costs of the pipeline's parts, measured in the same run as the pipeline itself: Kafka
produce (acks=all), one-row Postgres transactions, and ONNX embedding of real-looking chat
turns (one at a time, in batches of 64 taken in arrival order, and the same batches sorted
by length, which pads less)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.percentiles import pct
from convmem.adapters.embedder import OnnxEmbedder

TEXTS = [
    "I'd like to change my delivery address to the office on Rua Augusta.",
    "My daughter is allergic to peanuts, please keep that in mind for the order.",
    "Can you remind me what I ordered last Tuesday?",
    "The package arrived damaged, the box was crushed on one side.",
    "We need 400 boxes for 10 inch pizzas by Friday morning.",
    "ok",
    "Thanks! That was quick.",
    "So last weekend we finally drove up the coast, stopped at every little fishing village on the way, "
    "ate far too many grilled sardines and came back with a car full of sand and a very tired dog.",
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


def embedding_rates(texts: list[str]) -> dict[str, float]:
    """Texts per second, tokenizing included, of the raw model (onnxruntime on padded
    batches): one text at a time, batches of 64 in arrival order, and batches of 64 after
    sorting all the texts by length; and of convmem's embedder (length buckets) on the same
    arrival-order batches of 64."""
    emb = OnnxEmbedder(remember=0)  # measure the model, not the cache
    emb.embed_sync(texts[:8])  # warm-up
    batches = [texts[i:i + 64] for i in range(0, len(texts), 64)]
    by_length = sorted(texts, key=len)

    def rate(run: Callable[[], object], n: int) -> float:
        t = time.perf_counter()
        run()
        return n / (time.perf_counter() - t)

    single = texts[: min(len(texts), 200)]
    return {
        "single": rate(lambda: [emb.run_padded(emb.tokenize([t])) for t in single], len(single)),
        "batched": rate(lambda: [emb.run_padded(emb.tokenize(b)) for b in batches], len(texts)),
        "batched_sorted": rate(lambda: [emb.run_padded(emb.tokenize(by_length[i:i + 64]))
                                        for i in range(0, len(texts), 64)], len(texts)),
        "convmem": rate(lambda: [emb.embed_sync(b) for b in batches], len(texts)),
    }


def baseline_embedding(n: int) -> tuple[list[str], dict[str, float]]:
    texts = [TEXTS[i % len(TEXTS)] + f" #{i}" for i in range(n)]
    rates = embedding_rates(texts)
    return [f"  {'embedding, one text':<34} {rates['single']:9.1f}/s",
            f"  {'embedding, batches of 64':<34} {rates['batched']:9.1f}/s",
            f"  {'embedding, batches sorted by length':<34} {rates['batched_sorted']:9.1f}/s",
            f"  {'convmem embedder (length buckets)':<34} {rates['convmem']:9.1f}/s"], rates
