"""GET /v1/analytics on the real stack: messages sent through the pipeline (the fake model
answers), then every figure of the day checked against what the pipeline did (replies and
their latencies and tokens as published, each turn's language and intent as stored), the
same as CSV, who may see which figures, the requests refused with the field named, and the
WhatsApp delivery funnel after Meta's status callbacks came back."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from composition.runtime import Runtime
from contracts import ReplyGenerated, topics
from tests.conftest import Tap, eventually, token, unique
from tests.e2e.test_sender import TENANT as WA_TENANT
from tests.e2e.test_sender import history, wa_user, write
from tests.fake_graph import FakeGraph

pytestmark = pytest.mark.stack
ADMIN = ("admin",)


def percentile_cont(values: list[int], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = ordered[math.floor(position)], ordered[math.ceil(position)]
    return low + (high - low) * (position - math.floor(position))


async def analytics(api: httpx.AsyncClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    resp = await api.get("/v1/analytics", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()
    return found


def today_of(body: dict[str, Any]) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()
    found: list[dict[str, Any]] = [p for p in body["series"] if p["start"] == today]
    assert len(found) == 1, body
    return found[0]


async def test_the_days_figures_are_what_the_pipeline_did_for_the_tenant_and_each_user(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap) -> None:
    tenant, ana, ben = unique("shop"), unique("ana"), unique("ben")
    answered: list[dict[str, Any]] = []
    conversation: str | None = None
    for user, text, new in ((ana, "Hello! Do you ship to Portugal?", True), (ana, "And how much does it cost?", False),
                            (ana, "Quiero cambiar mi pedido, por favor", True), (ben, "Where is my order?", True)):
        body: dict[str, Any] = {"user_id": user, "text": text}
        if not new and conversation:
            body["conversation_id"] = conversation
        resp = await api.post("/v1/messages", params={"wait": 20}, json=body, headers=token(user, tenant))
        assert resp.status_code == 200 and resp.json()["status"] == "answered", resp.text
        conversation = resp.json()["conversation_id"]
        answered.append(resp.json())
    admin = token("boss", tenant, ADMIN)

    async def all_recorded() -> dict[str, Any] | None:  # the replies come back into the recorder
        day = today_of(await analytics(api, admin))
        return day if day["messages"]["total"] == 8 else None

    day = await eventually(all_recorded)
    published = [ReplyGenerated.model_validate_json(r.value) for r in tap.on(topics.REPLIES)]
    ours = [r for r in published if r.tenant_id == tenant]
    latencies = [r.latency_ms for r in {r.message_id: r for r in ours}.values()]
    assert len(latencies) == 4

    stored: list[dict[str, Any]] = []
    for cid in {a["conversation_id"] for a in answered}:
        owner = ben if cid == answered[3]["conversation_id"] else ana
        resp = await api.get(f"/v1/conversations/{cid}/messages", headers=token(owner, tenant))
        stored += [m for m in resp.json()["messages"] if m["role"] == "user"]
    assert day["messages"] == {"total": 8, "by_role": {"assistant": 4, "user": 4}, "by_channel": {"http": 8},
                               "by_role_channel": {"assistant/http": 4, "user/http": 4}}
    assert day["active_users"] == 2 and day["new_conversations"] == 3
    assert day["languages"] == dict(Counter(m["language"] for m in stored if m["language"]))
    assert day["intents"] == dict(Counter(m["intent"] for m in stored if m["intent"]))
    assert {k: v for k, v in day["replies"].items() if k != "latency_ms"} == {
        "expected": 4, "answered": 4, "offline": 0, "success_rate": 1.0}
    usage = [a["reply"]["usage"] for a in answered]
    prompt, completion = sum(u["prompt_tokens"] for u in usage), sum(u["completion_tokens"] for u in usage)
    assert day["tokens"] == {"prompt": prompt, "completion": completion, "total": prompt + completion}
    assert day["whatsapp"] == {"sent": 0, "delivered": 0, "read": 0, "failed": 0}
    latency = day["replies"]["latency_ms"]
    assert latency["count"] == 4
    for q in ("p50", "p95"):
        exact = percentile_cont(latencies, 0.5 if q == "p50" else 0.95)
        assert abs(latency[q] - exact) <= exact * 0.005 + 0.05, (q, latency, latencies)

    # One user: an admin names it, a user gets only itself, and never another user.
    of_ben = today_of(await analytics(api, admin, user_id=ben))
    assert of_ben["messages"]["total"] == 2 and of_ben["active_users"] == 1 and of_ben["new_conversations"] == 1
    mine = await analytics(api, token(ana, tenant))
    assert (mine["scope"], mine["user_id"]) == ("user", ana) and today_of(mine)["messages"]["total"] == 6
    refused = await api.get("/v1/analytics", params={"user_id": ben}, headers=token(ana, tenant))
    assert refused.status_code == 403
    elsewhere = await analytics(api, token("boss", unique("other"), ADMIN))
    assert today_of(elsewhere)["messages"]["total"] == 0

    # The same figures as CSV, one per row, asked for either way.
    for extra, headers in (({"format": "csv"}, admin), ({}, {**admin, "Accept": "text/csv"})):
        resp = await api.get("/v1/analytics", params={"period": "week", **extra}, headers=headers)
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(resp.text)))
        assert rows[0] == ["period_start", "metric", "key", "value"]
        this_week = (datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())).isoformat()
        figures = {(m, k): v for start, m, k, v in rows[1:] if start == this_week}
        assert figures[("messages", "total")] == "8" and figures[("active_users", "")] == "2"
        assert figures[("replies", "success_rate")] == "1.0" and figures[("latency_ms", "count")] == "4"
        assert figures[("tokens", "total")] == str(prompt + completion)


async def test_bad_requests_name_the_field(api: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = token("boss", unique("shop"), ADMIN)
    for params, status, field in (({"period": "year"}, 422, "query.period"), ({"since": "2026-13-01"}, 422, "query.since"),
                                  ({"format": "xml"}, 422, "query.format"),
                                  ({"since": "2024-01-01", "until": "2026-01-01"}, 409, "query.until"),
                                  ({"since": "0001-01-01"}, 409, "query.until")):
        resp = await api.get("/v1/analytics", params=params, headers=admin)
        assert resp.status_code == status, (params, resp.text)
        assert [f["field"] for f in resp.json()["fields"]] == [field], resp.text
    month = await analytics(api, admin, period="month", since="2024-01-01", until="2026-01-01")
    assert len(month["series"]) == 24 and month["series"][0]["start"] == "2024-01-01"
    empty = await analytics(api, admin, since="2026-03-10", until="2026-03-01")  # an empty window, as in search
    assert empty["series"] == []
    assert (await api.get("/v1/analytics")).status_code == 401


async def test_the_whatsapp_funnel_counts_the_statuses_meta_reported(
        api: httpx.AsyncClient, runtime: Runtime, fake_graph: FakeGraph) -> None:
    wa_id = wa_user()
    conversation = await write(api, wa_id, "Hi! Is the shop open on Sunday?")
    await eventually(lambda: fake_graph.to(wa_id))  # the reply went out (so the question is recorded)

    async def read_reported() -> bool:
        turns = await history(api, wa_id, conversation)
        return any((t.get("delivery") or {}).get("status") == "read" for t in turns if t["role"] == "assistant")

    await eventually(read_reported)  # sent, delivered and read came back through the webhook
    day = today_of(await analytics(api, token("boss", WA_TENANT, ADMIN), user_id=wa_id))
    assert day["whatsapp"] == {"sent": 1, "delivered": 1, "read": 1, "failed": 0}
    assert day["messages"]["by_channel"] == {"whatsapp": 2} and day["active_users"] == 1


async def test_the_overview_shows_readiness_lag_dead_letters_and_the_tenants_last_hour(
        api: httpx.AsyncClient, runtime: Runtime) -> None:
    tenant, ana = unique("shop"), unique("ana")
    resp = await api.post("/v1/messages", params={"wait": 20}, json={"user_id": ana, "text": "Hello, anyone there?"},
                          headers=token(ana, tenant))
    assert resp.status_code == 200, resp.text
    admin = token("boss", tenant, ADMIN)

    async def both_recorded() -> dict[str, Any] | None:
        got = await api.get("/v1/overview", headers=admin)
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body if sum(m["total"] for m in body["turns_per_minute"]) == 2 else None

    body = await eventually(both_recorded)
    assert body["ready"]["kafka"] is True and body["ready"]["postgres"] is True and body["kafka_error"] is None
    groups = {g["group"].split(".", 1)[1] for g in body["consumer_groups"]}  # without the suite's prefix
    assert {"indexer.record-inbound", "indexer.embed"} <= groups, groups
    assert all(g["lag"] >= 0 and g["partitions"] >= 1 for g in body["consumer_groups"])
    assert body["dead_letters"] and all(t.endswith(".dlq") and n >= 0 for t, n in body["dead_letters"].items())
    minutes = body["turns_per_minute"]
    assert len(minutes) == 60 and sorted(minutes, key=lambda m: m["minute"]) == minutes
    assert sum(m["by_role"].get("user", 0) for m in minutes) == 1
    assert (await api.get("/v1/overview", headers=token(ana, tenant))).status_code == 403
