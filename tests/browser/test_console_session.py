"""The console's session, at the HTTP level: the cookie's attributes, CSRF and same-origin
checks on every form that changes data, sign-out ending the session for good, a service
token refused, and the token itself kept nowhere (only the cookie's hash is stored)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from services.ingest.auth import issue_token
from tests.conftest import JWT_SECRET, unique
from tests.services import Endpoints

pytestmark = pytest.mark.stack


@asynccontextmanager
async def signed_in(base: str, user: str, roles: tuple[str, ...], host: str | None = None
                    ) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.Response, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=20, headers={"Host": host} if host else {}) as client:
        token = issue_token(JWT_SECRET, user, "default", roles)
        answer = await client.post("/console/sign-in", data={"token": token})
        yield client, answer, token


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


async def test_the_cookie_is_http_only_strict_and_secure_beyond_this_machine(base: str) -> None:
    async with signed_in(base, unique("root"), ("admin",)) as (client, answer, _):
        assert answer.status_code == 303 and answer.headers["location"] == "/console"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain http to 127.0.0.1: a developer's machine
        page = await client.get("/console")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
    async with signed_in(base, unique("root"), ("admin",), host="console.example.org") as (client, answer, _):
        assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


async def test_forms_that_change_data_need_the_csrf_token_and_this_origin(base: str) -> None:
    user = unique("ana")
    async with signed_in(base, user, ("user",)) as (client, _, _):
        me = await client.get("/console/me")
        csrf = csrf_of(me.text)
        for data, headers in (({"format": "json"}, {}), ({"format": "json", "csrf": "guess"}, {}),
                              ({"format": "json", "csrf": csrf}, {"Origin": "https://evil.example"}),
                              ({"format": "json", "csrf": csrf}, {"Origin": "null"})):
            refused = await client.post(f"/console/users/{user}/export", data=data, headers=headers)
            assert refused.status_code == 403, (data, headers)
        done = await client.post(f"/console/users/{user}/export", data={"format": "json", "csrf": csrf},
                                 headers={"Origin": base})
        assert done.status_code == 200 and done.headers["content-disposition"].endswith('.json"')

        assert (await client.post("/console/sign-out", data={"csrf": csrf})).status_code == 303
        gone = await client.get("/console/me")
        assert gone.status_code == 303 and gone.headers["location"] == "/console/sign-in"


async def test_a_signed_out_cookie_stays_dead_and_the_token_is_never_stored(base: str, endpoints: Endpoints) -> None:
    async with signed_in(base, unique("root"), ("admin",)) as (client, answer, token):
        value = client.cookies["convmem_console"]
        csrf = csrf_of((await client.get("/console")).text)
        await client.post("/console/sign-out", data={"csrf": csrf})
    async with httpx.AsyncClient(base_url=base, cookies={"convmem_console": value}) as replayed:
        assert (await replayed.get("/console")).status_code == 303
    db = await asyncpg.connect(endpoints.database_url)
    try:
        stored = await db.fetch("SELECT * FROM console_sessions")
        assert not any(token in str(dict(r)) or value in str(dict(r)) for r in stored)
    finally:
        await db.close()


async def test_tokens_the_api_would_refuse_do_not_sign_in(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        service = await client.post("/console/sign-in",
                                    data={"token": issue_token(JWT_SECRET, "bot", "default", ("service",))})
        assert service.status_code == 403 and "service token" in service.text
        expired = await client.post("/console/sign-in",
                                    data={"token": issue_token(JWT_SECRET, "ana", "default", ("user",), ttl_s=-60)})
        assert expired.status_code == 401 and "expired" in expired.text
        forged = await client.post("/console/sign-in",
                                   data={"token": issue_token("another-secret-0123456789-0123456789", "root",
                                                              "default", ("admin",))})
        assert forged.status_code == 401
        assert "convmem_console" not in client.cookies
