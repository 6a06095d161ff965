"""Outages under steady load, on the real stack (issue 20): clients post 10 messages a second
and retry every 503 with an Idempotency-Key (every tenth without any key, as most HTTP clients
retry) while Postgres goes away (every connection cut, through a proxy) and then the Kafka
broker stops answering for longer than the edge waits for an acknowledgement (SIGSTOP: the
producer keeps the records in its buffer and sends them when the broker answers again, the
case of the 131 messages published after their 503). The edge waits 3 s here, not 15, so the
broker's pause stays under the consumer groups' 10 s session timeout: the suite's other
consumers keep their members and the tests after this one are not held up by rebalances. Nothing accepted is lost, nothing is
recorded twice, and no answer is a 5xx other than a JSON 503. bench/outage.py does the same
with a Postgres shutdown and a broker killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from composition.roles import consumer_groups
from composition.runtime import Runtime
from convmem.delivery.provisioning import start_groups_at_end
from convmem.home import state_dir
from convmem.settings import IndexerSettings, IngestSettings, load
from tests.conftest import JWT_SECRET
from tests.outage_clients import SteadyClients, tally
from tests.services import Endpoints
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.stack

PUBLISH_TIMEOUT_S = 3.0
KAFKA_STOPPED_S = 7.0  # longer than the edge's wait for an acknowledgement, shorter than a session timeout


def local_broker(bootstrap: str) -> int | None:
    """The pid of the stack's own broker, when the tests run against it (not an external one)."""
    pid_file = state_dir() / "kafka" / "kafka.pid"
    port = os.environ.get("CONVMEM_STACK_KAFKA_PORT", "9092")
    if not pid_file.exists() or not bootstrap.endswith(f":{port}"):
        return None
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


@contextlib.asynccontextmanager
async def edge_and_recorder(endpoints: Endpoints, database_url: str, vectors: Path) -> AsyncIterator[Runtime]:
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    await start_groups_at_end(endpoints.kafka_bootstrap, consumer_groups(["ingest", "indexer"], prefix))
    common: dict[str, Any] = {"kafka_bootstrap": endpoints.kafka_bootstrap, "database_url": database_url,
                              "group_prefix": prefix, "log_level": "WARNING", "retry_backoff_max_s": 1.0}
    rt = Runtime(["ingest", "indexer"], http_port=0,
                 ingest=load(IngestSettings, **common, jwt_secret=JWT_SECRET, vector_path=vectors,
                             publish_timeout_s=PUBLISH_TIMEOUT_S),
                 indexer=load(IndexerSettings, **common, vector_path=vectors))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def test_postgres_gone_and_a_silent_broker_lose_nothing_double_nothing_and_answer_json(
        endpoints: Endpoints, tmp_path: Path) -> None:
    url = urlsplit(endpoints.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through = urlunsplit(url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{proxy.port}"))
    broker = local_broker(endpoints.kafka_bootstrap)
    try:
        async with edge_and_recorder(endpoints, through, tmp_path / "vectors") as rt:
            clients = SteadyClients(f"http://127.0.0.1:{rt.port}", JWT_SECRET, keyless_every=10)

            async def outages() -> None:
                await asyncio.sleep(3)
                await proxy.stop()  # Postgres goes away: every pooled connection is cut
                await asyncio.sleep(8)
                await proxy.start()
                await asyncio.sleep(4)
                if broker is not None:
                    os.kill(broker, signal.SIGSTOP)
                    try:
                        await asyncio.sleep(KAFKA_STOPPED_S)
                    finally:
                        os.kill(broker, signal.SIGCONT)
                await asyncio.sleep(6)
                clients.stop_sending.set()

            await asyncio.gather(clients.run(rate=10, workers=50, give_up_after_s=120), outages())
            result = await tally(endpoints.database_url, clients)
    finally:
        await proxy.stop()
    summary = result.as_dict()
    assert result.bad_5xx == 0, summary
    assert result.accepted == result.sent, summary  # every retry ended in a 202
    assert result.lost == 0 and result.doubled == 0, summary
    assert result.doubled_keyless == 0, summary  # the edge recognised the keyless retries too
    assert result.answers.get("503 unavailable", 0) > 0, summary  # the outage was felt
    if broker is not None:
        assert result.answers.get("503 outcome_unknown", 0) > 0, summary
        assert result.outcome_unknown_ids_kept, summary
