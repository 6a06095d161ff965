"""The WhatsApp sender end to end on the real stack: a user writes on WhatsApp, the reply goes
out through the (fake) Cloud API once, Meta's status callbacks come back through the
webhook and show on the reply turn in the read API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from composition.runtime import Runtime
from contracts import ReplyGenerated, identity, topics
from tests.conftest import Tap, eventually, token
from tests.e2e.test_pipeline import signed, whatsapp_text
from tests.fake_graph import FakeGraph

pytestmark = pytest.mark.stack
TENANT = "acme"  # phone number 555000111 belongs to acme in the suite's settings


def wa_user() -> str:
    return "34" + str(uuid.uuid4().int)[:10]


async def write(api: httpx.AsyncClient, wa_id: str, text: str) -> uuid.UUID:
    """The user writes on WhatsApp; returns the conversation."""
    raw, headers = signed(whatsapp_text(wa_id, f"wamid.{uuid.uuid4().hex}", text))
    resp = await api.post("/webhooks/whatsapp", content=raw, headers=headers)
    assert resp.status_code == 200, resp.text
    return identity.whatsapp_conversation_id(TENANT, "555000111", wa_id)


async def history(api: httpx.AsyncClient, wa_id: str, conversation: uuid.UUID) -> list[dict[str, Any]]:
    resp = await api.get(f"/v1/conversations/{conversation}/messages", headers=token(wa_id, TENANT))
    assert resp.status_code == 200, resp.text
    messages: list[dict[str, Any]] = resp.json()["messages"]
    return messages


def replies_in(tap: Tap, conversation: uuid.UUID) -> list[ReplyGenerated]:
    return [r for r in (ReplyGenerated.model_validate_json(x.value) for x in tap.on(topics.REPLIES))
            if r.conversation_id == conversation]


async def test_a_whatsapp_reply_is_sent_once_and_its_statuses_show_on_the_reply(
        api: httpx.AsyncClient, runtime: Runtime, fake_graph: FakeGraph, tap: Tap,
        producer: AIOKafkaProducer) -> None:
    wa_id = wa_user()
    conversation = await write(api, wa_id, "Hi! Do you deliver on Sundays?")
    [sent] = await eventually(lambda: fake_graph.to(wa_id))
    assert sent.phone_number_id == "555000111" and sent.body.startswith("You asked: Hi! Do you deliver on Sundays?")

    async def read_reported() -> dict[str, Any] | None:
        turns = await history(api, wa_id, conversation)
        reply = next((t for t in turns if t["role"] == "assistant"), None)
        return reply if reply and (reply.get("delivery") or {}).get("status") == "read" else None

    reply = await eventually(read_reported)  # sent, delivered, read came back as webhooks
    assert reply["text"] == sent.body
    assert reply["delivery"]["state"] == "sent" and reply["delivery"]["parts"][0]["wamid"] == sent.wamid
    assert set(reply["delivery"]["parts"][0]["statuses"]) == {"sent", "delivered", "read"}
    assert identity.parse_send_ref(sent.callback_data) == (uuid.UUID(reply["message_id"]), 0)

    # Kafka delivers at least once: the same reply again (a redelivery, a re-publish) sends nothing.
    [record] = [r for r in tap.on(topics.REPLIES) if r.key == str(conversation).encode()]
    await producer.send_and_wait(topics.REPLIES, record.value, key=record.key)
    await asyncio.sleep(1.5)
    assert len(fake_graph.to(wa_id)) == 1


async def test_rate_limits_back_off_without_holding_up_other_conversations(
        api: httpx.AsyncClient, runtime: Runtime, fake_graph: FakeGraph) -> None:
    slow, fast = wa_user(), wa_user()
    fake_graph.script[slow] = [(429, 130429), (429, 130429), (400, 131056)]  # throughput, then per-user limit
    before = fake_graph.requests
    await write(api, slow, "First question, from a busy number")
    await eventually(lambda: fake_graph.requests > before)  # the slow one is in backoff now
    await write(api, fast, "Second question, from another number")
    [fast_sent] = await eventually(lambda: fake_graph.to(fast))
    [slow_sent] = await eventually(lambda: fake_graph.to(slow), timeout=30)
    assert fake_graph.taken.index(fast_sent) < fake_graph.taken.index(slow_sent)
    assert fake_graph.script[slow] == []  # refused three times, sent on the fourth, once


async def test_a_refused_reply_is_recorded_and_dead_lettered_with_the_reason(
        api: httpx.AsyncClient, runtime: Runtime, fake_graph: FakeGraph, tap: Tap) -> None:
    closed, other = wa_user(), wa_user()
    fake_graph.script[closed] = [(400, 131047)]  # more than 24 hours since the user wrote: templates only
    conversation = await write(api, closed, "Are you there?")
    await write(api, other, "Hello from someone else")
    await eventually(lambda: fake_graph.to(other))

    def dead_lettered() -> list[Any]:
        return [r for r in tap.on(topics.dead_letter_topic(topics.REPLIES)) if r.key == str(conversation).encode()]

    [dead] = await eventually(dead_lettered)
    headers = {k: v.decode() for k, v in dead.headers}
    assert "code 131047" in headers["x-error"]
    assert ReplyGenerated.model_validate_json(dead.value).text == ""  # the dead letter is still sealed

    async def failed() -> dict[str, Any] | None:
        turns = await history(api, closed, conversation)
        reply = next((t for t in turns if t["role"] == "assistant"), None)
        return reply if reply and reply.get("delivery") else None

    reply = await eventually(failed)
    assert reply["delivery"]["state"] == "failed" and reply["delivery"]["parts"][0]["error_code"] == 131047
    assert fake_graph.to(closed) == []


async def test_a_reply_over_the_text_limit_goes_in_parts_in_order(
        api: httpx.AsyncClient, runtime: Runtime, fake_graph: FakeGraph, tap: Tap) -> None:
    wa_id = wa_user()
    # The fake model repeats it back (402 words, under its max_tokens of 512): over 4,096 characters.
    long = " ".join(f"item-number-{i}" for i in range(400))
    conversation = await write(api, wa_id, long)
    parts = await eventually(lambda: fake_graph.to(wa_id) if len(fake_graph.to(wa_id)) >= 2 else None)
    [reply] = await eventually(lambda: replies_in(tap, conversation))
    assert len(parts) == 2 and all(len(p.body) <= 4096 for p in parts)
    assert [identity.parse_send_ref(p.callback_data) for p in parts] == [(reply.message_id, 0), (reply.message_id, 1)]
    opened = await runtime.res.sealer.open(reply)  # the event on the topic is sealed
    assert " ".join(p.body for p in parts).split() == opened.text.split()  # all of it, nothing twice
