"""The HTTP edge's error contract, on the real FastAPI app with fake ports."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from contracts import DeliveryStatusChanged, MessageReceived
from convmem.ports import Storage
from convmem.settings import IngestSettings
from services.ingest.auth import issue_token
from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from services.ingest.sink import EventSink
from tests.fakes import FakeHealth, fake_storage

SECRET = "unit-secret-0123456789-0123456789-abc"


class Sink:
    def __init__(self) -> None:
        self.inbound: list[MessageReceived] = []

    def sink(self) -> EventSink:
        async def inbound(events: Sequence[MessageReceived]) -> None:
            self.inbound.extend(events)

        async def statuses(events: Sequence[DeliveryStatusChanged]) -> None:
            return None

        async def ready() -> bool:
            return True

        return EventSink(inbound, statuses, ready)


Client = tuple[httpx.AsyncClient, Storage, Sink]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    settings = IngestSettings.model_construct(
        jwt_secret=SecretStr(SECRET), whatsapp_app_secret=SecretStr("appsecret"),
        whatsapp_verify_token=SecretStr("verify-me"), whatsapp_tenants={}, max_body_bytes=4096)
    storage, sink = fake_storage(), Sink()
    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health, sink=sink.sink())
    app = create_app(settings, lambda: ports)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, storage, sink


def auth(user: str, roles: tuple[str, ...] = ("user",), tenant: str = "default") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, user, tenant, roles)}"}


async def test_bad_input_gets_a_precise_4xx(client: Client) -> None:
    c, _, _ = client
    r = await c.post("/v1/messages", json={"user_id": "ana"}, headers=auth("ana"))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "text"
    r = await c.post("/v1/messages", content=b"{nope", headers=auth("ana") | {"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "x", "occurred_at": "2026-01-01T00:00:00"},
                     headers=auth("ana"))
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "occurred_at"
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "x" * 5000}, headers=auth("ana"))
    assert r.status_code == 413


async def test_auth_rules(client: Client) -> None:
    c, _, sink = client
    assert (await c.post("/v1/messages", json={"user_id": "ana", "text": "x"})).status_code == 401
    bad = {"Authorization": "Bearer " + issue_token("wrong-secret-0123456789-0123456789-abc", "ana")}
    assert (await c.post("/v1/messages", json={"user_id": "ana", "text": "x"}, headers=bad)).json()["error"] == "invalid_token"
    r = await c.post("/v1/messages", json={"user_id": "ben", "text": "x"}, headers=auth("ana"))
    assert r.status_code == 403
    r = await c.post("/v1/messages", json={"user_id": "ben", "text": "x"}, headers=auth("bot", ("service",), "acme"))
    assert r.status_code == 202 and sink.inbound[-1].tenant_id == "acme" and sink.inbound[-1].user_id == "ben"


async def test_another_users_conversation_is_404(client: Client) -> None:
    c, storage, _ = client
    conv = uuid.uuid4()
    await storage.turns.record_turn(MessageReceived(tenant_id="default", user_id="ana", conversation_id=conv,
                                            message_id=uuid.uuid4(), text="hi", occurred_at=datetime.now(UTC)))
    assert (await c.get(f"/v1/conversations/{conv}/messages", headers=auth("ana"))).status_code == 200
    r = await c.get(f"/v1/conversations/{conv}/messages", headers=auth("ben"))
    assert r.status_code == 404 and r.json()["error"] == "conversation_not_found"
    r = await c.post("/v1/messages", json={"user_id": "ben", "text": "x", "conversation_id": str(conv)}, headers=auth("ben"))
    assert r.status_code == 404


async def test_external_id_is_idempotent_at_the_edge(client: Client) -> None:
    c, _, sink = client
    body = {"user_id": "ana", "text": "hi", "external_id": "ext-1"}
    a = (await c.post("/v1/messages", json=body, headers=auth("ana"))).json()
    b = (await c.post("/v1/messages", json=body, headers=auth("ana"))).json()
    assert (a["message_id"], a["conversation_id"]) == (b["message_id"], b["conversation_id"])


async def test_whatsapp_verification_handshake(client: Client) -> None:
    c, _, _ = client
    ok = await c.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "verify-me",
                                                   "hub.challenge": "12345"})
    assert ok.status_code == 200 and ok.text == "12345"
    bad = await c.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                                    "hub.challenge": "12345"})
    assert bad.status_code == 403


async def test_validation_comes_before_authentication(client: Client) -> None:
    c, _, _ = client
    r = await c.post("/v1/messages", json={"user_id": "ana"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert (await c.get("/v1/conversations", params={"limit": 0})).status_code == 422
    r = await c.get("/v1/conversations")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = await c.get("/v1/conversations", params={"user_id": "ben"}, headers=auth("ana"))
    assert r.status_code == 403 and "www-authenticate" not in r.headers


async def test_another_tenants_conversation_is_refused_at_the_edge(client: Client) -> None:
    c, storage, sink = client
    conv = uuid.uuid4()
    await storage.turns.record_turn(MessageReceived(tenant_id="acme", user_id="ana", conversation_id=conv,
                                                    message_id=uuid.uuid4(), text="hi", occurred_at=datetime.now(UTC)))
    r = await c.post("/v1/messages", json={"user_id": "ana", "text": "x", "conversation_id": str(conv)},
                     headers=auth("ana"))
    assert r.status_code == 404 and r.json()["error"] == "conversation_not_found" and not sink.inbound
    assert (await c.get(f"/v1/conversations/{conv}", headers=auth("boss", ("admin",)))).status_code == 404
    assert (await c.get(f"/v1/conversations/{conv}", headers=auth("ana", tenant="acme"))).status_code == 200


async def test_ops_and_unconfigured_features(client: Client) -> None:
    c, storage, _ = client
    assert (await c.get("/healthz")).json() == {"status": "ok"}
    assert (await c.get("/readyz")).json() == {"status": "ready", "checks": {"kafka": True, "postgres": True}}
    health = storage.health
    assert isinstance(health, FakeHealth)
    health.down = True
    r = await c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"] == {"kafka": True, "postgres": False}
    r = await c.get("/v1/search", params={"q": "x"}, headers=auth("ana"))
    assert r.status_code == 503 and r.json()["message"] == "search is not configured on this node"
    r = await c.delete("/v1/users/ana", headers=auth("ana"))
    assert r.status_code == 503 and r.json()["message"] == "erasure is not configured on this node"
    assert (await c.get("/nowhere")).json()["error"] == "not_found"


async def test_a_webhook_not_wholly_in_the_log_is_answered_so_that_meta_delivers_it_again() -> None:
    settings = IngestSettings.model_construct(
        jwt_secret=SecretStr(SECRET), whatsapp_app_secret=SecretStr("appsecret"),
        whatsapp_verify_token=SecretStr("verify-me"), whatsapp_tenants={}, max_body_bytes=65536)
    storage, sink = fake_storage(), Sink().sink()

    async def broker_gone(events: Sequence[MessageReceived]) -> None:
        raise ConnectionError("no acknowledgement")

    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health,
                      sink=EventSink(broker_gone, sink.publish_statuses, sink.kafka_ready))
    raw = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
        "metadata": {"phone_number_id": "PN"}, "messages": [
            {"from": "351", "id": f"wamid.{i}", "timestamp": "1763900000", "type": "text", "text": {"body": "hi"}}
            for i in range(3)]}}]}]}).encode()
    signature = "sha256=" + hmac.new(b"appsecret", raw, hashlib.sha256).hexdigest()
    app = create_app(settings, lambda: ports)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/webhooks/whatsapp", content=raw, headers={"X-Hub-Signature-256": signature})
    assert r.status_code == 503 and r.headers["retry-after"] == "2"  # Meta retries; the wamids dedupe
