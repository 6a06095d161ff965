"""How long `convmem run all` takes to stop on SIGTERM with open event streams, measured on a
real process: for each count in `--streams` (default 0 10 100), start the process, open that
many conversation event streams (each with its own stream ticket, as a browser would) plus
a tenth as many WebSockets, then send SIGTERM and time until the process has exited. Also
timed: from SIGTERM until every stream got its last frame (`event: restart`, socket close
1012), and how soon a new process on the same index answers /readyz.

Baseline, same run: the 0-stream row is the process's own stop cost. `--in-flight` posts a
message to a slow model first, so a reply is being written when the signal comes (the stop
then waits for it, up to its share of SHUTDOWN_GRACE_S).

Uses the stack's Kafka and Postgres (`convmem stack up`); the fake model runs in a process
of its own. Output: one row per count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline import model_server
from composition.roles import ROLES, consumer_groups
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import CommonSettings, IngestSettings, load
from services.ingest.auth import issue_token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start(env: dict[str, str], port: int, log: Path) -> tuple[asyncio.subprocess.Process, float]:
    t0 = time.monotonic()
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "composition.cli", "run", "all",
                                                    "--port", str(port), env=env, stdout=out,
                                                    stderr=asyncio.subprocess.STDOUT)
    async with httpx.AsyncClient() as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"the process exited with {proc.returncode}: see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"http://127.0.0.1:{port}/readyz", timeout=2)).status_code == 200:
                    return proc, time.monotonic() - t0
            await asyncio.sleep(0.1)


async def last_sse_event(resp: httpx.Response) -> tuple[str, float]:
    last = ""
    async for line in resp.aiter_lines():
        if line.startswith("event: "):
            last = line[7:]
    return last, time.monotonic()


async def ws_closed(ws: ClientConnection) -> tuple[int | None, float]:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd is not None else None), time.monotonic()


async def one(n: int, env: dict[str, str], secret: str, log: Path, in_flight: bool) -> str:
    port = free_port()
    proc, _ = await start(env, port, log)
    user = f"shutdown-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {issue_token(secret, user)}"}
    sockets_n = n // 10
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(30, read=None),
            limits=httpx.Limits(max_connections=n + 16)))
        streams = []
        for _ in range(n):
            issued = (await api.post("/v1/stream-tickets", json={"conversation_id": str(uuid.uuid4())},
                                     headers=headers)).json()
            streams.append(await stack.enter_async_context(api.stream("GET", issued["events"])))
        sockets = []
        for _ in range(sockets_n):
            issued = (await api.post("/v1/stream-tickets", json={"user_id": user}, headers=headers)).json()
            ws = await stack.enter_async_context(connect(f"ws://127.0.0.1:{port}{issued['socket']}"))
            await ws.recv()  # following
            sockets.append(ws)
        readers = [asyncio.create_task(last_sse_event(r)) for r in streams]
        closers = [asyncio.create_task(ws_closed(ws)) for ws in sockets]
        if in_flight:
            await api.post("/v1/messages", headers=headers, json={"user_id": user, "text": "a long story please"})
            await asyncio.sleep(1.5)  # the model is writing it
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
        exited = time.monotonic() - signalled
        ends = await asyncio.gather(*readers)
        closes = await asyncio.gather(*closers)
    restarted_proc, ready_s = await start(env, port, log)
    restarted_proc.send_signal(signal.SIGTERM)
    await restarted_proc.wait()
    told = sum(1 for e, _ in ends if e == "restart") + sum(1 for c, _ in closes if c == 1012)
    last_frame = max([t for _, t in ends] + [t for _, t in closes], default=signalled) - signalled
    return (f"  {n:>4} streams + {sockets_n:>2} sockets{' + 1 reply in flight' if in_flight else ''}: "
            f"exited {exited:6.2f} s after SIGTERM (code {proc.returncode}); last frames by {last_frame:5.2f} s "
            f"({told}/{n + sockets_n} told to reconnect); new process ready in {ready_s:5.2f} s")


async def run(a: argparse.Namespace) -> None:
    common = load(CommonSettings)
    ingest = load(IngestSettings)
    assert ingest.jwt_secret is not None, "CONVMEM_JWT_SECRET is needed to sign the bench's tokens"
    prefix = f"bench-shutdown-{uuid.uuid4().hex[:8]}"
    await start_groups_at_end(common.kafka_bootstrap, consumer_groups(ROLES, prefix))
    state = Path(tempfile.mkdtemp(prefix="convmem-shutdown-"))
    async with model_server(0.2, a.token_interval) as llm:
        assert llm is not None
        env = {**os.environ, "CONVMEM_GROUP_PREFIX": prefix, "CONVMEM_LLM_BASE_URL": llm,
               "CONVMEM_LLM_MODEL": "fake-gpt", "CONVMEM_VECTOR_PATH": str(state / "vectors"),
               "CONVMEM_SWEEP_INTERVAL_S": "86400", "CONVMEM_OPS_PORT": "0", "CONVMEM_LOG_LEVEL": "INFO",
               "CONVMEM_SHUTDOWN_GRACE_S": str(a.grace), "CONVMEM_HTTP_MAX_CONNECTIONS": "2000"}
        print(f"SIGTERM with open streams (SHUTDOWN_GRACE_S={a.grace}; load: {os.getloadavg()[0]:.2f})", flush=True)
        for n in a.streams:
            print(await one(n, env, ingest.jwt_secret.get_secret_value(), state / "run.log", False), flush=True)
        if a.in_flight:
            print(await one(10, env, ingest.jwt_secret.get_secret_value(), state / "run.log", True), flush=True)
    print(f"logs: {state / 'run.log'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, nargs="+", default=[0, 10, 100])
    p.add_argument("--grace", type=float, default=20.0)
    p.add_argument("--token-interval", type=float, default=0.3)
    p.add_argument("--in-flight", action="store_true", help="also: 10 streams and a reply being written")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
