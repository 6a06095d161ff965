"""What the metrics count, without a broker: the delivery policy's outcomes per group, the
HTTP edge's route labels, the switch that turns recording off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import SecretStr

from contracts import topics
from convmem.delivery import DeliveryPolicy
from convmem.errors import PoisonError, RetryableError
from convmem.settings import IngestSettings
from convmem.telemetry import metrics
from services.ingest.auth import issue_token
from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from services.ingest.sink import EventSink
from tests.fakes import fake_storage
from tests.scrape import value
from tests.unit.test_delivery import RecordingBroker

SECRET = "unit-secret-0123456789-0123456789-abc"
GROUP = "convmem.unit-metrics"


def rec(offset: int, topic: str = topics.TURNS) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic=topic, partition=0, offset=offset, timestamp=0, timestamp_type=0, key=b"k",
                          value=b"{}", checksum=None, serialized_key_size=1, serialized_value_size=2, headers=())


def policy() -> DeliveryPolicy:
    p = DeliveryPolicy(max_attempts=2, backoff_base_s=0.001, backoff_max_s=0.001)
    p.broker = RecordingBroker()  # type: ignore[assignment]  # only publish is used
    return p


def events(outcome: str, group: str = GROUP) -> float:
    return value("convmem_events_total", group=group, topic=topics.TURNS, outcome=outcome)


@pytest.fixture
def recording() -> Iterator[None]:
    metrics.configure(True)
    yield
    metrics.configure(True)


async def test_the_policy_counts_each_outcome_per_group_and_times_each_attempt(recording: None) -> None:
    p = policy()
    before = {o: events(o) for o in metrics.EVENT_OUTCOMES}
    timed = value("convmem_event_seconds_count", group=GROUP)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryableError("postgres unavailable")

    await p.run(flaky, [rec(1), rec(2)], GROUP)  # a batch of two: retried once, then processed

    async def poison() -> None:
        raise PoisonError("not a turn")

    await p.run(poison, [rec(3)], GROUP)
    assert events("retried") - before["retried"] == 2
    assert events("processed") - before["processed"] == 2
    assert events("dead_lettered") - before["dead_lettered"] == 1
    assert value("convmem_event_seconds_count", group=GROUP) - timed == 3  # one observation per attempt
    assert GROUP in p.active_at  # liveness sees the group's last attempt


async def test_records_settled_alone_in_a_batch_are_not_counted_as_processed_too(recording: None) -> None:
    p = policy()
    group = GROUP + ".batch"
    batch = [rec(10), rec(11), rec(12), rec(13)]
    before = {o: events(o, group) for o in metrics.EVENT_OUTCOMES}

    async def handle() -> None:
        # As Subscriptions does inside a batch: one record is poison, one of an erased subject.
        await p.dead_letter(batch[1], "invalid TurnRecorded", group)
        p.settled(batch[2], group, "dropped")

    await p.run(handle, batch, group)
    assert {o: events(o, group) - before[o] for o in metrics.EVENT_OUTCOMES} == {
        "processed": 2, "retried": 0, "dead_lettered": 1, "dropped": 1}


async def test_with_metrics_off_nothing_is_recorded(recording: None) -> None:
    metrics.configure(False)
    p = policy()
    before = events("processed")

    async def ok() -> None:
        return None

    await p.run(ok, [rec(20)], GROUP)
    assert events("processed") == before


@pytest.fixture
async def edge() -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings.model_construct(
        jwt_secret=SecretStr(SECRET), whatsapp_app_secret=SecretStr("appsecret"),
        whatsapp_verify_token=SecretStr("verify-me"), whatsapp_tenants={}, max_body_bytes=4096)
    storage = fake_storage()

    async def nothing(_: object) -> None:
        return None

    async def ready() -> bool:
        return True

    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health,
                      sink=EventSink(nothing, nothing, ready))
    app = create_app(settings, lambda: ports)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def requests(route: str, method: str, status: int) -> float:
    return value("convmem_http_requests_total", route=route, method=method, status=str(status))


async def test_requests_are_labelled_by_route_template_never_by_path(edge: httpx.AsyncClient, recording: None) -> None:
    template = "/v1/conversations/{conversation_id}"
    auth = {"Authorization": f"Bearer {issue_token(SECRET, 'ana', 'default', ('user',))}"}
    before = {k: requests(*k) for k in [(template, "GET", 404), ("unmatched", "GET", 404),
                                         ("unmatched", "other", 404), ("/v1/messages", "POST", 413),
                                         ("/healthz", "GET", 200)]}
    for conv in ("0b7c6c1e-3f4e-4f55-9d3e-7a2b1c0d9e8f", "5d2f8a61-0c1b-4a7e-8e33-2f6a9b4c7d10"):
        assert (await edge.get(f"/v1/conversations/{conv}", headers=auth)).status_code == 404
    for path in ("/wp-login.php", "/v1/nothing/here"):
        assert (await edge.get(path)).status_code == 404
    assert (await edge.request("BREW", "/x")).status_code == 404
    # Refused by the body limit before any route ran: still counted under its route.
    r = await edge.post("/v1/messages", content=b"x" * 5000, headers=auth | {"content-type": "application/json"})
    assert r.status_code == 413
    assert (await edge.get("/healthz")).status_code == 200
    after = {k: requests(*k) - v for k, v in before.items()}
    assert after == {(template, "GET", 404): 2, ("unmatched", "GET", 404): 2, ("unmatched", "other", 404): 1,
                     ("/v1/messages", "POST", 413): 1, ("/healthz", "GET", 200): 1}
    assert value("convmem_http_request_seconds_count", route=template, method="GET") >= 2
    scraped = (await edge.get("/metrics")).text
    assert "0b7c6c1e" not in scraped and "wp-login" not in scraped  # no path ever becomes a label
    assert 'convmem_http_requests_total{method="GET",route="/v1/conversations/{conversation_id}"' in scraped
