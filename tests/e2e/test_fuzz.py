"""Fuzzing the real app on the real stack: the Schemathesis CLI with all its checks over the
served OpenAPI document, every operation, as an anonymous caller and with user, service and
admin tokens (a bounded time each); and signed WhatsApp webhooks with parts of the wrong shape.
Any failure Schemathesis reports (a 5xx, a schema-valid request refused, an invalid one taken,
a response or header the document does not declare, a 405 without Allow, ...) fails the test.

The HTTP server runs on the session's event loop, so the (blocking) fuzzing runs in a thread."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

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


ROOT = Path(__file__).resolve().parents[2]
# Per role: Schemathesis's own time budget (its fuzzing and stateful phases stop there).
SCHEMATHESIS_MAX_TIME_S = 75


async def schemathesis_run(base: str, role: str, bearer: str | None, workdir: Path) -> tuple[int, str]:
    """The Schemathesis CLI with every check it has, over the served document, as one role:
    what a user of the API would run against us. Exit status and the run's summary. The token
    goes in through the document's `bearer` scheme (a config file), not a fixed header, so the
    auth checks can take it away and see the 401."""
    config = workdir / f"{role}.toml"
    config.write_text(f'[auth.openapi.bearer]\nbearer = "{bearer.removeprefix("Bearer ")}"\n' if bearer else "")
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{base}/openapi.json",
            "--checks", "all", "--max-examples", "8", "--max-time", str(SCHEMATHESIS_MAX_TIME_S),
            "--seed", "20261207", "--generation-database", "none", "--request-timeout", "10", "--warnings", "off",
            # /mcp is the MCP SDK's endpoint: some fuzzed JSON-RPC bodies make the SDK itself answer
            # 500 ("Error handling POST request"), in code we do not own. The MCP tests
            # (test_context_and_mcp) drive it through the real client instead.
            "--exclude-path", "/mcp"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(*argv, cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    return proc.returncode or 0, f"--- {role} ---\n" + text[text.find("FAILURES"):] if "FAILURES" in text \
        else f"--- {role} ---\n" + text[-3000:]


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


@pytest.mark.timeout(600)
async def test_schemathesis_with_every_check_finds_nothing_as_any_role(runtime: Runtime, tmp_path: Path) -> None:
    """Every operation, positive and negative data, undeclared methods, missing and ignored
    auth, status codes, content types, headers and bodies against the document; anonymous and
    as a user, a service and an admin, the four runs at once."""
    base = f"http://127.0.0.1:{runtime.port}"
    roles: dict[str, str | None] = {"anonymous": None} | {
        role: token(f"fuzz-{role}", "fuzz", (role,))["Authorization"] for role in ("user", "service", "admin")}
    runs = await asyncio.gather(*(schemathesis_run(base, role, bearer, tmp_path) for role, bearer in roles.items()))
    failed = [summary for status, summary in runs if status != 0]
    assert failed == [], "\n".join(failed)


async def test_signed_webhooks_of_wrong_shapes_get_400_or_200(runtime: Runtime) -> None:
    found = Findings()
    await asyncio.to_thread(fuzz_webhooks, f"http://127.0.0.1:{runtime.port}", found)
    assert found.failures == [], "\n".join(found.failures)
    assert found.statuses[400] > 0 and found.statuses[200] > 0, found.statuses
