"""Retrieval benchmark: generates an evaluation set, loads it through `convmem import` (the
JSON Lines importer, onto Kafka, recorded and embedded by the indexer), waits until every turn
is searchable, then asks every question through GET /v1/search, as a user of the API would,
with each retrieval configuration.

Sets: `dialogues` (bench/dialogues.py, the default: two named people over months of dated
sessions, facts given in answer to the other's question, paraphrased and world-knowledge
questions, look-alike events) and `assistant` (bench/evalset.py: a user and an assistant).

Reported per configuration, over all questions and per question kind: the fraction of each
question's evidence turns found in the top 5/10/25/50 (averaged over questions), MRR (rank of
the first evidence turn), and search latency p50/p99 (questions asked one at a time).

The workers (ingest + indexer) run in this process with the offline embedder, against the
local stack; a fresh tenant per run keeps runs apart (`--keep` leaves it for `--reuse`).

Usage: python bench/retrieval.py [--set dialogues|assistant] [--pairs 10] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
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

from bench.dialogues import generate_dialogues
from bench.evalset import EvalSet, Question, generate
from bench.percentiles import pct
from composition.bulk import run_import
from composition.roles import consumer_groups
from composition.runtime import Runtime
from convmem.delivery.provisioning import start_groups_at_end
from convmem.home import state_dir
from convmem.settings import IndexerSettings, IngestSettings, ResponderSettings, load
from services.ingest.auth import issue_token

# (name, mode, stages): every configuration the API can be asked for. "default without X"
# rows show what each stage of the default set adds, given the others.
DEFAULT_STAGES = ("confidence", "speakers", "context", "neighbours", "temporal")
DEFAULT = ",".join(DEFAULT_STAGES)
CONFIGS = [
    ("full-text only", "fts", "none"),
    ("full-text + default stages", "fts", DEFAULT),
    ("vector only", "vector", "none"),
    ("hybrid, no stages (plain RRF)", "hybrid", "none"),
    ("default", "hybrid", DEFAULT),
    *((f"default without {s}", "hybrid", ",".join(x for x in DEFAULT_STAGES if x != s) or "none")
      for s in DEFAULT_STAGES),
    ("default + sessions", "hybrid", DEFAULT + ",sessions"),
    ("default + rerank", "hybrid", DEFAULT + ",rerank"),
    ("all stages", "hybrid", DEFAULT + ",sessions,rerank"),
]
KS = (5, 10, 25, 50)


def import_lines(data: EvalSet, tenant: str) -> list[bytes]:
    """The set as `convmem import` reads it: one JSON object per turn, sessions as conversations."""
    out = []
    for u in data.users:
        for s, turns in enumerate(u.sessions):
            for t in turns:
                line = {"tenant": tenant, "user": u.user, "conversation": f"{u.user}/session-{s}", "role": t.role,
                        "text": t.text, "external_id": t.external_id, "timestamp": t.occurred_at}
                if t.speaker:
                    line["metadata"] = {"speaker": t.speaker}
                out.append(json.dumps(line).encode())
    return out


async def wait_indexed(db_url: str, tenant: str, expected: int, timeout: float = 3600) -> float:
    conn = await asyncpg.connect(db_url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            embedded = await conn.fetchval(
                "SELECT count(embedded_at) FROM messages WHERE tenant_id = $1", tenant)
            if embedded >= expected:
                return time.perf_counter() - started
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise TimeoutError(f"only part of the {expected} turns were embedded after {timeout:.0f} s")


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
    """Fraction of each question's evidence turns in the top k, averaged; MRR of the first."""
    out: dict[str, float] = {}
    for k in KS:
        out[f"@{k}"] = statistics.mean(sum(r <= k for r in ranks[q.id]) / len(ranks[q.id]) for q in questions)
    out["mrr"] = statistics.mean(1 / min(ranks[q.id]) for q in questions)
    return out


def _row(name: str, m: dict[str, float]) -> str:
    return f"{name:<44}" + "".join(f"{m[f'@{k}']:7.3f}" for k in KS) + f"{m['mrr']:7.3f}"


async def run(a: argparse.Namespace) -> None:
    data = generate_dialogues(seed=a.seed, pairs=a.pairs) if a.set == "dialogues" else \
        generate(seed=a.seed, users=a.pairs)
    questions = [q for q in data.questions if q.evidence]
    kinds: dict[str, list[Question]] = defaultdict(list)
    for q in questions:
        kinds[q.kind].append(q)
    configs = [c for c in CONFIGS if not a.only or c[0] in a.only.split(",")]
    if a.rewrite:  # measured apart: it needs a chat model (CONVMEM_LLM_*) and costs a model call per search
        configs.append(("default + rewrite (chat model)", "hybrid", DEFAULT + ",rewrite"))
    print(f"convmem retrieval benchmark, set '{a.set}': {len(data.users)} histories, {data.turns()} turns, "
          f"{len(questions)} questions ({', '.join(f'{k} {len(v)}' for k, v in kinds.items())}), seed {a.seed}")

    tenant = a.reuse or f"bench-{uuid.uuid4().hex[:8]}"
    vectors = Path(a.vectors) if a.vectors else state_dir() / "bench-vectors" / tenant
    # Groups of this run's own, started at the end of the topics: a new group would otherwise
    # record and embed every earlier run's turns again (and bring deleted tenants back).
    group = f"bench-{tenant}"
    ingest = load(IngestSettings, vector_path=vectors, log_level="ERROR", group_prefix=group)
    indexer = load(IndexerSettings, vector_path=vectors, log_level="ERROR", group_prefix=group)
    assert ingest.jwt_secret is not None, "the benchmark signs its own tokens (CONVMEM_JWT_SECRET)"
    admin = issue_token(ingest.jwt_secret.get_secret_value(), "bench-admin", tenant, ("admin",), ttl_s=7200)
    await start_groups_at_end(ingest.kafka_bootstrap, consumer_groups(("indexer",), group))
    runtime = Runtime(["ingest", "indexer"], ingest=ingest, indexer=indexer, http_port=0)
    await runtime.start()
    if a.rewrite:
        responder = load(ResponderSettings)
        if responder.llm_base_url is None:
            raise SystemExit("--rewrite needs a chat model: set CONVMEM_LLM_BASE_URL (and _MODEL, _API_KEY)")
        runtime.res.open_chat_model(responder)  # before the first request builds the edge's retriever
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.port}", timeout=120) as api:
            if not a.reuse:
                # The history spans months: the tenant keeps it, as an operator importing old
                # history would arrange (the importer refuses what retention would delete).
                kept = await api.put("/v1/tenant/policy", json={"message_retention_days": 36500},
                                     headers={"Authorization": f"Bearer {admin}"})
                kept.raise_for_status()
                lines = import_lines(data, tenant)
                started = time.perf_counter()
                await run_import(io.BytesIO(b"\n".join(lines) + b"\n"), len(lines), settings=ingest)
                indexed = await wait_indexed(ingest.database_url.get_secret_value(), tenant, data.turns())
                print(f"imported and indexed {data.turns()} turns in {time.perf_counter() - started:.1f} s "
                      f"(embedded {indexed:.1f} s after the import returned)")
            header = f"{'configuration':<44}" + "".join(f"{'@' + str(k):>7}" for k in KS) + f"{'MRR':>7}"
            results: dict[str, dict[str, dict[str, float]]] = {}
            print("\nfraction of evidence turns in the top k, all questions:\n" + header + f"{'p50 ms':>9}{'p99 ms':>9}")
            for name, mode, stages in configs:
                await evaluate(api, questions[:20], admin, mode, stages, 1)  # warm caches and connections
                ranks, latency = await evaluate(api, questions, admin, mode, stages, a.concurrency)
                results[name] = {"all": metrics(questions, ranks) | {"p50": pct(latency, 50), "p99": pct(latency, 99)}}
                results[name] |= {kind: metrics(qs, ranks) for kind, qs in kinds.items()}
                print(_row(name, results[name]["all"]) + f"{pct(latency, 50):9.1f}{pct(latency, 99):9.1f}", flush=True)
            print("\nper question kind:\n" + f"{'configuration / kind':<44}" + "".join(f"{'@' + str(k):>7}" for k in KS)
                  + f"{'MRR':>7}")
            for name, _, _ in configs:
                print(name)
                for kind, qs in kinds.items():
                    print(_row(f"  {kind} ({len(qs)})", results[name][kind]))
            if a.json:
                await asyncio.to_thread(Path(a.json).write_text, json.dumps(results, indent=1))
    finally:
        await runtime.stop()
        if a.keep:
            print(f"kept: --reuse {tenant} --vectors {vectors}")
        else:
            conn = await asyncpg.connect(ingest.database_url.get_secret_value())
            for table in ("conversations", "tenant_policies", "user_summaries", "subject_keys"):
                await conn.execute(f"DELETE FROM {table} WHERE tenant_id = $1", tenant)  # noqa: S608
            await conn.close()
            shutil.rmtree(vectors, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", choices=("dialogues", "assistant"), default="dialogues")
    p.add_argument("--pairs", type=int, default=10, help="histories: two-person pairs, or users of the assistant set")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--concurrency", type=int, default=1, help="searches in flight (1: latency without queueing)")
    p.add_argument("--only", help="comma list of configuration names to run")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--rewrite", action="store_true", help="also measure the rewrite stage with the configured chat model")
    p.add_argument("--keep", action="store_true", help="keep the loaded tenant and vectors for --reuse")
    p.add_argument("--reuse", metavar="TENANT", help="query a tenant kept by --keep instead of loading")
    p.add_argument("--vectors", help="the vector folder of the reused tenant")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
