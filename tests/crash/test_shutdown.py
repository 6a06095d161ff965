"""SIGTERM with open event streams and sockets (what every Kubernetes rollout sends):
`convmem run all` as a real process ends its streams with a last frame telling clients to
reconnect (SSE: `event: restart`; sockets: close code 1012), lets in-flight work finish or
abandons it uncommitted, releases the embedded index and exits within SHUTDOWN_GRACE_S; a
new process on the same index starts at once and serves, and the reply that was being
written when the signal came arrives exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import eventually, token
from tests.crash.test_killed_worker import Worker
from tests.fake_llm import FakeLLM
from tests.services import Endpoints

pytestmark = pytest.mark.stack

GRACE_S = 10.0
STREAMS, SOCKETS = 8, 3


@pytest.fixture
async def writing_model() -> AsyncIterator[FakeLLM]:
    llm = FakeLLM(token_interval_s=0.3)  # a reply takes seconds to write: one is in flight at the signal
    await llm.start()
    yield llm
    await llm.stop()


async def sse_until_end(resp: httpx.Response) -> list[str]:
    """The event names a stream sends until the server ends it."""
    events = []
    async for line in resp.aiter_lines():
        if line.startswith("event: "):
            events.append(line[7:])
    return events


async def ws_close_code(ws: ClientConnection) -> int | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(GRACE_S):
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd is not None else None
    return None


async def test_sigterm_ends_open_streams_and_sockets_and_exits_within_the_grace_period(
        endpoints: Endpoints, writing_model: FakeLLM, tmp_path: Path) -> None:
    worker = Worker(endpoints, writing_model, tmp_path)
    worker.env.update({"CONVMEM_SHUTDOWN_GRACE_S": str(GRACE_S), "CONVMEM_LOG_LEVEL": "INFO"})
    user = f"sigterm-{uuid.uuid4().hex[:8]}"
    tickets: list[str] = []
    db = await asyncpg.connect(endpoints.database_url)
    try:
        await worker.start()
        base = f"http://127.0.0.1:{worker.port}"
        async with contextlib.AsyncExitStack() as stack:
            api = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=60)))
            convs = [str(uuid.uuid4()) for _ in range(STREAMS)]
            streams = []
            for conv in convs:
                issued = (await api.post("/v1/stream-tickets", json={"conversation_id": conv},
                                         headers=token(user))).json()
                tickets.append(issued["ticket"])
                resp = await stack.enter_async_context(api.stream("GET", issued["events"]))
                assert resp.status_code == 200
                streams.append(resp)
            sockets = []
            for _ in range(SOCKETS):
                issued = (await api.post("/v1/stream-tickets", json={"user_id": user}, headers=token(user))).json()
                tickets.append(issued["ticket"])
                ws = await stack.enter_async_context(connect(f"ws://127.0.0.1:{worker.port}{issued['socket']}"))
                assert orjson.loads(await ws.recv()) == {"type": "following"}
                sockets.append(ws)
            readers = [asyncio.create_task(sse_until_end(r)) for r in streams]
            closers = [asyncio.create_task(ws_close_code(ws)) for ws in sockets]
            # A reply being written when the signal comes.
            posted = await api.post("/v1/messages", headers=token(user), json={
                "user_id": user, "conversation_id": convs[0], "text": "Tell me a long story about trains please"})
            assert posted.status_code == 202
            message_id = posted.json()["message_id"]
            await eventually(lambda: writing_model.in_flight >= 1, timeout=30, interval=0.05)

            assert worker.proc is not None
            signalled = time.monotonic()
            worker.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(worker.proc.wait(), timeout=GRACE_S + 5)
            took = time.monotonic() - signalled
            assert worker.proc.returncode == 0, worker.log.read_text()[-3000:]
            assert took < GRACE_S, f"exited after {took:.1f} s"
            events = await asyncio.gather(*readers)
            assert all(e and e[-1] == "restart" for e in events), events
            assert await asyncio.gather(*closers) == [1012] * SOCKETS
            print(f"\nshutdown with {STREAMS} streams, {SOCKETS} sockets and a reply in flight: {took:.2f} s")

        restarted = time.monotonic()
        await worker.start()  # the same index folder: the old process released it
        print(f"a new process ready after {time.monotonic() - restarted:.2f} s")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.port}", timeout=60) as api:
            writing_model.token_interval_s = 0.0
            answered = await api.post("/v1/messages?wait=30", headers=token(user),
                                      json={"user_id": user, "text": "are you back?"})
            assert answered.status_code == 200, answered.text

            async def replied_once() -> bool:
                n = await db.fetchval("SELECT count(*) FROM messages WHERE in_reply_to = $1",
                                      uuid.UUID(message_id))
                return int(n) == 1

            await eventually(replied_once, timeout=60, interval=0.3)  # finished, or redone by the new process
    finally:
        await worker.stop()
        await db.close()
    log = worker.log.read_text()
    assert '"stopped"' in log or "stopped" in log
    assert not any(t in log for t in tickets)  # no ticket in any log line
