"""The hand-written cases: each a request a real client sent and the answer it must get."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt

from bench.fuzzing.common import TENANT, Figures, sign, token
from bench.fuzzing.webhooks import set_path, valid_webhook


def hand_cases(secret: str, app_secret: str) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, path, httpx kwargs): the cases issue 12 lists."""
    user = {"Authorization": f"Bearer {token(secret, 'hand-user', ['user'])}"}
    admin = {"Authorization": f"Bearer {token(secret, 'hand-admin', ['admin'])}"}
    svc = {"Authorization": f"Bearer {token(secret, 'hand-bot', ['service'])}"}

    def post(name: str, body: dict[str, Any], headers: dict[str, str] = user) -> tuple[str, str, str, dict[str, Any]]:
        return name, "POST", "/v1/messages", {"json": body, "headers": headers}

    def raw_post(name: str, raw: bytes, headers: dict[str, str] = user) -> tuple[str, str, str, dict[str, Any]]:
        return name, "POST", "/v1/messages", {"content": raw, "headers": headers | {"content-type": "application/json"}}

    base = {"user_id": "hand-user", "text": "hi"}
    yield post("NUL in text", base | {"text": "a\x00b"})
    yield post("NUL in metadata key", base | {"metadata": {"k\x00": 1}})
    yield post("NUL in metadata value", base | {"metadata": {"k": "v\x00"}})
    yield post("NUL in external_id", base | {"external_id": "e\x00"})
    yield post("NUL in user_id (service)", {"user_id": "u\x00", "text": "hi"}, svc)
    yield post("occurred_at 0001+14:00", base | {"occurred_at": "0001-01-01T00:00:00+14:00"})
    yield post("occurred_at 9999-12-31-14:00", base | {"occurred_at": "9999-12-31T23:59:59-14:00"})
    yield post("occurred_at year 1", base | {"occurred_at": "0001-01-01T00:00:00Z"})
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    yield post("metadata nested 300", base | {"metadata": deep})
    yield post("metadata int 10^30", base | {"metadata": {"n": 10**30}})
    yield raw_post("metadata NaN", b'{"user_id": "hand-user", "text": "hi", "metadata": {"n": NaN}}')
    yield raw_post("metadata Infinity", b'{"user_id": "hand-user", "text": "hi", "metadata": {"n": Infinity}}')
    yield raw_post("lone surrogate in text", b'{"user_id": "hand-user", "text": "\\ud800"}')
    yield post("user sets reply_expected false", base | {"reply_expected": False})
    conv = str(uuid.uuid4())
    yield "after_seq 2^31", "GET", f"/v1/conversations/{conv}/messages", {"params": {"after_seq": 2**31},
                                                                            "headers": user}
    yield "since extreme", "GET", "/v1/conversations", {"params": {"since": "0001-01-01T00:00:00+14:00"},
                                                        "headers": user}
    yield "until extreme", "GET", "/v1/search", {"params": {"q": "x", "until": "9999-12-31T23:59:59-14:00"},
                                                 "headers": user}
    yield "NUL in type", "GET", "/v1/conversations", {"params": {"type": "a\x00"}, "headers": user}
    yield "NUL in admin user_id", "GET", "/v1/conversations", {"params": {"user_id": "a\x00"}, "headers": admin}
    yield "NUL in search q", "GET", "/v1/search", {"params": {"q": "a\x00"}, "headers": user}
    yield "NUL in PATCH title", "PATCH", f"/v1/conversations/{conv}", {"json": {"title": "a\x00"}, "headers": user}
    yield "NUL in path user_id", "GET", "/v1/users/a%00b/summary", {"headers": admin}
    for claim, value in (("sub", "a\x00b"), ("tenant", "t\x00"), ("roles", [["admin"]]), ("roles", "admin"),
                         ("exp", None)):
        now = int(time.time())
        claims: dict[str, Any] = {"sub": "hand-user", "tenant": TENANT, "roles": ["user"], "iat": now,
                                  "exp": now + 3600, claim: value}
        bad = jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")
        yield f"JWT {claim}={value!r}", "GET", "/v1/stats", {"headers": {"Authorization": f"Bearer {bad}"}}
    yield "policy retention true", "PUT", "/v1/tenant/policy", {"json": {"message_retention_days": True},
                                                               "headers": admin}
    raw = json.dumps(valid_webhook()).encode()
    yield "non-ASCII signature", "POST", "/webhooks/whatsapp", {
        "content": raw, "headers": {"X-Hub-Signature-256": "sha256=é".encode()}}
    for name, path, value in (("entry abc", ("entry",), "abc"), ("changes {}", ("entry", 0, "changes"), {}),
                              ("messages [5]", ("entry", 0, "changes", 0, "value", "messages"), [5]),
                              ("message id number", ("entry", 0, "changes", 0, "value", "messages", 0, "id"), 5),
                              ("statuses x", ("entry", 0, "changes", 0, "value", "statuses"), "x"),
                              ("contacts wa_id list", ("entry", 0, "changes", 0, "value", "contacts"),
                               [{"wa_id": ["x"]}]),
                              ("from NUL", ("entry", 0, "changes", 0, "value", "messages", 0, "from"), "a\x00")):
        doc = valid_webhook()
        set_path(doc, path, value)
        raw = json.dumps(doc).encode()
        yield f"webhook {name}", "POST", "/webhooks/whatsapp", {
            "content": raw, "headers": {"X-Hub-Signature-256": sign(app_secret, raw)}}


def run_hand_cases(client: httpx.Client, secret: str, app_secret: str, fig: Figures) -> None:
    for name, method, path, kwargs in hand_cases(secret, app_secret):
        try:
            try:
                r = client.request(method, path, **kwargs)
            except (httpx.ReadError, httpx.RemoteProtocolError):  # the server dropped the kept-alive connection
                r = client.request(method, path, **kwargs)
            status = r.status_code
        except httpx.HTTPError as exc:
            status = 0
            print(f"  {name}: {type(exc).__name__}")
        fig.record("hand cases", status, name)
        print(f"  {status} {name}")
