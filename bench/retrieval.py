"""Retrieval benchmark: generates an evaluation set, loads it through `convmem import` (the
JSON Lines importer, onto Kafka, recorded and embedded by the indexer), waits until every turn
is searchable, then asks every question through GET /v1/search, as a user of the API would,
with each retrieval configuration.

Sets (all three by default, loaded into one tenant as separate users): `dialogues`
(bench/dialogues.py: two named people over months of dated sessions, facts given in answer to
the other's question, paraphrased and world-knowledge questions, look-alike events), `chats`
(bench/chats.py: messaging-app chats, bursts of short lines, long days, names as people write
them, numeric dates, seasons and ranges, category questions) and `assistant`
(bench/evalset.py: a user and an assistant). As the held-out sets are loaded, each line
carries its speaker's name in the text ("katia: made banana bread tonight", `--speaker-in
text`, the default) or, with `--speaker-in metadata`, as metadata.speaker.

Reported per set and configuration, over all questions and per question kind: the fraction of
each question's evidence turns found in the top 5/10/25/50 (averaged over questions), MRR (rank
of the first evidence turn), and search latency p50/p99 (questions asked one at a time). Then
the do-no-harm gate: for every stage, its effect on frac@5 and frac@10 on each set, taken out
of the default (or added to it) and added to plain hybrid; a stage belongs in the default only
if it lowers none of them by more than GATE_NOISE.

The workers (ingest + indexer) run in this process with the offline embedder, against the
local stack; a fresh tenant per run keeps runs apart (`--keep` leaves it for `--reuse`).

Usage: python bench/retrieval.py [--set all|dialogues|chats|assistant] [--pairs 10] [--only NAME,...]
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

from bench.chats import generate_chats
from bench.dialogues import generate_dialogues
from bench.evalset import EvalSet, Question, generate
from bench.percentiles import pct
from composition.bulk import run_import
from composition.roles import consumer_groups
from composition.runtime import Runtime
from convmem.delivery.provisioning import start_groups_at_end
from convmem.home import state_dir
from convmem.memory.stages import STAGES, Stages
from convmem.settings import IndexerSettings, IngestSettings, ResponderSettings, load
from services.ingest.auth import issue_token

# (name, mode, stages): every configuration the API can be asked for. The default set is the
# one the service uses (convmem/memory/stages.py); each other stage (but rewrite, which needs a
# chat model) is measured taken out of it or added to it, and added to plain hybrid.
DEFAULT_STAGES = tuple(Stages().names())
DEFAULT = ",".join(DEFAULT_STAGES)
GATED = [s for s in STAGES if s != "rewrite"]
HYBRID = "hybrid, no stages (plain RRF)"
CONFIGS = [
    ("full-text only", "fts", "none"),
    ("vector only", "vector", "none"),
    (HYBRID, "hybrid", "none"),
    ("default", "hybrid", DEFAULT),
    ("full-text + default stages", "fts", DEFAULT),
    *((f"default without {s}", "hybrid", ",".join(x for x in DEFAULT_STAGES if x != s) or "none")
      for s in GATED if s in DEFAULT_STAGES),
    *((f"default + {s}", "hybrid", f"{DEFAULT},{s}") for s in GATED if s not in DEFAULT_STAGES),
    *((f"hybrid + {s}", "hybrid", s) for s in GATED),
    ("all stages", "hybrid", ",".join(GATED)),
]
GATE_NOISE = 0.01  # a stage may cost no set more than this at k=5 or k=10
SETS = ("dialogues", "chats", "assistant")
KS = (5, 10, 25, 50)


def import_lines(data: EvalSet, tenant: str, speaker_in: str = "text") -> list[bytes]:
    """The set as `convmem import` reads it: one JSON object per turn, sessions as conversations.
    A named speaker's name goes in the text ("maria: ...", every line a user's, as the held-out
    sets are loaded) or in metadata.speaker (the role then tells the two people apart)."""
    out = []
    for u in data.users:
        for s, turns in enumerate(u.sessions):
            for t in turns:
                line = {"tenant": tenant, "user": u.user, "conversation": f"{u.user}/session-{s}", "role": t.role,
                        "text": t.text, "external_id": t.external_id, "timestamp": t.occurred_at}
                if t.speaker and speaker_in == "text":
                    line["text"], line["role"] = f"{t.speaker}: {t.text}", "user"
                elif t.speaker:
                    line["metadata"] = {"speaker": t.speaker}
                out.append(json.dumps(line).encode())
    return out


def build(name: str, seed: int, pairs: int) -> EvalSet:
    if name == "dialogues":
        return generate_dialogues(seed=seed, pairs=pairs)
    if name == "chats":
        return generate_chats(seed=seed + 5, pairs=max(1, pairs * 4 // 5))
    return generate(seed=seed, users=pairs)


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


def gate(results: dict[str, dict[str, dict[str, dict[str, float]]]], sets: list[str]
         ) -> list[tuple[str, dict[str, float], bool | None]]:
    """Per stage, its effect on frac@5 and frac@10 of each set: in (or into) the default, and
    added to plain hybrid; and whether it passes (no effect below -GATE_NOISE)."""
    out = []
    for stage in GATED:
        with_, without = (("default", f"default without {stage}") if stage in DEFAULT_STAGES
                          else (f"default + {stage}", "default"))
        effects: dict[str, float] = {}
        for name in sets:
            r = results[name]
            for k in (5, 10):
                if with_ in r and without in r:
                    effects[f"{name} default @{k}"] = r[with_]["all"][f"@{k}"] - r[without]["all"][f"@{k}"]
                if f"hybrid + {stage}" in r and HYBRID in r:
                    effects[f"{name} hybrid @{k}"] = r[f"hybrid + {stage}"]["all"][f"@{k}"] - r[HYBRID]["all"][f"@{k}"]
        out.append((stage, effects, min(effects.values()) >= -GATE_NOISE if effects else None))
    return out


def print_gate(rows: list[tuple[str, dict[str, float], bool | None]], sets: list[str]) -> None:
    print(f"\ndo-no-harm gate: each stage's effect on frac@5 and frac@10 per set; dflt: the default with the stage "
          f"minus without it, hyb: plain hybrid with it minus without it. A stage passes if no effect is below "
          f"-{GATE_NOISE}.")
    print(f"{'':<12}" + "".join(f"{name:^32}" for name in sets))
    print(f"{'stage':<12}" + "".join(f"{c:>8}" for _ in sets for c in ("dflt@5", "dflt@10", "hyb@5", "hyb@10"))
          + "  default  passes")
    for stage, effects, ok in rows:
        cells = [effects.get(f"{name} {base} @{k}") for name in sets for base in ("default", "hybrid") for k in (5, 10)]
        print(f"{stage:<12}" + "".join(f"{c:+8.3f}" if c is not None else f"{'-':>8}" for c in cells)
              + f"  {'in' if stage in DEFAULT_STAGES else 'out':<7}  {'-' if ok is None else 'yes' if ok else 'NO'}")


async def run(a: argparse.Namespace) -> None:
    sets = list(SETS) if a.set == "all" else [a.set]
    data = {name: build(name, a.seed, a.pairs) for name in sets}
    questions = {name: [q for q in d.questions if q.evidence] for name, d in data.items()}
    kinds: dict[str, dict[str, list[Question]]] = {}
    for name, qs in questions.items():
        kinds[name] = defaultdict(list)
        for q in qs:
            kinds[name][q.kind].append(q)
        print(f"set '{name}': {len(data[name].users)} histories, {data[name].turns()} turns, {len(qs)} questions "
              f"({', '.join(f'{k} {len(v)}' for k, v in kinds[name].items())}), seed {data[name].seed}")
    # A name may hold a comma ("hybrid, no stages ..."): a list with a semicolon splits on those.
    only = (a.only.split(";") if ";" in a.only else a.only.split(",")) if a.only else []
    configs = [c for c in CONFIGS if not only or c[0] in only]
    if a.rewrite:  # measured apart: it needs a chat model (CONVMEM_LLM_*) and costs a model call per search
        configs.append(("default + rewrite (chat model)", "hybrid", DEFAULT + ",rewrite"))
    print(f"default stages: {DEFAULT}; speakers' names in the {a.speaker_in}")

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
                lines = [line for d in data.values() for line in import_lines(d, tenant, a.speaker_in)]
                started = time.perf_counter()
                await run_import(io.BytesIO(b"\n".join(lines) + b"\n"), len(lines), settings=ingest)
                indexed = await wait_indexed(ingest.database_url.get_secret_value(), tenant, len(lines))
                print(f"imported and indexed {len(lines)} turns in {time.perf_counter() - started:.1f} s "
                      f"(embedded {indexed:.1f} s after the import returned)")
            header = f"{'configuration':<44}" + "".join(f"{'@' + str(k):>7}" for k in KS) + f"{'MRR':>7}"
            results: dict[str, dict[str, dict[str, dict[str, float]]]] = {name: {} for name in sets}
            for name in sets:
                qs = questions[name]
                print(f"\nset '{name}': fraction of evidence turns in the top k, all questions:\n"
                      + header + f"{'p50 ms':>9}{'p99 ms':>9}")
                for conf, mode, stages in configs:
                    await evaluate(api, qs[:10], admin, mode, stages, 1)  # warm caches and connections
                    ranks, latency = await evaluate(api, qs, admin, mode, stages, a.concurrency)
                    results[name][conf] = {"all": metrics(qs, ranks) | {"p50": pct(latency, 50), "p99": pct(latency, 99)}}
                    results[name][conf] |= {kind: metrics(kq, ranks) for kind, kq in kinds[name].items()}
                    print(_row(conf, results[name][conf]["all"]) + f"{pct(latency, 50):9.1f}{pct(latency, 99):9.1f}",
                          flush=True)
            for name in sets:
                print(f"\nset '{name}' per question kind:\n" + f"{'configuration / kind':<44}"
                      + "".join(f"{'@' + str(k):>7}" for k in KS) + f"{'MRR':>7}")
                for conf, _, _ in configs:
                    if a.all_kinds or conf in ("full-text only", "vector only", HYBRID, "default"):
                        print(conf)
                        for kind, kq in kinds[name].items():
                            print(_row(f"  {kind} ({len(kq)})", results[name][conf][kind]))
            print_gate(gate(results, sets), sets)
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
    p.add_argument("--set", choices=("all", *SETS), default="all")
    p.add_argument("--speaker-in", choices=("text", "metadata"), default="text",
                   help="where a line carries its speaker's name (the held-out sets: in the text)")
    p.add_argument("--all-kinds", action="store_true", help="per-kind rows for every configuration, not only the main four")
    p.add_argument("--pairs", type=int, default=10, help="histories per set (pairs, users; the chats set has 4/5 as many)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--concurrency", type=int, default=1, help="searches in flight (1: latency without queueing)")
    p.add_argument("--only", help="comma (or semicolon) list of configuration names to run")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--rewrite", action="store_true", help="also measure the rewrite stage with the configured chat model")
    p.add_argument("--keep", action="store_true", help="keep the loaded tenant and vectors for --reuse")
    p.add_argument("--reuse", metavar="TENANT", help="query a tenant kept by --keep instead of loading")
    p.add_argument("--vectors", help="the vector folder of the reused tenant")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
