"""Replies at the speed of the model: many conversations answered at once, each in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from composition.runtime import Runtime
from tests.conftest import eventually, token, unique
from tests.e2e.test_pipeline import post
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.stack


@pytest.fixture
async def slow(fake_llm: FakeLLM) -> AsyncIterator[FakeLLM]:
    fake_llm.latency_s, fake_llm.peak_in_flight = 0.3, 0
    yield fake_llm
    fake_llm.latency_s = 0.0


async def test_replies_and_their_seq_follow_the_turns_of_one_conversation(
        api: httpx.AsyncClient, runtime: Runtime, slow: FakeLLM) -> None:
    user = unique("order")
    first = await post(api, user, "turn 0: tell me something")
    conv, ids = first["conversation_id"], [first["message_id"]]
    for i in range(1, 20):
        ids.append((await post(api, user, f"turn {i}: and then?", conversation_id=conv))["message_id"])

    async def history() -> list[dict[str, Any]] | None:
        resp = await api.get(f"/v1/conversations/{conv}/messages", params={"limit": 100}, headers=token(user))
        messages: list[dict[str, Any]] = resp.json()["messages"]
        return messages if sum(m["role"] == "assistant" for m in messages) == len(ids) else None

    messages = await eventually(history, timeout=90)
    in_order = sorted(messages, key=lambda m: m["seq"])
    assert [m["message_id"] for m in in_order if m["role"] == "user"] == ids
    assert [m["in_reply_to"] for m in in_order if m["role"] == "assistant"] == ids  # replies in turn order


async def test_many_conversations_are_answered_at_once(
        api: httpx.AsyncClient, runtime: Runtime, slow: FakeLLM) -> None:
    users = [unique("many") for _ in range(12)]
    accepted = await asyncio.gather(*(post(api, u, "hello, are you there?") for u in users))

    async def all_answered() -> bool:
        counts = await asyncio.gather(*(api.get(f"/v1/conversations/{a['conversation_id']}/messages",
                                                headers=token(u)) for u, a in zip(users, accepted, strict=True)))
        # 404 until the conversation's first turn is recorded
        return all(c.status_code == 200 and any(m["role"] == "assistant" for m in c.json()["messages"])
                   for c in counts)

    await eventually(all_answered, timeout=60)
    assert slow.peak_in_flight >= 6  # one at a time would never go past 1
