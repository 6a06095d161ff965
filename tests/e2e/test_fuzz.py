"""Fuzzing the real app on the real stack: Schemathesis over the served OpenAPI document, every
operation, as an anonymous caller and with user, service and admin tokens, positive and
negative examples (a bounded number each); and signed WhatsApp webhooks with parts of the wrong
shape. Any 5xx, or a response that does not match the document, fails the test.

The HTTP server runs on the session's event loop, so the (blocking) fuzzing runs in a thread."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance
from schemathesis.core.result import Err

from composition.runtime import Runtime
from tests.conftest import APP_SECRET, token

pytestmark = [pytest.mark.stack, pytest.mark.load]

EXAMPLES = 8  # per operation, role and mode: about 1,100 requests in all
WEBHOOK_EXAMPLES = 150


_CALLERS = itertools.count(1)


def address() -> str:
    """Many callers: rejected tokens are limited per address, and fuzzing sends many."""
    n = next(_CALLERS)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Findings:
    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.failures: list[str] = []

    def check(self, status: int, what: str) -> None:
        self.statuses[status] += 1
        if (status >= 500 or status == 429) and len(self.failures) < 20:
            self.failures.append(f"{status} {what}")


def fuzz_api(base: str, found: Findings) -> None:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    session = requests.Session()
    roles = [None, *(token(f"fuzz-{role}", "fuzz", (role,))["Authorization"] for role in ("user", "service", "admin"))]

    def operation(op: Any, mode: GenerationMode, bearer: str | None) -> None:
        @given(case=op.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def one(case: Any) -> None:
            headers = {k: v for k, v in (case.headers or {}).items()
                       if bearer is None or k.lower() != "authorization"}
            case.headers = headers | ({"Authorization": bearer} if bearer else {}) | {"X-Forwarded-For": address()}
            try:
                response = case.call(base_url=base, session=session, timeout=30)
            except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
                return  # a header no HTTP client sends: refused before it leaves
            found.check(response.status_code, f"{case.method} {case.formatted_path} {case.query}")
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except BaseExceptionGroup as exc:
                found.failures.append(f"schema: {op.method.upper()} {op.path} {response.status_code}: "
                                      f"{str(exc)[:300]}")

        try:
            one()
        except Unsatisfiable:  # nothing to make invalid: an operation without parameters
            pass

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the served document itself is broken
        op = result.ok()
        for bearer in roles:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                operation(op, mode, bearer)


# Where in a WhatsApp delivery a generated value goes.
VALUE = ("entry", 0, "changes", 0, "value")
MESSAGE = (*VALUE, "messages", 0)
STATUS = (*VALUE, "statuses", 0)
PATHS: list[tuple[Any, ...]] = [
    ("object",), ("entry",), ("entry", 0), ("entry", 0, "changes"), ("entry", 0, "changes", 0), VALUE,
    *[(*VALUE, k) for k in ("metadata", "contacts", "messages", "statuses")],
    (*VALUE, "metadata", "phone_number_id"), (*VALUE, "contacts", 0), (*VALUE, "contacts", 0, "wa_id"),
    (*VALUE, "contacts", 0, "profile"), (*VALUE, "contacts", 0, "user_id"), MESSAGE,
    *[(*MESSAGE, k) for k in ("id", "from", "timestamp", "type", "text", "context", "interactive", "location",
                              "reaction", "contacts", "image", "button", "order", "from_user_id")],
    (*MESSAGE, "text", "body"), STATUS,
    *[(*STATUS, k) for k in ("id", "status", "timestamp", "recipient_id", "recipient_user_id", "errors")],
]
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
           | st.sampled_from(["", "\x00", "text", "image", "interactive", "9" * 30, "é", "\ud800"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=4), max_leaves=10)


def delivery(kind: str, messages: int) -> dict[str, Any]:
    sender = "4915100000002"
    now = str(int(time.time()))
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "fuzz-number", "display_phone_number": "1555"},
        "contacts": [{"wa_id": sender, "profile": {"name": "F"}}],
        "messages": [{"from": sender, "id": f"wamid.fz{uuid.uuid4().hex}", "timestamp": now, "type": kind,
                      kind: {"body": "hi"}} for _ in range(messages)],
        "statuses": [{"id": f"wamid.o{uuid.uuid4().hex}", "status": "read", "timestamp": now,
                      "recipient_id": sender}]}}]}]}


def fuzz_webhooks(base: str, found: Findings) -> None:
    client = httpx.Client(base_url=base, timeout=30)

    @given(path=st.sampled_from(PATHS), value=JSON, messages=st.integers(1, 3),
           kind=st.sampled_from(["text", "interactive", "location", "contacts", "reaction", "order", "image", "x"]))
    @settings(max_examples=WEBHOOK_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def one(path: tuple[Any, ...], value: Any, messages: int, kind: str) -> None:
        doc = delivery(kind, messages)
        target: Any = doc
        for step in path[:-1]:  # a kind's own body may be missing: it is made
            target = target.setdefault(step, {}) if isinstance(target, dict) else target[step]
        target[path[-1]] = value
        raw = json.dumps(doc).encode()
        signature = "sha256=" + hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        r = client.post("/webhooks/whatsapp", content=raw, headers={
            "X-Hub-Signature-256": signature, "Content-Type": "application/json", "X-Forwarded-For": address()})
        found.check(r.status_code, f"webhook with {path} = {value!r}"[:300])
        assert r.status_code in (200, 400), r.text

    with client:
        one()


async def test_the_api_answers_every_generated_request_without_a_5xx_or_a_schema_violation(runtime: Runtime) -> None:
    found = Findings()
    await asyncio.to_thread(fuzz_api, f"http://127.0.0.1:{runtime.port}", found)
    assert found.failures == [], "\n".join(found.failures)
    assert sum(found.statuses.values()) > 500 and found.statuses[429] == 0, found.statuses


async def test_signed_webhooks_of_wrong_shapes_get_400_or_200(runtime: Runtime) -> None:
    found = Findings()
    await asyncio.to_thread(fuzz_webhooks, f"http://127.0.0.1:{runtime.port}", found)
    assert found.failures == [], "\n".join(found.failures)
    assert found.statuses[400] > 0 and found.statuses[200] > 0, found.statuses
