"""Metrics and probes of every role on the real stack: the process that runs ingest answers
them on its HTTP port, worker-only processes on their ops listener (CONVMEM_OPS_PORT, 0 here
for a free port). The counters move with traffic sent through the HTTP edge; readiness turns
503 when Postgres goes away and back to 200 when it returns."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from composition.roles import consumer_groups
from composition.runtime import Runtime
from contracts import topics
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import IndexerSettings, ResponderSettings, RetentionSettings, SenderSettings, load
from tests.conftest import GROUP_PREFIX, eventually, token, unique
from tests.fake_graph import FakeGraph
from tests.scrape import samples, total
from tests.services import Endpoints
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.stack

SETTINGS: dict[str, Any] = {"indexer": IndexerSettings, "responder": ResponderSettings,
                            "retention": RetentionSettings, "sender": SenderSettings}


@contextlib.asynccontextmanager
async def worker(endpoints: Endpoints, roles: Sequence[str], vectors: Path, graph: FakeGraph,
                 database_url: str | None = None) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A worker-only process's roles in this process, consuming with groups of their own from
    the end of the topics; yields a client of its ops listener and its group prefix."""
    prefix = f"opsm-{uuid.uuid4().hex[:8]}"
    common: dict[str, Any] = {"kafka_bootstrap": endpoints.kafka_bootstrap,
                              "database_url": database_url or endpoints.database_url, "group_prefix": prefix,
                              "log_level": "WARNING", "ops_port": 0, "retry_backoff_max_s": 1.0}
    own: dict[str, dict[str, Any]] = {
        "indexer": {"vector_path": vectors}, "responder": {"vector_path": vectors},
        "retention": {"vector_path": vectors, "sweep_interval_s": 86_400},
        "sender": {"whatsapp_api_base_url": graph.base_url, "whatsapp_access_token": graph.token}}
    await start_groups_at_end(endpoints.kafka_bootstrap, consumer_groups(roles, prefix))
    rt = Runtime(roles, **{r: load(SETTINGS[r], **common, **own[r]) for r in roles})
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.probe_port}", timeout=20) as client:
            yield client, prefix
    finally:
        await rt.stop()


async def scrape(client: httpx.AsyncClient) -> str:
    resp = await client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return resp.text


def processed(text: str, group: str) -> float:
    return total(text, "convmem_events_total", group=group, outcome="processed")


@pytest.mark.parametrize("role", ["indexer", "responder", "retention", "sender"])
async def test_a_worker_only_process_serves_metrics_and_probes_on_its_ops_port(
        endpoints: Endpoints, fake_graph: FakeGraph, tmp_path: Path, role: str) -> None:
    async with worker(endpoints, [role], tmp_path, fake_graph) as (ops, prefix):
        assert (await ops.get("/healthz")).json() == {"status": "ok"}
        ready = await ops.get("/readyz")
        uses_vectors = role != "sender"
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"kafka": True, "postgres": True} | (
            {"vector_index": True} if uses_vectors else {})
        text = await scrape(ops)
        for group, topic in consumer_groups([role], prefix):  # lag of every group it consumes, per partition
            assert len(samples(text, "convmem_consumer_lag", group=group, topic=topic)) >= 1, group
        assert total(text, "convmem_ready", check="postgres") == 1


async def test_counters_move_with_traffic_on_the_ingest_port_and_on_a_worker(
        api: httpx.AsyncClient, runtime: Runtime, endpoints: Endpoints, fake_graph: FakeGraph,
        tmp_path: Path) -> None:
    assert runtime.probe_port == runtime.port  # `run all` answers them beside the API
    # A second indexer would record the same messages as the suite's (two groups racing on one
    # row); the retention role's PII scrubber reads the same turns and only reads them.
    async with worker(endpoints, ["retention"], tmp_path, fake_graph) as (ops, prefix):
        edge_before, worker_before = await scrape(api), await scrape(ops)
        user = unique("u")
        resp = await api.post("/v1/messages", json={"user_id": user, "text": "I moved to Porto in May"},
                              headers=token(user))
        assert resp.status_code == 202

        def moved(before: str, after: str, name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        async def everything_counted() -> tuple[str, str] | None:
            edge, work = await scrape(api), await scrape(ops)
            wanted = [
                moved(edge_before, edge, "convmem_events_total", group=f"{GROUP_PREFIX}.indexer.record-inbound",
                      outcome="processed"),
                moved(edge_before, edge, "convmem_events_total", group=f"{GROUP_PREFIX}.responder",
                      outcome="processed"),
                moved(edge_before, edge, "convmem_events_total", group=f"{GROUP_PREFIX}.indexer.embed",
                      outcome="processed"),
                moved(edge_before, edge, "convmem_model_calls_total", operation="stream", outcome="ok"),
                moved(edge_before, edge, "convmem_model_calls_total", operation="title", outcome="ok"),
                # the worker-only process, on its own listener, saw the recorded turns
                moved(worker_before, work, "convmem_events_total", group=f"{prefix}.retention.pii",
                      outcome="processed"),
            ]
            return (edge, work) if all(n >= 1 for n in wanted) else None

        edge, work = await eventually(everything_counted, timeout=60, interval=0.5)
    assert moved(edge_before, edge, "convmem_http_requests_total", route="/v1/messages", method="POST",
                 status="202") == 1
    assert moved(edge_before, edge, "convmem_model_tokens_total", kind="prompt") > 0
    assert total(edge, "convmem_event_seconds_count", group=f"{GROUP_PREFIX}.responder") >= 1
    lag = samples(edge, "convmem_consumer_lag", group=f"{GROUP_PREFIX}.responder", topic=topics.TURNS)
    assert len(lag) >= 1 and all(v >= 0 for _, v in lag)
    assert total(edge, "convmem_vector_index_points") >= 1
    for name in ("convmem_ready", "convmem_log_lines_suppressed_total", "process_cpu_seconds_total"):
        assert f"# TYPE {name} " in edge, name
    # No user, tenant or conversation id in any label.
    assert user not in edge and resp.json()["conversation_id"] not in edge and user not in work
    ready = await api.get("/readyz")
    assert ready.json() == {"status": "ready", "checks": {"kafka": True, "postgres": True, "vector_index": True}}


async def test_a_poison_record_is_counted_as_dead_lettered_for_its_group(
        api: httpx.AsyncClient, runtime: Runtime, producer: AIOKafkaProducer) -> None:
    group = f"{GROUP_PREFIX}.indexer.record-inbound"
    before = total(await scrape(api), "convmem_events_total", group=group, outcome="dead_lettered")
    await producer.send_and_wait(topics.INBOUND, b"\xff not an event", key=unique("poison").encode())

    async def counted() -> bool:
        now = total(await scrape(api), "convmem_events_total", group=group, outcome="dead_lettered")
        return now - before == 1

    await eventually(counted, timeout=30, interval=0.3)


async def test_readiness_is_503_while_postgres_is_unreachable_and_200_when_it_returns(
        endpoints: Endpoints, fake_graph: FakeGraph, tmp_path: Path) -> None:
    url = urlsplit(endpoints.database_url)
    proxy = TcpProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    through = urlunsplit(url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{proxy.port}"))
    try:
        async with worker(endpoints, ["sender"], tmp_path, fake_graph, database_url=through) as (ops, _):
            assert (await ops.get("/readyz")).status_code == 200
            await proxy.stop()  # Postgres goes away: every pooled connection is cut
            down = await ops.get("/readyz")
            assert down.status_code == 503
            assert down.json() == {"status": "unavailable", "checks": {"kafka": True, "postgres": False}}
            assert total(await scrape(ops), "convmem_ready", check="postgres") == 0
            assert (await ops.get("/healthz")).status_code == 200  # not a reason to restart the process
            await proxy.start()  # same port: the outage ends

            async def ready_again() -> bool:
                return (await ops.get("/readyz")).status_code == 200

            await eventually(ready_again, timeout=30, interval=0.5)
            assert total(await scrape(ops), "convmem_ready", check="postgres") == 1
    finally:
        await proxy.stop()
