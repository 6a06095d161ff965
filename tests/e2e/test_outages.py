"""A Postgres outage under steady load, on the real stack (issue 20): clients post 10 messages
a second and retry every 503 with an Idempotency-Key (every tenth without any key, as most
HTTP clients retry) while Postgres goes away (every connection of the edge and the recorder
cut, through a proxy) and comes back. Nothing accepted is lost, nothing is recorded twice, and
no answer is a 5xx other than a JSON 503 (asyncpg's client-state errors during the outage were
plain-text 500s before).

The broker's side (a 503 whose message the producer still holds and sends later) is covered
by tests/unit/test_edge_outcomes.py and test_delivery.py here, and on the real stack by
bench/outage.py, which SIGKILLs the broker: pausing the suite's shared broker would stall the
in-process runtime every later test uses."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from composition.roles import consumer_groups
from composition.runtime import Runtime
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import IndexerSettings, IngestSettings, load
from tests.conftest import JWT_SECRET
from tests.outage_clients import SteadyClients, tally
from tests.services import Endpoints
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.stack


@contextlib.asynccontextmanager
async def edge_and_recorder(endpoints: Endpoints, database_url: str, vectors: Path) -> AsyncIterator[Runtime]:
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    await start_groups_at_end(endpoints.kafka_bootstrap, consumer_groups(["ingest", "indexer"], prefix))
    common: dict[str, Any] = {"kafka_bootstrap": endpoints.kafka_bootstrap, "database_url": database_url,
                              "group_prefix": prefix, "log_level": "WARNING", "retry_backoff_max_s": 1.0}
    rt = Runtime(["ingest", "indexer"], http_port=0,
                 ingest=load(IngestSettings, **common, jwt_secret=JWT_SECRET, vector_path=vectors),
                 indexer=load(IndexerSettings, **common, vector_path=vectors))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def test_postgres_gone_under_load_loses_nothing_doubles_nothing_and_answers_json(
        endpoints: Endpoints, tmp_path: Path) -> None:
    url = urlsplit(endpoints.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through = urlunsplit(url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{proxy.port}"))
    try:
        async with edge_and_recorder(endpoints, through, tmp_path / "vectors") as rt:
            clients = SteadyClients(f"http://127.0.0.1:{rt.port}", JWT_SECRET, keyless_every=10)

            async def outage() -> None:
                await asyncio.sleep(3)
                await proxy.stop()  # Postgres goes away: every pooled connection is cut
                await asyncio.sleep(10)
                await proxy.start()
                await asyncio.sleep(5)
                clients.stop_sending.set()

            await asyncio.gather(clients.run(rate=10, workers=50, give_up_after_s=120), outage())
            result = await tally(endpoints.database_url, clients)
    finally:
        await proxy.stop()
    summary = result.as_dict()
    assert result.bad_5xx == 0, summary
    assert result.accepted == result.sent, summary  # every retry ended in a 202
    assert result.lost == 0 and result.doubled == 0 and result.doubled_keyless == 0, summary
    assert result.answers.get("503 unavailable", 0) > 0, summary  # the outage was felt
