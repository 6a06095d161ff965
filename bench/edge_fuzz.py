"""Fuzz the HTTP edge from the outside, as a new user would, and print figures per area.

Starts `convmem run ingest` (and `convmem run indexer`, to see what the recorder does with what
the edge accepted) as separate processes on the local stack, then:
- Schemathesis over the served OpenAPI document, every operation, as an anonymous caller (its
  own generated Authorization header) and with user, service and admin tokens, positive and
  negative examples;
- signed WhatsApp webhooks of wrong shapes and sizes (Hypothesis), and the verify handshake;
- the hand-written cases of issue 12;
- abuse: chunked 50 MB bodies in parallel, a bad-token flood, verify-token guessing.
It reports requests and 5xx per area, schema violations, 429s, what reached a dead-letter
topic, and the ingest process's resident memory (start, peak, end).

Usage: python bench/edge_fuzz.py [--examples 25] [--webhook-examples 400] [--abuse-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fuzzing.abuse import run_abuse  # noqa: E402
from bench.fuzzing.common import Figures, RssSampler  # noqa: E402
from bench.fuzzing.dead_letters import WATCHED, dead_letters_of_this_run, end_offsets  # noqa: E402
from bench.fuzzing.hand_cases import run_hand_cases  # noqa: E402
from bench.fuzzing.schema import run_schemathesis  # noqa: E402
from bench.fuzzing.webhooks import run_webhook_fuzz  # noqa: E402
from convmem.settings import IngestSettings, load  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=25, help="Schemathesis examples per operation, role and mode")
    ap.add_argument("--webhook-examples", type=int, default=400)
    ap.add_argument("--abuse-s", type=float, default=5.0)
    ap.add_argument("--port", type=int, default=int(os.environ.get("CONVMEM_HTTP_PORT", "8080")))
    ap.add_argument("--no-indexer", action="store_true")
    args = ap.parse_args()
    settings = load(IngestSettings)
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    app_secret = settings.whatsapp_app_secret.get_secret_value()
    base = f"http://127.0.0.1:{args.port}"
    convmem = str(ROOT / ".venv" / "bin" / "convmem")
    logs = open(ROOT / ".convmem" / "edge_fuzz.log", "wb")
    procs = [subprocess.Popen([convmem, "run", "ingest", "--port", str(args.port)],  # noqa: S603 - our own CLI
                              stdout=logs, stderr=logs)]
    if not args.no_indexer:
        # Qdrant Edge opens a folder from one process only: the recorder gets its own (search is
        # not what this run measures).
        env = os.environ | {"CONVMEM_VECTOR_PATH": str(ROOT / ".convmem" / "edge-fuzz-vectors")}
        procs.append(subprocess.Popen([convmem, "run", "indexer"], stdout=logs, stderr=logs, env=env))  # noqa: S603
    fig = Figures()
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(1800):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            sampler = RssSampler(procs[0].pid)
            start_kb = sampler.rss_kb()
            sampler.start()
            dlq_start = asyncio.run(end_offsets(settings.kafka_bootstrap, tuple(f"{t}.dlq" for t in WATCHED)))
            inbound_start = asyncio.run(end_offsets(settings.kafka_bootstrap, WATCHED))
            t0 = time.perf_counter()
            print("hand cases:")
            run_hand_cases(client, secret, app_secret, fig)
            print("schemathesis ...")
            run_schemathesis(base, secret, args.examples, fig)
            print("webhook fuzz ...")
            run_webhook_fuzz(client, app_secret, args.webhook_examples, fig)
            after_fuzz_kb = sampler.rss_kb()
            print("abuse ...")
            run_abuse(base, secret, app_secret, args.abuse_s, sampler, fig)
            elapsed = time.perf_counter() - t0
            time.sleep(5)  # let the recorder catch up before counting dead letters
            end_kb, hwm_kb = sampler.rss_kb(), sampler.rss_kb("VmHWM")
            sampler.stop.set()
            reasons = asyncio.run(dead_letters_of_this_run(settings.kafka_bootstrap, dlq_start, inbound_start))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    print(f"\n{'area':<52} {'requests':>8} {'5xx':>5} {'429':>5} {'2xx':>5}  statuses")
    total = Counter[int]()
    for area in sorted(fig.statuses):
        c = fig.statuses[area]
        total.update(c)
        n5 = sum(v for k, v in c.items() if k >= 500)
        n2 = sum(v for k, v in c.items() if 200 <= k < 300)
        print(f"{area:<52} {sum(c.values()):>8} {n5:>5} {c[429]:>5} {n2:>5}  {dict(sorted(c.items()))}")
    print(f"{'total':<52} {sum(total.values()):>8} {sum(v for k, v in total.items() if k >= 500):>5} "
          f"{total[429]:>5}  in {elapsed:.0f} s")
    print(f"schema violations: {sum(fig.violations.values())} {dict(fig.violations)}")
    for area, lines in fig.examples.items():
        print(f"  {area}: " + "; ".join(lines))
    print(f"dead-lettered, of what this run published: {sum(reasons.values())} {dict(reasons)}")
    print(f"ingest RSS: start {start_kb // 1024} MB, after fuzzing {after_fuzz_kb // 1024} MB, "
          f"peak {max(hwm_kb, sampler.peak_kb) // 1024} MB, end {end_kb // 1024} MB")


if __name__ == "__main__":
    main()
