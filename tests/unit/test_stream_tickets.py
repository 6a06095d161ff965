"""Stream tickets and CORS for browsers, on the real FastAPI app with fake ports: who gets a
ticket for which stream, that it opens that stream once, and that a browser on an allowed
origin may resume a stream (Last-Event-ID) and post with an Idempotency-Key."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from tests.fakes import fake_storage
from tests.unit.test_edge_guards import bearer, client_settings
from tests.unit.test_http_edge import Sink

ORIGIN = "https://chat.example.com"


@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    storage = fake_storage()
    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health,
                      sink=Sink().sink(), tickets=storage.tickets)
    app = create_app(client_settings(stream_ticket_ttl_s=15.0, cors_allow_origins=[ORIGIN]), lambda: ports)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def ticket(c: httpx.AsyncClient, body: dict[str, Any], user: str = "ana") -> httpx.Response:
    return await c.post("/v1/stream-tickets", json=body, headers=bearer(user))


async def test_a_ticket_is_for_one_stream_the_bearer_may_open(c: httpx.AsyncClient) -> None:
    conv = uuid.uuid4()
    r = await ticket(c, {"conversation_id": str(conv)})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_in"] == 15.0 and len(body["ticket"]) >= 43
    assert body["events"] == f"/v1/conversations/{conv}/events?ticket={body['ticket']}"
    assert body["socket"] == f"/v1/conversations/{conv}/socket?ticket={body['ticket']}"
    assert (await ticket(c, {"user_id": "ana"})).status_code == 201
    assert (await ticket(c, {"user_id": "ben"})).status_code == 403  # another user's stream
    assert (await c.post("/v1/stream-tickets", json={"user_id": "ana"})).status_code == 401  # bearer only
    both = await ticket(c, {"user_id": "ana", "conversation_id": str(conv)})
    assert both.status_code == 422 and "exactly one" in both.text
    assert (await ticket(c, {})).status_code == 422
    assert (await ticket(c, {"stream": "x", "user_id": "ana"})).status_code == 422  # unknown field


async def test_a_ticket_opens_its_stream_once_and_no_other(c: httpx.AsyncClient) -> None:
    conv = uuid.uuid4()
    first = (await ticket(c, {"conversation_id": str(conv)})).json()["ticket"]
    other = await c.get(f"/v1/conversations/{uuid.uuid4()}/events", params={"ticket": first})
    assert other.status_code == 401 and other.json()["error"] == "invalid_ticket"
    # The fake edge serves no live events: the ticket is accepted (and used up), then 503.
    used = await c.get(f"/v1/conversations/{conv}/events", params={"ticket": first})
    assert used.status_code == 503
    again = await c.get(f"/v1/conversations/{conv}/events", params={"ticket": first})
    assert again.status_code == 401 and again.json()["error"] == "invalid_ticket"
    assert (await c.get("/v1/users/ana/events", params={"ticket": "x" * 101})).status_code == 401


async def test_a_browser_may_resume_and_post_from_an_allowed_origin(c: httpx.AsyncClient) -> None:
    pre = await c.options("/v1/users/ana/events", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, last-event-id"})
    assert pre.status_code == 200, pre.text
    assert pre.headers["access-control-allow-origin"] == ORIGIN
    pre = await c.options("/v1/messages", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert pre.status_code == 200, pre.text
    r = await c.post("/v1/stream-tickets", json={"user_id": "ana"}, headers=bearer() | {"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    refused = await c.get("/v1/stats", headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    exposed = refused.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed and "www-authenticate" in exposed
