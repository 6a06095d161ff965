"""One client cannot take the edge down (issue 20): the edge served as in production (uvicorn
with composition.runtime's config) over fake ports, on a real socket. 1,000 idle connections
and a slow-header client from one address, while health checks and another client are
answered; idle and slow connections are closed within the header deadline."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from composition.runtime import http_config
from contracts import DeliveryStatusChanged, MessageReceived
from convmem.settings import IngestSettings
from services.ingest.auth import issue_token
from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from services.ingest.http.connections import ConnectionGuard
from services.ingest.sink import EventSink
from tests.fakes import fake_storage

SECRET = "unit-secret-0123456789-0123456789-abc"
ATTACKER, PROBE, OTHER = "127.0.0.2", "127.0.0.1", "127.0.0.3"  # Linux routes all of 127/8 to loopback
HEADER_TIMEOUT_S = 1.5
PER_ADDRESS = 100


@dataclass
class Served:
    port: int
    guard: ConnectionGuard
    published: list[MessageReceived]


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed if hard == resource.RLIM_INFINITY else min(needed, hard),
                                                    hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        pytest.skip(f"needs {needed} open files; the hard limit is {hard}")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    raise_open_file_limit(4096)  # 1,000 client sockets and 1,000 server sockets in this process
    settings = IngestSettings.model_construct(
        jwt_secret=SecretStr(SECRET), whatsapp_app_secret=SecretStr("appsecret"),
        whatsapp_verify_token=SecretStr("verify-me"), whatsapp_tenants={}, http_host="127.0.0.1",
        forwarded_allow_ips="127.0.0.1", http_max_connections=1000, http_max_connections_per_address=PER_ADDRESS,
        http_header_timeout_s=HEADER_TIMEOUT_S, max_body_bytes=65536, body_timeout_s=30.0)
    storage, published = fake_storage(), list[MessageReceived]()

    async def inbound(events: Sequence[MessageReceived]) -> None:
        published.extend(events)

    async def statuses(events: Sequence[DeliveryStatusChanged]) -> None:
        return None

    async def ready() -> bool:
        return True

    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health,
                      sink=EventSink(inbound, statuses, ready))
    config = http_config(create_app(settings, lambda: ports), settings, 0)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    guard = config.http.guard  # type: ignore[union-attr]
    assert isinstance(guard, ConnectionGuard)
    try:
        yield Served(int(server.servers[0].sockets[0].getsockname()[1]), guard, published)
    finally:
        server.should_exit = True
        await serving


async def idle_connection(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


def client(port: int, source: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5,
                             transport=httpx.AsyncHTTPTransport(local_address=source))


async def closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bytes:
    """What the server sent before closing (b"" for a silent close); fails if it stays open."""
    return await asyncio.wait_for(reader.read(), within_s)


async def test_a_thousand_idle_connections_from_one_address_leave_everyone_else_answered(served: Served) -> None:
    opened = [await idle_connection(served.port, ATTACKER) for _ in range(1000)]
    await asyncio.sleep(0.2)  # the server has accepted them all
    assert served.guard.open_connections(ATTACKER) <= PER_ADDRESS
    assert served.guard.evicted >= 1000 - PER_ADDRESS
    async with client(served.port, PROBE) as probe, client(served.port, OTHER) as other:
        for _ in range(5):
            health = await probe.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
        token = issue_token(SECRET, "ana", "default", ("user",))
        posted = await other.post("/v1/messages", json={"user_id": "ana", "text": "still here?"},
                                  headers={"Authorization": f"Bearer {token}"})
        assert posted.status_code == 202, posted.text
    assert [e.text for e in served.published] == ["still here?"]
    # The ones still open are closed once the header deadline passes, without a word.
    started = time.monotonic()
    survivors = opened[-PER_ADDRESS:]
    for reader, _ in survivors:
        assert await closed_by_server(reader, HEADER_TIMEOUT_S + 3) == b""
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3
    assert served.guard.open_connections(ATTACKER) == 0
    for _, writer in opened:
        writer.close()


async def test_a_slow_header_client_is_cut_off_at_the_deadline_with_a_408(served: Served) -> None:
    reader, writer = await idle_connection(served.port, ATTACKER)
    started = time.monotonic()

    async def trickle() -> None:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.3)

    trickling = asyncio.create_task(trickle())
    answer = await closed_by_server(reader, HEADER_TIMEOUT_S + 3)
    took = time.monotonic() - started
    trickling.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await trickling
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"header_timeout"' in answer
    assert HEADER_TIMEOUT_S - 0.2 < took < HEADER_TIMEOUT_S + 1.5
    writer.close()


async def test_keep_alive_requests_go_on_and_a_slow_next_head_is_cut_off_too(served: Served) -> None:
    async with client(served.port, OTHER) as c:
        for _ in range(3):  # one connection, one request after another, each well within the deadline
            assert (await c.get("/healthz")).status_code == 200
            await asyncio.sleep(0.6)
    reader, writer = await idle_connection(served.port, OTHER)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n")
    first = await reader.readuntil(b'"ok"}')
    assert first.startswith(b"HTTP/1.1 200 ")
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next head, never finished
    assert (await closed_by_server(reader, HEADER_TIMEOUT_S + 3)).startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_a_busy_connection_is_never_pushed_out_and_the_bound_then_refuses(served: Served) -> None:
    # PER_ADDRESS connections each in the middle of a request (a body that has not all come yet).
    busy = [await idle_connection(served.port, ATTACKER) for _ in range(PER_ADDRESS)]
    for _, writer in busy:
        writer.write(b"POST /v1/messages HTTP/1.1\r\nHost: edge\r\nContent-Length: 100\r\n"
                     b"Content-Type: application/json\r\n\r\n{")
    await asyncio.sleep(0.3)
    assert served.guard.open_connections(ATTACKER) == PER_ADDRESS
    reader, writer = await idle_connection(served.port, ATTACKER)
    assert await closed_by_server(reader, 2) == b""  # refused: nobody idle to make room
    assert served.guard.refused >= 1
    await asyncio.sleep(HEADER_TIMEOUT_S + 0.5)  # the deadline covers heads only: bodies have their own timeout
    assert served.guard.open_connections(ATTACKER) == PER_ADDRESS
    async with client(served.port, PROBE) as probe:
        assert (await probe.get("/healthz")).status_code == 200
    for _, w in [*busy, (reader, writer)]:
        w.close()
