"""Privacy on the real stack, read after delete: PII scrubbing, erasure reaching Postgres, the
vector index and the event log, export, interaction summaries, retention."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from composition.runtime import Runtime
from contracts import MessageReceived, RetentionPurged, topics
from convmem.privacy.sealing import SubjectKeyDestroyed
from tests.conftest import Tap, eventually, token, unique
from tests.services import Endpoints

pytestmark = pytest.mark.stack


def admin(tenant: str) -> dict[str, str]:
    return token("boss", tenant, ("admin",))


async def post(api: httpx.AsyncClient, user: str, text: str, tenant: str = "default",
               **extra: object) -> dict[str, Any]:
    # History (no reply wanted) comes from a backend's service token; a user's own posts are answered.
    headers = token("backend", tenant, ("service",)) if extra.get("reply_expected") is False else token(user, tenant)
    resp = await api.post("/v1/messages", json={"user_id": user, "text": text, **extra}, headers=headers)
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def history(api: httpx.AsyncClient, user: str, conversation: str,
                  tenant: str = "default") -> list[dict[str, Any]]:
    resp = await api.get(f"/v1/conversations/{conversation}", headers=token(user, tenant))
    return resp.json()["messages"] if resp.status_code == 200 else []


def privacy_events(tap: Tap, kind_field: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in tap.on(topics.PRIVACY_EVENTS) if kind_field in json.loads(r.value)]


async def test_pii_is_scrubbed_at_once_when_the_tenant_says_so(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap) -> None:
    tenant, ana = unique("t"), unique("ana")
    put = await api.put("/v1/tenant/policy", json={"pii_mode": "immediate", "phone_region": "GB"},
                        headers=admin(tenant))
    assert put.status_code == 200 and put.json()["pii_mode"] == "immediate"
    assert (await api.put("/v1/tenant/policy", json={"pii_mode": "sometimes"}, headers=admin(tenant))).status_code == 422
    assert (await api.get("/v1/tenant/policy", headers=token(ana, tenant))).status_code == 403

    said = await post(api, ana, "Ring me on 020 7946 0958 or write to ana.silva@example.org, card 4111 1111 1111 1111",
                      tenant, reply_expected=False)
    turns = await eventually(lambda: _scrubbed(api, ana, said["conversation_id"], tenant), timeout=60)
    assert turns[0]["text"] == "Ring me on <PHONE> or write to <EMAIL>, card <CARD>"
    conv = (await api.get(f"/v1/conversations/{said['conversation_id']}", headers=token(ana, tenant))).json()
    assert "7946" not in conv["title"] and "<PHONE>" in conv["title"]  # the title was made from that text
    [audit] = await eventually(lambda: [e for e in privacy_events(tap, "kinds") if e["message_id"] == said["message_id"]])
    assert audit["kinds"] == {"PHONE": 1, "EMAIL": 1, "CARD": 1}
    assert "7946" not in json.dumps(audit) and "silva" not in json.dumps(audit)
    hits = (await api.get("/v1/search", params={"q": "ana.silva@example.org 7946 0958"},
                          headers=token(ana, tenant))).json()["hits"]
    assert all("silva" not in h["text"] and "7946" not in h["text"] for h in hits)


async def _scrubbed(api: httpx.AsyncClient, user: str, conv: str, tenant: str) -> list[dict[str, Any]] | None:
    turns = await history(api, user, conv, tenant)
    return turns if turns and "<PHONE>" in turns[0]["text"] else None


async def test_erasure_reaches_every_store_and_the_event_log(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, endpoints: Endpoints) -> None:
    ana, ben = unique("ana"), unique("ben")
    marker = f"zebra{uuid.uuid4().hex[:8]}"
    first = await post(api, ana, f"My secret word is {marker} and my cat is Miso")
    second = await post(api, ana, f"Remember {marker} for me", conversation_id=first["conversation_id"])
    other = await post(api, ben, f"I also like {marker}")
    await eventually(lambda: _replied(api, ana, 2), timeout=60)
    await eventually(lambda: _count(api, ana, "default", 4), timeout=60)  # both replies recorded as turns
    await eventually(lambda: _replied(api, ben, 1), timeout=60)
    await eventually(lambda: _found(api, ana, marker), timeout=60)

    me = token(ana)
    assert (await api.delete(f"/v1/users/{ben}", headers=me)).status_code == 403
    resp = await api.delete(f"/v1/users/{ana}", headers=me)
    assert resp.status_code == 202 and resp.json()["status"] == "requested"
    request_id = resp.json()["request_id"]
    done = await eventually(lambda: _erased(api, ana), timeout=60)
    assert done["request_id"] == request_id
    assert done["counts"]["messages"] == 4 and done["counts"]["conversations"] == 1 and done["counts"]["keys"] == 1
    [audit] = await eventually(lambda: [e for e in privacy_events(tap, "counts") if e["request_id"] == request_id])
    assert ana not in json.dumps(audit) and marker not in json.dumps(audit)
    # The erased rows leave the data files: the retention worker vacuums after the erasure.
    erased_at = datetime.fromisoformat(done["completed_at"])

    async def vacuumed() -> bool:
        conn = await asyncpg.connect(endpoints.database_url)
        try:
            last = await conn.fetchval("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'messages'")
        finally:
            await conn.close()
        return last is not None and last >= erased_at

    await eventually(vacuumed, timeout=60, interval=0.5)

    # read after delete: nothing of ana, ben untouched
    for mode in ("hybrid", "fts", "vector"):
        assert (await api.get("/v1/search", params={"q": marker, "mode": mode}, headers=me)).json()["hits"] == []
    assert await history(api, ana, first["conversation_id"]) == []
    assert (await api.get("/v1/conversations", headers=me)).json()["conversations"] == []
    assert (await api.get("/v1/stats", headers=me)).json()["messages"] == 0
    assert (await api.get(f"/v1/users/{ana}/summary", headers=me)).status_code == 404
    assert len((await api.get("/v1/search", params={"q": marker}, headers=token(ben))).json()["hits"]) >= 1

    # the event log, read from the start: ana's text never appears in the clear, and her
    # sealed events no longer open
    records = await _read_all(endpoints.kafka_bootstrap, [topics.INBOUND, topics.TURNS, topics.REPLIES])
    assert records and not any(marker.encode() in r.value for r in records if r.value)
    ours = [MessageReceived.model_validate_json(r.value) for r in records
            if r.topic == topics.INBOUND and ana.encode() in (r.value or b"")]
    assert {str(e.message_id) for e in ours} >= {first["message_id"], second["message_id"]}
    with pytest.raises(SubjectKeyDestroyed):
        await runtime.res.sealer.open(ours[0])

    # a replayed event does not bring anything back
    assert runtime.broker is not None
    for e in ours:
        await runtime.broker.publish(e, topic=topics.INBOUND, key=e.key)
    await asyncio.sleep(3)
    assert (await api.get("/v1/stats", headers=me)).json()["messages"] == 0
    assert (await api.get(f"/v1/users/{ben}/erasure", headers=token(ben))).status_code == 404
    del other


async def _replied(api: httpx.AsyncClient, user: str, n: int) -> bool:
    replied: int = (await api.get("/v1/stats", headers=token(user))).json()["replied"]
    return replied >= n


async def _found(api: httpx.AsyncClient, user: str, q: str) -> bool:
    hits = (await api.get("/v1/search", params={"q": q, "mode": "vector"}, headers=token(user))).json()["hits"]
    return len(hits) >= 2


async def _erased(api: httpx.AsyncClient, user: str) -> dict[str, Any] | None:
    body = (await api.get(f"/v1/users/{user}/erasure", headers=token(user))).json()
    return body if body["status"] == "completed" else None


async def _read_all(bootstrap: str, names: list[str]) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in names for p in (consumer.partitions_for_topic(t) or range(6))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[Any] = []
        while [p for p in parts if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                out.extend(recs)
        return out
    finally:
        await consumer.stop()


async def test_export_streams_everything_and_summary_counts_in_the_same_transaction(
        api: httpx.AsyncClient, runtime: Runtime, endpoints: Endpoints) -> None:
    ana = unique("ana")
    a = await post(api, ana, "Can I book a table for two on Friday evening, please?")
    await post(api, ana, "Quiero reservar una mesa para dos personas el viernes", reply_expected=False,
               conversation_id=a["conversation_id"])
    await post(api, ana, "Where is my order? It was shipped last week and never arrived", reply_expected=False)
    summary = await eventually(lambda: _summary(api, ana, 4), timeout=60)
    assert summary["conversations"] == 2 and summary["user_messages"] == 3
    assert summary["preferred_language"] == "en" and summary["languages"]["es"] == 1
    assert {i["intent"] for i in summary["common_intents"]} >= {"booking", "order_status"}

    resp = await api.get(f"/v1/users/{ana}/export", headers=token(ana))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["user_id"] == ana and len(body["conversations"]) == 2 and len(body["messages"]) == 4
    assert body["interaction_summary"]["messages"] == 4
    assert {m["role"] for m in body["messages"]} == {"user", "assistant"}
    as_csv = await api.get(f"/v1/users/{ana}/export", params={"format": "csv"}, headers=token(ana))
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 4 and rows[0]["text"] and as_csv.headers["content-type"].startswith("text/csv")
    assert (await api.get(f"/v1/users/{ana}/export", headers=token(unique("eve")))).status_code == 403
    assert (await api.get(f"/v1/users/{ana}/export", params={"format": "xml"}, headers=token(ana))).status_code == 422
    boss = await api.get(f"/v1/users/{ana}/summary", headers=admin("default"))
    assert boss.status_code == 200

    env = os.environ | {"CONVMEM_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
                        "CONVMEM_DATABASE_URL": endpoints.database_url}
    cli = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "composition.cli", "export", "--user", ana,
                                                   "--format", "csv"], capture_output=True, text=True, env=env,
                                  timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert list(csv.DictReader(io.StringIO(cli.stdout))) == rows


async def _summary(api: httpx.AsyncClient, user: str, messages: int) -> dict[str, Any] | None:
    resp = await api.get(f"/v1/users/{user}/summary", headers=token(user))
    return resp.json() if resp.status_code == 200 and resp.json()["messages"] == messages else None


async def test_retention_sweep_follows_the_tenant_policy(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap) -> None:
    tenant, ana = unique("t"), unique("ana")
    await api.put("/v1/tenant/policy", json={"message_retention_days": 30}, headers=admin(tenant))
    backend = token("backend", tenant, ("service",))
    old = datetime.now(UTC) - timedelta(days=10)
    for i, when in enumerate([old, datetime.now(UTC)]):
        resp = await api.post("/v1/messages", headers=backend, json={
            "user_id": ana, "text": f"note {i}", "reply_expected": False, "occurred_at": when.isoformat(),
            "external_id": f"{tenant}-{i}"})
        assert resp.status_code == 202
    await eventually(lambda: _count(api, ana, tenant, 2), timeout=60)
    # The edge refuses what the policy would purge at once; a shorter policy set later purges.
    await api.put("/v1/tenant/policy", json={"message_retention_days": 7}, headers=admin(tenant))
    refused = await api.post("/v1/messages", headers=backend, json={
        "user_id": ana, "text": "too old", "reply_expected": False, "occurred_at": old.isoformat()})
    assert refused.status_code == 409 and refused.json()["fields"][0]["field"] == "occurred_at"
    events = await runtime.sweep_once()
    assert any(type(e) is RetentionPurged and e.messages >= 1 for e in events)
    assert await _count(api, ana, tenant, 1)
    assert any("swept_at" in e for e in await eventually(lambda: privacy_events(tap, "swept_at")))


async def _count(api: httpx.AsyncClient, user: str, tenant: str, n: int) -> bool:
    messages: int = (await api.get("/v1/stats", headers=token(user, tenant))).json()["messages"]
    return messages == n
