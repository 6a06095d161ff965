"""End to end on the real Kafka and Postgres: HTTP/WhatsApp in, reply event out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from composition.runtime import Runtime
from contracts import MessageReceived, ReplyGenerated, TurnRecorded, topics
from tests.conftest import APP_SECRET, Tap, eventually, token, unique
from tests.fake_llm import FakeLLM
from tests.services import Endpoints

pytestmark = pytest.mark.stack


def replies_to(tap: Tap, message_id: str) -> list[ReplyGenerated]:
    out = [ReplyGenerated.model_validate_json(r.value) for r in tap.on(topics.REPLIES)]
    return [r for r in out if str(r.in_reply_to) == message_id]


async def post(api: httpx.AsyncClient, user: str, text: str, **extra: object) -> dict[str, Any]:
    resp = await api.post("/v1/messages", json={"user_id": user, "text": text, **extra}, headers=token(user))
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    sig = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"}


def whatsapp_text(wa_id: str, wamid: str, text: str) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "555000111"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "type": "text",
                      "text": {"body": text}}]}}]}]}


async def test_http_message_is_recorded_and_answered_once(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, fake_llm: FakeLLM) -> None:
    user = unique("u")
    accepted = await post(api, user, "Hello there, what can you do?")
    [reply] = await eventually(lambda: replies_to(tap, accepted["message_id"]))
    assert reply.model == "fake-gpt" and reply.user_id == user
    assert reply.conversation_id == uuid.UUID(accepted["conversation_id"])
    assert reply.usage.total_tokens > 0
    history = await eventually(lambda: _history_len(api, user, accepted["conversation_id"], 2))
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert [m["seq"] for m in history] == [1, 2]


async def _history_len(api: httpx.AsyncClient, user: str, conv: str, n: int) -> list[dict[str, Any]] | None:
    resp = await api.get(f"/v1/conversations/{conv}/messages", headers=token(user))
    msgs = resp.json()["messages"] if resp.status_code == 200 else []
    return msgs if len(msgs) >= n else None


async def test_same_external_id_answers_same_ids_and_makes_no_new_turn(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap) -> None:
    user, ext = unique("u"), unique("ext")
    first = await post(api, user, "Remember my order 1234", external_id=ext)
    [reply] = await eventually(lambda: replies_to(tap, first["message_id"]))
    again = await post(api, user, "Remember my order 1234", external_id=ext)
    assert (again["message_id"], again["conversation_id"]) == (first["message_id"], first["conversation_id"])
    assert again["duplicate"] is True
    await asyncio.sleep(1.5)
    assert len(replies_to(tap, first["message_id"])) == 1
    history = await _history_len(api, user, first["conversation_id"], 2)
    assert history is not None and len(history) == 2


async def test_signed_whatsapp_webhook_gives_one_reply_even_when_redelivered(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, endpoints: Endpoints) -> None:
    wa_id, wamid = str(uuid.uuid4().int)[:12], f"wamid.{uuid.uuid4().hex}"
    raw, headers = signed(whatsapp_text(wa_id, wamid, "Hi! Do you deliver on Sundays?"))
    resp = await api.post("/webhooks/whatsapp", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        row = await eventually(lambda: conn.fetchrow(
            "SELECT id, tenant_id, user_id, conversation_id FROM messages WHERE external_id = $1", wamid))
        assert (row["tenant_id"], row["user_id"]) == ("acme", wa_id)
        [reply] = await eventually(lambda: replies_to(tap, str(row["id"])))
        assert reply.channel == "whatsapp"
        # Meta delivers at least once: the same webhook again makes no second turn or reply.
        again = await api.post("/webhooks/whatsapp", content=raw, headers=headers)
        assert again.status_code == 200 and again.json()["already_recorded"] == 1
        await asyncio.sleep(1.5)
        assert len(replies_to(tap, str(row["id"]))) == 1
        turns = await conn.fetchval("SELECT count(*) FROM messages WHERE conversation_id = $1", row["conversation_id"])
        assert turns == 2
    finally:
        await conn.close()


async def test_bad_or_missing_signature_is_refused(api: httpx.AsyncClient, runtime: Runtime) -> None:
    raw, headers = signed(whatsapp_text("123", f"wamid.{uuid.uuid4().hex}", "hi"))
    bad = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert (await api.post("/webhooks/whatsapp", content=raw, headers=bad)).status_code == 401
    missing = {"Content-Type": "application/json"}
    resp = await api.post("/webhooks/whatsapp", content=raw, headers=missing)
    assert resp.status_code == 401 and resp.json()["error"] == "bad_signature"
    tampered = raw.replace(b"hi", b"ho")
    assert (await api.post("/webhooks/whatsapp", content=tampered, headers=headers)).status_code == 401


async def test_fact_is_recalled_in_another_conversation_and_never_for_another_user(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, endpoints: Endpoints) -> None:
    alice, mallory = unique("alice"), unique("mallory")
    fact = await post(api, alice, "My dog's name is Biscuit and he is a beagle.")
    await eventually(lambda: replies_to(tap, fact["message_id"]))
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        await eventually(lambda: conn.fetchval(
            "SELECT embedded_at FROM messages WHERE id = $1", uuid.UUID(fact["message_id"])))
    finally:
        await conn.close()
    question = await post(api, alice, "What is the name of my dog?")
    assert question["conversation_id"] != fact["conversation_id"]
    [sealed] = await eventually(lambda: replies_to(tap, question["message_id"]))
    assert sealed.text == "" and sealed.sealed is not None  # text crosses Kafka under the user's key
    reply = await runtime.res.sealer.open(sealed)
    assert uuid.UUID(fact["message_id"]) in reply.sources
    assert "Biscuit" in reply.text

    other = await post(api, mallory, "What is the name of my dog?")
    [reply2] = await eventually(lambda: replies_to(tap, other["message_id"]))
    reply2 = await runtime.res.sealer.open(reply2)
    assert uuid.UUID(fact["message_id"]) not in reply2.sources
    assert "Biscuit" not in reply2.text


async def test_poison_event_goes_to_dlq_and_the_next_event_is_processed(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, producer: AIOKafkaProducer) -> None:
    conv = uuid.uuid4()
    key = str(conv).encode()
    await producer.send_and_wait(topics.INBOUND, b"{not json", key=key)
    wrong_version = MessageReceived(tenant_id="default", user_id=unique("u"), conversation_id=conv,
                                    message_id=uuid.uuid4(), text="v2?",
                                    occurred_at=datetime(2026, 11, 1, tzinfo=UTC))
    as_v2 = json.loads(wrong_version.model_dump_json()) | {"schema_version": 2}
    await producer.send_and_wait(topics.INBOUND, json.dumps(as_v2).encode(), key=key)
    good = MessageReceived(tenant_id="default", user_id=wrong_version.user_id, conversation_id=conv,
                           message_id=uuid.uuid4(), text="I am fine",
                           occurred_at=datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC))
    await producer.send_and_wait(topics.INBOUND, good.model_dump_json().encode(), key=key)

    dlq = topics.dead_letter_topic(topics.INBOUND)
    dead = await eventually(lambda: [r for r in tap.on(dlq) if r.key == key] if len(
        [r for r in tap.on(dlq) if r.key == key]) >= 2 else None)
    reasons = [dict(r.headers)["x-error"].decode() for r in dead]
    assert dead[0].value == b"{not json"
    assert any("schema_version" in r for r in reasons)
    assert all(dict(r.headers)["x-original-topic"] == topics.INBOUND.encode() for r in dead)
    # The good message expects a reply, so the reply's assistant turn shares the key: only user turns count.
    turns = await eventually(lambda: [t for r in tap.on(topics.TURNS) if r.key == key
                                      if (t := TurnRecorded.model_validate_json(r.value)).role == "user"] or None)
    assert [t.message_id for t in turns] == [good.message_id]


async def test_llm_429_and_500_are_retried_without_losing_the_reply(
        api: httpx.AsyncClient, runtime: Runtime, tap: Tap, fake_llm: FakeLLM) -> None:
    fake_llm.failures.extend([429, 500])
    accepted = await post(api, unique("u"), "Are you there?")
    [reply] = await eventually(lambda: replies_to(tap, accepted["message_id"]), timeout=30)
    assert reply.model == "fake-gpt"
    assert not fake_llm.failures
