"""The HTTP edge's abuse limits, on the real FastAPI app with fake ports: the body limit on the
bytes actually read, rate limits (429 with Retry-After), CORS and security headers."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
from pydantic import SecretStr

from convmem.settings import IngestSettings
from services.ingest.auth import issue_token
from services.ingest.edge import EdgePorts
from services.ingest.http.app import create_app
from tests.fakes import fake_storage
from tests.unit.test_http_edge import SECRET, Sink

APP_SECRET = "appsecret"


def client_settings(**overrides: Any) -> IngestSettings:
    base: dict[str, Any] = {"jwt_secret": SecretStr(SECRET), "whatsapp_app_secret": SecretStr(APP_SECRET),
                            "whatsapp_verify_token": SecretStr("verify-me"), "whatsapp_tenants": {},
                            "max_body_bytes": 4096}
    return IngestSettings.model_construct(None, **(base | overrides))


def fake_ports() -> Callable[[], EdgePorts]:
    storage = fake_storage()
    ports = EdgePorts(lookup=storage.lookup, conversations=storage.conversations, memory=storage.memory,
                      privacy=storage.privacy, policies=storage.policies, health=storage.health, sink=Sink().sink())
    return lambda: ports


def client(**overrides: Any) -> httpx.AsyncClient:
    app = create_app(client_settings(**overrides), fake_ports())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def bearer(user: str = "ana", secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(secret, user)}"}


async def test_the_body_limit_counts_bytes_read_even_when_chunked() -> None:
    async with client() as c:
        def chunks() -> Iterator[bytes]:
            yield b'{"user_id": "ana", "text": "'
            for _ in range(1000):
                yield b"x" * 1024
            yield b'"}'

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks():
                yield chunk

        r = await c.post("/v1/messages", content=body(), headers=bearer() | {"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "body_too_large"
        assert r.headers["connection"] == "close"
        # Before any signature work: a large unsigned webhook is refused for its size, not its signature.
        r = await c.post("/webhooks/whatsapp", content=body())
        assert r.status_code == 413
        r = await c.post("/webhooks/whatsapp", content=b"x" * 5000, headers={"content-length": "5000"})
        assert r.status_code == 413


async def test_failed_auth_and_webhook_verification_are_limited_per_address() -> None:
    async with client(rate_limit_failed_auth="3/minute", rate_limit_webhook_verify="2/minute") as c:
        wrong = bearer(secret="another-secret-0123456789-0123456789")
        assert [(await c.get("/v1/stats", headers=wrong)).status_code for _ in range(3)] == [401] * 3
        r = await c.get("/v1/stats", headers=bearer())  # once over, even a good token waits
        assert r.status_code == 429 and r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        guess = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"}
        assert [(await c.get("/webhooks/whatsapp", params=guess)).status_code for _ in range(3)] == [403, 403, 429]
        raw = b'{"object": "whatsapp_business_account"}'
        good = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        r = await c.post("/webhooks/whatsapp", content=raw, headers={"X-Hub-Signature-256": good})
        assert r.status_code == 429 and "retry-after" in r.headers


async def test_requests_are_limited_per_principal_and_per_address() -> None:
    async with client(rate_limit_per_principal="2/minute") as c:
        assert [(await c.get("/v1/stats", headers=bearer("ana"))).status_code for _ in range(3)] == [200, 200, 429]
        assert (await c.get("/v1/stats", headers=bearer("ben"))).status_code == 200
    async with client(rate_limit_per_ip="2/minute") as c:
        assert [(await c.get("/v1/stats", headers=bearer())).status_code for _ in range(3)] == [200, 200, 429]
        assert (await c.get("/healthz")).status_code == 200  # probes are never limited


async def test_security_headers_and_cors_allowlist() -> None:
    async with client() as c:
        r = await c.get("/healthz")
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
        pre = await c.options("/v1/stats", headers={"Origin": "https://app.example.com",
                                                    "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in pre.headers  # no origin is allowed by default
    async with client(cors_allow_origins=["https://app.example.com"]) as c:
        pre = await c.options("/v1/stats", headers={"Origin": "https://app.example.com",
                                                    "Access-Control-Request-Method": "GET",
                                                    "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example.com"
        r = await c.get("/v1/stats", headers=bearer() | {"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in r.headers
