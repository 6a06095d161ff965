"""What a client learns when a backing service fails under its request: always JSON, a 503 it
may retry, and, when the event log took a message without confirming it, the ids the message
has if it is recorded, which a retry with the same Idempotency-Key lands on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from contracts import DeliveryStatusChanged, MessageReceived, identity
from convmem.errors import PublishUnconfirmed
from convmem.ports import Storage
from convmem.settings import IngestSettings
from services.ingest.auth import issue_token
from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from services.ingest.http.failures import backing_service_failure
from services.ingest.sink import EventSink
from tests.fakes import fake_storage

SECRET = "unit-secret-0123456789-0123456789-abc"
HEADERS = {"Authorization": f"Bearer {issue_token(SECRET, 'ana', 'default', ('user',))}"}


class Log:
    """The event log as the edge sees it: takes events, or fails the way it is told to."""

    def __init__(self) -> None:
        self.published: list[MessageReceived] = []
        self.failure: Exception | None = None

    def sink(self) -> EventSink:
        async def inbound(events: Sequence[MessageReceived]) -> None:
            if self.failure is not None:
                raise self.failure
            self.published.extend(events)

        async def statuses(events: Sequence[DeliveryStatusChanged]) -> None:
            return None

        async def ready() -> bool:
            return True

        return EventSink(inbound, statuses, ready)


Edge = tuple[httpx.AsyncClient, Storage, Log]


@pytest.fixture
async def edge() -> AsyncIterator[Edge]:
    settings = IngestSettings.model_construct(
        jwt_secret=SecretStr(SECRET), whatsapp_app_secret=SecretStr("appsecret"),
        whatsapp_verify_token=SecretStr("verify-me"), whatsapp_tenants={}, max_body_bytes=4096)
    storage, log = fake_storage(), Log()
    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health, sink=log.sink())
    app = create_app(settings, lambda: ports)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, storage, log


async def post(c: httpx.AsyncClient, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return await c.post("/v1/messages", json={"user_id": "ana", **body},
                        headers=HEADERS | ({"Idempotency-Key": key} if key is not None else {}))


async def test_the_idempotency_key_header_is_the_external_id(edge: Edge) -> None:
    c, _, log = edge
    by_body = (await post(c, {"text": "hi", "external_id": "order-7"})).json()
    for key in ('"order-7"', "order-7"):  # the draft's quoted sf-string, and the bare token clients send
        by_header = (await post(c, {"text": "hi"}, key)).json()
        assert (by_header["message_id"], by_header["conversation_id"]) == (by_body["message_id"],
                                                                           by_body["conversation_id"])
    assert by_body["message_id"] == str(identity.message_id_for_external("default", "ana", "order-7"))
    assert {e.external_id for e in log.published} == {"order-7"}
    both = await post(c, {"text": "hi", "external_id": "order-7"}, '"order-7"')
    assert both.status_code == 202
    escaped = (await post(c, {"text": "hi"}, r'"say \"hi\""')).json()
    assert escaped["message_id"] == str(identity.message_id_for_external("default", "ana", 'say "hi"'))


@pytest.mark.parametrize("key", ['""', '"a\x00b"', "x" * 257])
async def test_a_key_that_could_not_be_stored_is_422(edge: Edge, key: str) -> None:
    c, _, log = edge
    r = await post(c, {"text": "hi"}, key)
    assert r.status_code == 422 and r.json()["fields"][0]["field"].endswith("Idempotency-Key"), r.text
    assert log.published == []


async def test_a_key_that_contradicts_external_id_is_409(edge: Edge) -> None:
    c, _, log = edge
    r = await post(c, {"text": "hi", "external_id": "order-7"}, "order-8")
    assert r.status_code == 409 and r.json()["fields"][0]["field"] == "Idempotency-Key", r.text
    assert log.published == []


async def test_a_message_the_log_did_not_confirm_is_503_with_its_ids_and_its_retry_lands_on_them(edge: Edge) -> None:
    c, _, log = edge
    log.failure = PublishUnconfirmed("1 of 1 events not acknowledged within 15 s")
    r = await post(c, {"text": "are you there?"}, "k-1")
    assert r.status_code == 503 and r.headers["retry-after"] == "2"
    body = r.json()
    assert (body["error"], body["outcome"]) == ("outcome_unknown", "unknown")
    assert body["message_id"] == str(identity.message_id_for_external("default", "ana", "k-1"))
    log.failure = None
    retry = await post(c, {"text": "are you there?"}, "k-1")
    assert retry.status_code == 202
    assert (retry.json()["message_id"], retry.json()["conversation_id"]) == (body["message_id"],
                                                                             body["conversation_id"])


async def test_nothing_published_is_a_plain_503(edge: Edge) -> None:
    c, _, log = edge
    log.failure = ConnectionError("no broker")
    r = await post(c, {"text": "hi"}, "k-2")
    assert r.status_code == 503 and r.json()["error"] == "unavailable" and "message_id" not in r.json()


async def test_any_backing_service_failure_is_a_json_503_and_a_bug_a_json_500(
        edge: Edge, monkeypatch: pytest.MonkeyPatch) -> None:
    c, storage, _ = edge

    async def broken(*_: object) -> None:
        raise asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress")

    monkeypatch.setattr(storage.lookup, "message_ref", broken)
    r = await post(c, {"text": "hi", "external_id": "e-1"})
    assert r.status_code == 503 and r.json()["error"] == "unavailable" and r.headers["retry-after"] == "2"
    assert r.headers["x-content-type-options"] == "nosniff"  # the other middlewares saw the answer

    async def bug(*_: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(storage.lookup, "message_ref", bug)
    r = await post(c, {"text": "hi", "external_id": "e-2"})
    assert r.status_code == 500 and r.json()["error"] == "internal_error"


def test_what_counts_as_a_backing_service_failure() -> None:
    assert backing_service_failure(asyncpg.InternalClientError("state"))
    assert backing_service_failure(ConnectionResetError())
    try:
        try:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("gone")
        except Exception as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert backing_service_failure(wrapped)
    assert not backing_service_failure(KeyError("a bug"))
    assert not backing_service_failure(ValueError(str(uuid.uuid4())))


async def test_a_keyless_retry_of_a_message_of_unknown_outcome_lands_on_its_ids(edge: Edge) -> None:
    c, _, log = edge
    log.failure = PublishUnconfirmed("1 of 1 events not acknowledged within 15 s")
    first = (await post(c, {"text": "no key here"})).json()
    assert first["error"] == "outcome_unknown"
    again = (await post(c, {"text": "no key here"})).json()  # still down: the same ids again
    assert (again["message_id"], again["conversation_id"]) == (first["message_id"], first["conversation_id"])
    log.failure = ConnectionError("no broker")
    nothing = await post(c, {"text": "no key here"})  # nothing published this time; the first may still go out
    assert nothing.json()["error"] == "unavailable"
    log.failure = None
    retry = await post(c, {"text": "no key here"})  # the blind retry most HTTP clients do on a 503
    assert retry.status_code == 202
    assert (retry.json()["message_id"], retry.json()["conversation_id"]) == (first["message_id"],
                                                                             first["conversation_id"])
    later = await post(c, {"text": "no key here"})  # accepted once: the same words again are a new message
    assert later.json()["message_id"] != first["message_id"]
    other = await post(c, {"text": "something else"})
    assert other.json()["message_id"] not in (first["message_id"], later.json()["message_id"])
    assert [e.message_id for e in log.published].count(uuid.UUID(first["message_id"])) == 1


def test_remembered_messages_are_bounded_in_number_and_age() -> None:
    from services.ingest.unconfirmed import Unconfirmed

    memory = Unconfirmed(max_entries=3, ttl_s=60)
    ids = [(uuid.uuid4(), uuid.uuid4()) for _ in range(4)]
    for i, (m, conv) in enumerate(ids):
        memory.remember(bytes([i]), m, conv)
    assert len(memory) == 3 and memory.recall(bytes([0])) is None and memory.recall(bytes([3])) == ids[3]
    stale = Unconfirmed(ttl_s=0)
    stale.remember(b"k", *ids[0])
    assert stale.recall(b"k") is None and len(stale) == 0
