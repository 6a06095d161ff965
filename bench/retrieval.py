"""Retrieval benchmark: generates the evaluation set (bench/evalset.py), loads every turn
through the public HTTP API (POST /v1/messages, as history: no replies), waits until all of
it is recorded and embedded, then asks every question through GET /v1/search with each
retrieval configuration and prints recall@5/10/25 (any evidence turn in the top k, and all
of them), MRR (rank of the first evidence turn), per configuration and per question kind.
It also measures how long an accepted message takes to become searchable.

The workers (ingest + indexer) run in this process with the offline embedder, against the
local stack; a fresh tenant per run keeps runs apart.

Usage: python bench/retrieval.py [--users 20] [--seed 7] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evalset import EvalSet, Question, generate
from bench.percentiles import pct
from composition.runtime import Runtime
from convmem.home import state_dir
from convmem.settings import IndexerSettings, IngestSettings, load
from services.ingest.auth import issue_token

CONFIGS = [
    ("full-text only", "fts", "none"),
    ("vector only", "vector", "none"),
    ("hybrid (RRF)", "hybrid", "none"),
    ("hybrid + temporal", "hybrid", "temporal"),
    ("hybrid + neighbours", "hybrid", "neighbours"),
    ("hybrid + rerank", "hybrid", "rerank"),
    ("hybrid + temporal + neighbours (default)", "hybrid", "temporal,neighbours"),
    ("hybrid + all stages", "hybrid", "temporal,neighbours,rerank"),
]
KS = (5, 10, 25)


async def load_history(api: httpx.AsyncClient, data: EvalSet, tenant: str, service: str, concurrency: int) -> float:
    """One task per conversation (turns in order, so seq follows time), many conversations at once."""
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {service}"}

    async def conversation(user: str, session: int, turns: list) -> None:  # type: ignore[type-arg]
        conv = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}/{user}/{session}"))
        for t in turns:
            async with sem:
                r = await api.post("/v1/messages", headers=headers, json={
                    "user_id": user, "conversation_id": conv, "text": t.text, "role": t.role,
                    "reply_expected": False, "occurred_at": t.occurred_at, "external_id": t.external_id})
                r.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(conversation(u.user, s, turns) for u in data.users for s, turns in enumerate(u.sessions)))
    return time.perf_counter() - started


async def wait_indexed(db_url: str, tenant: str, expected: int, timeout: float = 1800) -> tuple[float, float]:
    conn = await asyncpg.connect(db_url)
    started = time.perf_counter()
    recorded_s = embedded_s = float("nan")
    try:
        while time.perf_counter() - started < timeout:
            rec, emb = await conn.fetchrow(
                "SELECT count(*), count(embedded_at) FROM messages WHERE tenant_id = $1", tenant)
            if rec >= expected and recorded_s != recorded_s:  # first time all are recorded
                recorded_s = time.perf_counter() - started
            if emb >= expected:
                embedded_s = time.perf_counter() - started
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    return recorded_s, embedded_s


async def searchable_lag(api: httpx.AsyncClient, tenant: str, service: str, admin: str, n: int) -> dict[str, list[float]]:
    """Accepted (202) -> first search that returns it, per retriever, polled every 20 ms."""
    lags: dict[str, list[float]] = {"fts": [], "vector": []}
    for i in range(n):
        word = f"zq{uuid.uuid4().hex[:10]}"
        user = f"probe-{i % 4}"
        r = await api.post("/v1/messages", headers={"Authorization": f"Bearer {service}"},
                           json={"user_id": user, "text": f"probe {word} about marmalade jars", "reply_expected": False})
        r.raise_for_status()
        accepted = time.perf_counter()
        mid = r.json()["message_id"]
        pending = {"fts", "vector"}
        while pending and time.perf_counter() - accepted < 60:
            for mode in list(pending):
                q = word if mode == "fts" else f"probe {word} about marmalade jars"
                hits = (await api.get("/v1/search", headers={"Authorization": f"Bearer {admin}"},
                                      params={"q": q, "user_id": user, "mode": mode, "stages": "none"})).json()["hits"]
                if any(h["message_id"] == mid for h in hits):
                    lags[mode].append((time.perf_counter() - accepted) * 1000)
                    pending.discard(mode)
            await asyncio.sleep(0.02)
    return lags


async def evaluate(api: httpx.AsyncClient, questions: list[Question], admin: str, mode: str, stages: str,
                   concurrency: int) -> tuple[dict[str, list[float]], list[float]]:
    """Per question: the 1-based rank of each evidence turn (inf if absent), and latency."""
    sem = asyncio.Semaphore(concurrency)
    ranks: dict[str, list[float]] = {}
    latency: list[float] = []

    async def one(q: Question) -> None:
        async with sem:
            t = time.perf_counter()
            r = await api.get("/v1/search", headers={"Authorization": f"Bearer {admin}"},
                              params={"q": q.question, "user_id": q.user, "k": max(KS), "mode": mode, "stages": stages})
            latency.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        order = [h["external_id"] for h in r.json()["hits"]]
        ranks[q.id] = [order.index(e) + 1 if e in order else float("inf") for e in q.evidence]

    await asyncio.gather(*(one(q) for q in questions))
    return ranks, latency


def metrics(questions: list[Question], ranks: dict[str, list[float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in KS:
        out[f"any@{k}"] = statistics.mean(min(ranks[q.id]) <= k for q in questions)
        out[f"all@{k}"] = statistics.mean(max(ranks[q.id]) <= k for q in questions)
    out["mrr"] = statistics.mean(1 / min(ranks[q.id]) for q in questions)
    return out


async def run(users: int, seed: int, concurrency: int, probes: int) -> None:
    run_id = uuid.uuid4().hex[:8]
    tenant = f"bench-{run_id}"
    vectors = state_dir() / "bench-vectors" / run_id
    ingest = load(IngestSettings, vector_path=vectors, log_level="ERROR")
    indexer = load(IndexerSettings, vector_path=vectors, log_level="ERROR", group_prefix=f"bench-{run_id}")
    data = generate(seed=seed, users=users)
    kinds: dict[str, list[Question]] = defaultdict(list)
    for q in data.questions:
        kinds[q.kind].append(q)
    print(f"convmem retrieval benchmark: {len(data.users)} users, {data.turns()} turns, "
          f"{len(data.questions)} questions ({', '.join(f'{k} {len(v)}' for k, v in kinds.items())}), seed {seed}")

    secret = ingest.jwt_secret.get_secret_value()
    service = issue_token(secret, "bench", tenant, ("service",), ttl_s=7200)
    admin = issue_token(secret, "bench-admin", tenant, ("admin",), ttl_s=7200)
    runtime = Runtime(["ingest", "indexer"], ingest=ingest.model_copy(update={"group_prefix": indexer.group_prefix}),
                      indexer=indexer, http_port=0)
    await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.port}", timeout=120,
                                     limits=httpx.Limits(max_connections=concurrency * 2)) as api:
            load_s = await load_history(api, data, tenant, service, concurrency)
            print(f"loaded {data.turns()} turns through POST /v1/messages in {load_s:.1f} s "
                  f"({data.turns() / load_s:.0f} msg/s accepted)")
            rec_s, emb_s = await wait_indexed(ingest.database_url.get_secret_value(), tenant, data.turns())
            print(f"  all recorded {rec_s:.1f} s and all embedded {emb_s:.1f} s after the last 202")

            lags = await searchable_lag(api, tenant, service, admin, probes)
            for mode, values in lags.items():
                print(f"  accepted -> searchable by {mode:<6}: p50 {pct(values, 50):7.0f} ms  p99 {pct(values, 99):7.0f} ms"
                      f"  (n={len(values)}, idle pipeline)")

            header = f"{'configuration':<42}" + "".join(f"{'any@' + str(k):>8}" for k in KS) + \
                "".join(f"{'all@' + str(k):>8}" for k in KS) + f"{'MRR':>7}{'p50 ms':>9}{'p99 ms':>9}"
            print("\n" + header)
            by_kind: dict[str, dict[str, dict[str, float]]] = {}
            for name, mode, stages in CONFIGS:
                ranks, latency = await evaluate(api, data.questions, admin, mode, stages, concurrency)
                m = metrics(data.questions, ranks)
                by_kind[name] = {kind: metrics(qs, ranks) for kind, qs in kinds.items()}
                print(f"{name:<42}" + "".join(f"{m[f'any@{k}']:8.3f}" for k in KS)
                      + "".join(f"{m[f'all@{k}']:8.3f}" for k in KS)
                      + f"{m['mrr']:7.3f}{pct(latency, 50):9.1f}{pct(latency, 99):9.1f}")
            print("\nrecall@10 (any evidence turn) by question kind:")
            print(f"{'configuration':<42}" + "".join(f"{k:>15}" for k in kinds))
            for name, _, _ in CONFIGS:
                print(f"{name:<42}" + "".join(f"{by_kind[name][k]['any@10']:15.3f}" for k in kinds))
    finally:
        await runtime.stop()
        shutil.rmtree(vectors, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--probes", type=int, default=30)
    a = p.parse_args()
    asyncio.run(run(a.users, a.seed, a.concurrency, a.probes))


if __name__ == "__main__":
    main()
