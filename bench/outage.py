"""Outages under steady load (issue 20): `convmem run all` as its own process on the local
stack, clients posting at a steady rate and retrying every 503 (and every request that got no
answer) with an Idempotency-Key; a share of them without any key, as most HTTP clients retry.
Postgres is stopped for --postgres-down seconds, then the Kafka broker is killed (SIGKILL) and
restarted after --kafka-down seconds. Then every message is looked up in Postgres:

  lost      accepted (202) and never recorded        must be 0
  doubled   recorded more than once (keyed)          must be 0
  bad 5xx   a 5xx other than a JSON 503              must be 0

and the same doubled count for the keyless messages, which nothing can dedupe after a 503 of
unknown outcome. It stops and starts the stack's own Postgres and Kafka (never a server it
did not start): run it on a local stack that nothing else uses.

    python bench/outage.py [--rate 20] [--postgres-down 20] [--kafka-down 10] [--keyless-every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from composition.roles import ROLES, consumer_groups  # noqa: E402
from convmem.delivery.provisioning import start_groups_at_end  # noqa: E402
from convmem.devstack.stack import Stack  # noqa: E402
from convmem.settings import ExternalServices, IngestSettings, StackSettings, load  # noqa: E402
from tests.outage_clients import SteadyClients, tally  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def convmem_all(env: dict[str, str], log_path: Path) -> AsyncIterator[str]:
    """`convmem run all` in a process of its own, with consumer groups of this run that start
    at the end of the topics; yields its base URL once /healthz answers."""
    port = _free_port()
    prefix = env["CONVMEM_GROUP_PREFIX"]
    await start_groups_at_end(env["CONVMEM_KAFKA_BOOTSTRAP"], consumer_groups(ROLES, prefix))
    with open(log_path, "wb") as log:  # noqa: ASYNC230 (once, before the process starts)
        proc = subprocess.Popen([sys.executable, "-m", "composition.cli", "run", "all", "--port", str(port)],  # noqa: S603, ASYNC220
                                env={**env, "CONVMEM_HTTP_PORT": str(port)}, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=2) as c:
                for _ in range(600):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await c.get(f"{base}/healthz")).status_code == 200:
                            break
                    if proc.poll() is not None:
                        raise RuntimeError(f"convmem run all exited with {proc.returncode}; see {log_path}")
                    await asyncio.sleep(0.2)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


async def outages(stack: Stack, clients: SteadyClients, a: argparse.Namespace, marks: dict[str, float]) -> None:
    t0 = time.monotonic()

    def mark(what: str) -> None:
        marks[what] = round(time.monotonic() - t0, 1)
        print(f"[{marks[what]:7.1f} s] {what}", file=sys.stderr, flush=True)

    await asyncio.sleep(a.warmup)
    mark("postgres stopped")
    await asyncio.to_thread(stack._pg_down)
    await asyncio.sleep(a.postgres_down)
    await asyncio.to_thread(stack.up)
    mark("postgres started")
    await asyncio.sleep(a.between)
    pid = int((stack.kafka_dir / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    mark("kafka killed")
    await asyncio.sleep(a.kafka_down)
    await asyncio.to_thread(stack.up)
    mark("kafka started")
    await asyncio.sleep(a.after)
    mark("load stopped")
    clients.stop_sending.set()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--postgres-down", type=float, default=20.0)
    p.add_argument("--between", type=float, default=15.0)
    p.add_argument("--kafka-down", type=float, default=10.0)
    p.add_argument("--after", type=float, default=20.0)
    p.add_argument("--keyless-every", type=int, default=10, help="every n-th message without a key (0: none)")
    a = p.parse_args()
    external = ExternalServices()
    if external.kafka_bootstrap or external.database_url:
        raise SystemExit("this benchmark stops and starts the local stack: unset CONVMEM_KAFKA_BOOTSTRAP/DATABASE_URL")
    stack = Stack(StackSettings(), external)
    values = await asyncio.to_thread(stack.up)
    secret = load(IngestSettings, kafka_bootstrap=values["CONVMEM_KAFKA_BOOTSTRAP"],
                  database_url=values["CONVMEM_DATABASE_URL"]).jwt_secret
    assert secret is not None
    load_avg = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **values, "CONVMEM_GROUP_PREFIX": f"outage-{int(time.time())}",
               "CONVMEM_VECTOR_PATH": str(Path(tmp) / "vectors"), "CONVMEM_LOG_LEVEL": "WARNING"}
        log_path = Path(tmp) / "convmem.log"
        async with convmem_all(env, log_path) as base:
            clients = SteadyClients(base, secret.get_secret_value(), keyless_every=a.keyless_every)
            marks: dict[str, float] = {}
            started = time.monotonic()
            await asyncio.gather(clients.run(a.rate), outages(stack, clients, a, marks))
            sending_s = time.monotonic() - started
            result = await tally(values["CONVMEM_DATABASE_URL"], clients)
        tail = log_path.read_text(errors="replace").splitlines()[-5:]
    figures = {"rate": a.rate, "seconds": round(sending_s, 1), "timeline_s": marks, **result.as_dict(),
               "load_before": [round(x, 2) for x in load_avg], "load_after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(figures, indent=2))
    print(f"lost {result.lost}, doubled {result.doubled} (keyless: {result.doubled_keyless} of {result.keyless}), "
          f"5xx other than a JSON 503: {result.bad_5xx}", file=sys.stderr)
    if result.lost or result.doubled or result.bad_5xx:
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
