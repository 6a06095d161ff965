from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from composition.roles import consumer_groups
from composition.runtime import ROLES, Runtime
from contracts import topics
from convmem.delivery.provisioning import start_groups_at_end
from convmem.settings import (
    IndexerSettings,
    IngestSettings,
    ResponderSettings,
    RetentionSettings,
    SenderSettings,
    load,
)
from services.ingest.auth import issue_token
from tests.fake_graph import FakeGraph
from tests.fake_llm import FakeLLM
from tests.services import Endpoints, resolve

# The suite's runtime consumes with groups of its own, new each session and started at the
# end of the topics: it answers what the tests send, not what earlier runs left behind.
GROUP_PREFIX = f"convmem-test-{uuid.uuid4().hex[:8]}"
JWT_SECRET = "test-jwt-secret-0123456789abcdef-0123456789"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """tests/crash runs first: its workers are processes of their own, and the suite's
    in-process runtime (started by the first test that asks for it, tests/browser's among
    them) would answer their turns too. Tests that load the shared pipeline (fuzzing, a
    500-message webhook) run last: the workers are busy with their messages for a while, and
    other tests wait for their own."""
    items.sort(key=lambda item: (item.path.parent.name != "crash", item.get_closest_marker("load") is not None))


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    ep = resolve()
    yield ep
    if ep.cleanup:
        ep.cleanup()


@pytest.fixture(scope="session")
async def fake_llm() -> AsyncIterator[FakeLLM]:
    llm = FakeLLM()
    await llm.start()
    yield llm
    await llm.stop()


@pytest.fixture(scope="session")
async def fake_graph() -> AsyncIterator[FakeGraph]:
    graph = FakeGraph(app_secret=APP_SECRET)
    await graph.start()
    yield graph
    await graph.stop()


@dataclass
class Tap:
    """Reads topics from the position they had when the session began: what the system
    published during the tests, nothing older."""

    records: list[ConsumerRecord] = field(default_factory=list)

    def on(self, topic: str) -> list[ConsumerRecord]:
        return [r for r in self.records if r.topic == topic]


@pytest.fixture(scope="session")
async def tap(endpoints: Endpoints) -> AsyncIterator[Tap]:
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    watched = [topics.INBOUND, topics.TURNS, topics.REPLIES, topics.TOKENS, topics.PRIVACY_EVENTS,
               *(topics.dead_letter_topic(t) for t in topics.CONSUMED_TOPICS)]
    from convmem.delivery.provisioning import ensure_topics

    await ensure_topics(endpoints.kafka_bootstrap)
    parts = [TopicPartition(t, p) for t in watched for p in (consumer.partitions_for_topic(t) or await _parts(consumer, t))]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    tap = Tap()

    async def pump() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for recs in batch.values():
                tap.records.extend(recs)

    task = asyncio.create_task(pump())
    yield tap
    task.cancel()
    await consumer.stop()


async def _parts(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or {0}


@pytest.fixture(scope="session")
async def runtime(endpoints: Endpoints, fake_llm: FakeLLM, fake_graph: FakeGraph, tap: Tap,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    common: dict[str, Any] = {"kafka_bootstrap": endpoints.kafka_bootstrap, "database_url": endpoints.database_url,
                              "group_prefix": GROUP_PREFIX, "retry_backoff_max_s": 1.0, "log_level": "WARNING"}
    await start_groups_at_end(endpoints.kafka_bootstrap, consumer_groups(ROLES, GROUP_PREFIX))
    vectors: Path = tmp_path_factory.mktemp("vectors")
    rt = Runtime(
        ROLES,
        ingest=load(IngestSettings, **common, jwt_secret=JWT_SECRET, whatsapp_app_secret=APP_SECRET,
                    whatsapp_verify_token=VERIFY_TOKEN, whatsapp_tenants={"555000111": "acme"}),
        indexer=load(IndexerSettings, **common, vector_path=vectors),
        responder=load(ResponderSettings, **common, vector_path=vectors, llm_base_url=fake_llm.base_url,
                       llm_model="fake-gpt"),
        # The timer sweep stays out of the way; tests call sweep_once when they mean to.
        retention=load(RetentionSettings, **common, vector_path=vectors, sweep_interval_s=86_400),
        sender=load(SenderSettings, **common, whatsapp_api_base_url=fake_graph.base_url,
                    whatsapp_access_token=fake_graph.token, whatsapp_timeout_s=5, sender_claim_lease_s=10),
        http_port=0,
    )
    await rt.start()
    fake_graph.webhook_url = f"http://127.0.0.1:{rt.port}/webhooks/whatsapp"  # statuses come back, as from Meta
    yield rt
    await rt.stop()


@pytest.fixture(scope="session")
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.port}", timeout=20) as client:
        yield client


@pytest.fixture(scope="session")
async def producer(endpoints: Endpoints) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


def token(user: str, tenant: str = "default", roles: tuple[str, ...] = ("user",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, user, tenant, roles)}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@overload
async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0,
                     interval: float = 0.1) -> T: ...
@overload
async def eventually(probe: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1) -> T: ...


async def eventually(probe: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """The probe's first truthy value (awaited when the probe is async), polling until `timeout`.
    (The first overload is matched first: an async probe yields what its coroutine returns.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
