"""Two senders given the same reply at once (a rebalance hands a partition over while the
old owner is still sending): the claim in Postgres lets one send, the other backs off and
then finds it sent. Real Postgres, real HTTP to a Cloud API stand-in that answers slowly."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from contracts import ReplyGenerated, identity
from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.whatsapp import GraphWhatsAppApi
from convmem.errors import RetryableError
from services.sender.sending import SendPolicy, send_reply
from tests.fake_graph import TOKEN, FakeGraph

pytestmark = pytest.mark.stack


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    g = FakeGraph(latency_s=0.3)
    await g.start()
    yield g
    await g.stop()


async def test_two_senders_send_one_reply_once(store: PostgresStorage, graph: FakeGraph) -> None:
    turn = uuid.uuid4()
    reply = ReplyGenerated(tenant_id=f"t-{uuid.uuid4().hex[:8]}", user_id="ana", conversation_id=uuid.uuid4(),
                           message_id=identity.reply_id_for(turn), in_reply_to=turn, channel="whatsapp",
                           text="See you on Sunday!", model="m", occurred_at=datetime.now(UTC),
                           metadata={"whatsapp": {"phone_number_id": "555000111", "to": "34600999888"}})
    senders = [GraphWhatsAppApi(graph.base_url, TOKEN), GraphWhatsAppApi(graph.base_url, TOKEN)]
    try:
        outcomes = await asyncio.gather(*(send_reply(reply, sends=store.sends, api=api, policy=SendPolicy())
                                          for api in senders), return_exceptions=True)
        assert 1 in outcomes and any(isinstance(o, RetryableError) for o in outcomes)  # one sent, one backs off
        assert await send_reply(reply, sends=store.sends, api=senders[1], policy=SendPolicy()) == 0  # its retry
    finally:
        for api in senders:
            await api.close()
    assert len(graph.taken) == 1
