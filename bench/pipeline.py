"""Pipeline benchmark: messages through the whole system, as a user sends them, with the raw
costs of its parts measured in the same run (bench/baselines.py).

Offered load: a burst (`--messages N`, all at once) or a steady rate (`--rate R --seconds S`,
open loop: message i is sent at t0 + i/R whether or not earlier ones were answered), over
`--conversations` conversations. `--saturation` steps the steady rate up until the reply
p99 passes `--p99-limit` (1 s offline, 2.5 s with a model). The model: offline (replies assembled from memory) or, with
`--model-latency L`, an OpenAI-compatible server (tests/fake_llm.py, its own process) that
waits L seconds before streaming its answer; its peak number of requests in flight is
reported.

Stages, from the client's send time (wall clock, same machine as Postgres):
  accepted  POST /v1/messages answered 202 (Kafka acked, acks=all)
  recorded  messages.recorded_at (turn in Postgres)
  embedded  messages.embedded_at (vector in the index)
  replied   replies.published_at (ReplyGenerated acknowledged by Kafka)

The workers run as `convmem run all` (without retention) runs them: in this process (the
default, as `run all` by default), or with `--processes 2` (as RUN_ALL_PROCESSES=2) the
groups that need no vector index in the companion process; each run prints their CPU per message. The load comes from
bench/load.py, a process of its own (it shares the machine's cores, not the workers' event
loop). Logs go to stderr: `2>bench.log`.

`--metrics off` runs the workers with CONVMEM_METRICS_ENABLED=false (nothing recorded, nothing
scraped); `--metrics compare` offers the same load to fresh workers with metrics off and on,
alternating `--pairs` times, scraping /metrics every `--scrape-interval` seconds while they
are on (as Prometheus would), and prints both, so their cost is measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.baselines import baseline_embedding, baseline_kafka, baseline_postgres, row
from bench.percentiles import pct
from bench.servers import local_server
from composition.companion import Companion, split_groups
from composition.roles import RoleSettings, consumer_groups
from composition.runtime import Runtime
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import CommonSettings, IndexerSettings, IngestSettings, ResponderSettings, load


@dataclass
class Outcome:
    offered: str
    sent: dict[uuid.UUID, float] = field(default_factory=dict)
    accept_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: {"recorded": [], "embedded": [], "replied": []})
    started: float = 0.0
    accepted_at: float = 0.0
    last_reply: float = 0.0
    cpu_s: float = 0.0  # the workers' process CPU (all threads) from the first send to the last reply
    loop_cpu_s: float = 0.0  # ... of which the event loop's thread
    companion_cpu_s: float = 0.0  # the companion process's (recording, statuses, upkeep), when there is one
    retried: int = 0  # sends answered 503 and sent again (same external_id)

    def report(self) -> list[str]:
        n, replied = len(self.sent), self.stages["replied"]
        window = max(self.last_reply - self.started, 1e-9)
        return [f"offered: {self.offered}",
                row("accepted (202 from ingest)", self.accept_ms, n / max(self.accepted_at - self.started, 1e-9)),
                row("recorded in Postgres", self.stages["recorded"]),
                row("embedded in vector index", self.stages["embedded"]),
                row("reply published (end to end)", replied, len(replied) / window),
                f"  completed {len(replied)}/{n} replies; {self.retried} sends answered 503 and retried",
                f"  workers' CPU per message: {1000 * (self.cpu_s + self.companion_cpu_s) / max(n, 1):.1f} ms: "
                f"main process {1000 * self.cpu_s / max(n, 1):.1f} ms (event loop {1000 * self.loop_cpu_s / max(n, 1):.1f}"
                f" ms, other threads {1000 * (self.cpu_s - self.loop_cpu_s) / max(n, 1):.1f} ms), companion process "
                f"{1000 * self.companion_cpu_s / max(n, 1):.1f} ms"]


@contextlib.asynccontextmanager
async def model_server(latency: float | None, token_interval: float = 0.0) -> AsyncIterator[str | None]:
    """The fake model in its own process, so its work is not on the workers' event loop."""
    if latency is None:
        yield None
        return
    async with local_server("tests.fake_llm", "--latency", str(latency), "--token-interval", str(token_interval)) as base:
        yield f"{base}/v1"


async def model_peak(base_url: str | None) -> int | None:
    if base_url is None:
        return None
    async with httpx.AsyncClient() as client:
        peak: int = (await client.get(base_url.removesuffix("/v1") + "/stats")).json()["peak_in_flight"]
        return peak


async def drive(w: Workers, conversations: int, load_args: list[str], label: str) -> Outcome:
    """Offer the load from bench/load.py, a process of its own (open loop), then collect.
    The workers' CPU time is taken over the same window: per message it is the cost, whatever
    else the machine runs at the time."""
    runtime = w.runtime
    cpu, loop_cpu, other_cpu = time.process_time(), time.thread_time(), w.cpu_s()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("load.py")), "--base", f"http://127.0.0.1:{runtime.port}",
        "--conversations", str(conversations), *load_args, stdout=asyncio.subprocess.PIPE)
    raw, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed ({proc.returncode})")
    sent = orjson.loads(raw)
    out = Outcome(label, {uuid.UUID(k): v for k, v in sent["sent"].items()}, sent["accept_ms"],
                  started=sent["started"], accepted_at=sent["accepted_at"], retried=sent.get("retried", 0))
    await collect(out)
    out.cpu_s, out.loop_cpu_s = time.process_time() - cpu, time.thread_time() - loop_cpu
    out.companion_cpu_s = w.cpu_s() - other_cpu
    return out


async def collect(out: Outcome, timeout_s: float = 600) -> None:
    conn = await asyncpg.connect(load(CommonSettings).database_url.get_secret_value())
    ids = list(out.sent)
    try:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            done = await conn.fetchval("""SELECT count(*) FROM replies WHERE in_reply_to = ANY($1::uuid[])
                                          AND published_at IS NOT NULL""", ids)
            embedded = await conn.fetchval("""SELECT count(*) FROM messages WHERE id = ANY($1::uuid[])
                                              AND embedded_at IS NOT NULL""", ids)
            if done == len(ids) and embedded == len(ids):
                break
            await asyncio.sleep(0.25)
        rows = await conn.fetch("""SELECT m.id, m.recorded_at, m.embedded_at, r.published_at FROM messages m
                                   LEFT JOIN replies r ON r.in_reply_to = m.id WHERE m.id = ANY($1::uuid[])""", ids)
    finally:
        await conn.close()
    for r in rows:
        t0 = out.sent[r["id"]]
        for name, col in (("recorded", "recorded_at"), ("embedded", "embedded_at"), ("replied", "published_at")):
            if r[col] is not None:
                out.stages[name].append((r[col].timestamp() - t0) * 1000)
        if r["published_at"] is not None:
            out.last_reply = max(out.last_reply, r["published_at"].timestamp())


@dataclass
class Workers:
    runtime: Runtime
    companion: Companion | None

    def cpu_s(self) -> float:
        """CPU seconds of the companion process so far (0 without one)."""
        pid = self.companion.pid if self.companion is not None else None
        return child_cpu_s(pid) if pid is not None else 0.0


def child_cpu_s(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def workers(llm: str | None, metrics_on: bool, processes: int = 2) -> AsyncIterator[Workers]:
    """`convmem run all` without retention, with groups of its own: in this process, and
    with `processes` 2 its index-free groups in a companion process, as `run all` does."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    fresh = {"group_prefix": prefix, "log_level": "WARNING", "metrics_enabled": metrics_on}
    model = {"llm_base_url": llm, "llm_model": "fake-gpt"} if llm else {}
    settings = RoleSettings(ingest=load(IngestSettings, **fresh), indexer=load(IndexerSettings, **fresh),
                            responder=load(ResponderSettings, **fresh, **model))
    await start_groups_at_end(load(CommonSettings).kafka_bootstrap, consumer_groups(ROLES, prefix))
    mine, theirs = split_groups(ROLES, prefix) if processes > 1 else (None, [])
    runtime = Runtime(ROLES, ingest=settings.ingest, indexer=settings.indexer, responder=settings.responder,
                      http_port=0, groups=mine)
    env = {"CONVMEM_GROUP_PREFIX": prefix, "CONVMEM_LOG_LEVEL": "WARNING", "CONVMEM_OPS_PORT": "0",
           "CONVMEM_METRICS_ENABLED": str(metrics_on).lower(),
           **({"CONVMEM_LLM_BASE_URL": llm, "CONVMEM_LLM_MODEL": "fake-gpt"} if llm else {})}
    companion = Companion(theirs, env) if theirs else None
    await runtime.start()
    if companion is not None:
        await companion.start()
    try:
        yield Workers(runtime, companion)
    finally:
        if companion is not None:
            await companion.stop()
        await runtime.stop()


async def scraping(runtime: Runtime, every_s: float) -> None:
    """Prometheus's side of the cost: GET /metrics every `every_s` (lag, readiness, index size)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.probe_port}", timeout=30) as client:
        while True:
            (await client.get("/metrics")).raise_for_status()
            await asyncio.sleep(every_s)


async def compare_metrics(a: argparse.Namespace, llm: str | None) -> None:
    load_args = ["--rate", str(a.rate or 50), "--seconds", str(a.seconds)]
    rows: list[tuple[str, Outcome]] = []
    for pair in range(a.pairs):
        for on in (False, True):
            async with workers(llm, on, a.processes) as w:
                scraper = asyncio.create_task(scraping(w.runtime, a.scrape_interval)) if on else None
                try:
                    label = f"metrics {'on ' if on else 'off'} (pair {pair + 1}): {a.rate or 50} msg/s for {a.seconds} s"
                    out = await drive(w, a.conversations, load_args, label)
                finally:
                    if scraper is not None:
                        scraper.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await scraper
            print("\n".join(out.report()), flush=True)
            rows.append(("on" if on else "off", out))
    print("summary (reply end to end, and accepted by ingest):")
    for name in ("off", "on"):
        outs = [o for n, o in rows if n == name]
        replied = [v for o in outs for v in o.stages["replied"]]
        accepted = [v for o in outs for v in o.accept_ms]
        rate = sum(len(o.stages["replied"]) for o in outs) / sum(max(o.last_reply - o.started, 1e-9) for o in outs)
        print(row(f"metrics {name}: reply", replied, rate))
        print(row(f"metrics {name}: accepted", accepted))


async def run(a: argparse.Namespace) -> None:
    common = load(CommonSettings)
    n_base = a.baseline_texts
    print(f"convmem pipeline benchmark ({'offline model' if a.model_latency is None else f'model {a.model_latency}s'})")
    print("baselines (same run):")
    for line in [*await baseline_kafka(common.kafka_bootstrap, n_base),
                 *await baseline_postgres(common.database_url.get_secret_value(), n_base)]:
        print(line)
    lines, rates = await asyncio.to_thread(baseline_embedding, n_base)
    for line in lines:
        print(line)
    async with model_server(a.model_latency) as llm:
        if a.metrics == "compare":
            await compare_metrics(a, llm)
            return
        async with workers(llm, a.metrics == "on", a.processes) as w:
            if a.saturation:
                await saturation(w, a, rates)
            elif a.rate:
                out = await drive(w, a.conversations, ["--rate", str(a.rate), "--seconds", str(a.seconds)],
                                  f"{a.rate} msg/s for {a.seconds} s over {a.conversations} conversations")
                print("\n".join(out.report()))
            else:
                out = await drive(w, a.conversations, ["--messages", str(a.messages)],
                                  f"burst of {a.messages} over {a.conversations} conversations")
                print("\n".join(out.report()))
        if (peak := await model_peak(llm)) is not None:
            print(f"  model server: peak {peak} requests in flight")


async def saturation(w: Workers, a: argparse.Namespace, rates: dict[str, float]) -> None:
    """The highest steady rate whose reply p99 stays under `--p99-limit`, stepping up by
    `--step` (with a model, its latency is part of every reply: the limit is 2.5 s then)."""
    limit_ms = 1000 * (a.p99_limit if a.p99_limit is not None else (1.0 if a.model_latency is None else 2.5))
    best = 0.0
    rate = a.step
    while True:
        out = await drive(w, a.conversations, ["--rate", str(rate), "--seconds", str(a.seconds)],
                          f"{rate} msg/s for {a.seconds} s")
        p99 = pct(out.stages["replied"], 99)
        n = max(len(out.sent), 1)
        print(f"  {rate:6.1f} msg/s offered: reply p99 {p99:8.1f} ms, {len(out.stages['replied'])}/{len(out.sent)} "
              f"replied, CPU {1000 * (out.cpu_s + out.companion_cpu_s) / n:.1f} ms/message", flush=True)
        if p99 >= limit_ms or len(out.stages["replied"]) < len(out.sent):
            break
        best, rate = rate, rate + a.step
    half = rates["batched_sorted"] / 2  # each exchange embeds two turns
    print(f"saturation: {best:.1f} msg/s with reply p99 < {limit_ms / 1000:.1f} s; raw batched embedding / 2 = "
          f"{half:.1f} msg/s; ratio {best / half:.2f}")


ROLES = ("ingest", "indexer", "responder")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1000, help="burst size (without --rate)")
    p.add_argument("--conversations", type=int, default=100)
    p.add_argument("--rate", type=float, default=None, help="steady offered rate, messages per second")
    p.add_argument("--seconds", type=float, default=60.0, help="how long the steady rate is offered")
    p.add_argument("--model-latency", type=float, default=None, help="seconds per answer (default: offline)")
    p.add_argument("--saturation", action="store_true", help="step the rate up until reply p99 passes --p99-limit")
    p.add_argument("--step", type=float, default=10.0, help="rate step for --saturation")
    p.add_argument("--p99-limit", type=float, default=None,
                   help="seconds of reply p99 --saturation allows (default 1 offline, 2.5 with a model)")
    p.add_argument("--baseline-texts", type=int, default=500, help="texts (and rows, records) per raw baseline")
    p.add_argument("--processes", type=int, choices=(1, 2), default=1,
                   help="1 (as `run all`); 2 (as RUN_ALL_PROCESSES=2): recording and upkeep in a companion process")
    p.add_argument("--metrics", choices=("on", "off", "compare"), default="on",
                   help="record metrics (the default), not, or measure both with the same load")
    p.add_argument("--pairs", type=int, default=1, help="off/on runs for --metrics compare")
    p.add_argument("--scrape-interval", type=float, default=5.0, help="seconds between scrapes when metrics are on")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
