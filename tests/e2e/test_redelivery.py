"""Redelivery inside one batch: the same inbound event twice in a row is recorded and
announced once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from composition.runtime import Runtime
from contracts import MessageReceived, TurnRecorded, topics
from tests.conftest import Tap, eventually, unique

pytestmark = pytest.mark.stack


async def test_the_same_message_twice_in_one_batch_is_announced_once(
        runtime: Runtime, tap: Tap, producer: AIOKafkaProducer) -> None:
    event = MessageReceived(tenant_id="default", user_id=unique("dup"), conversation_id=uuid.uuid4(),
                            message_id=uuid.uuid4(), text="said once, delivered twice",
                            occurred_at=datetime.now(UTC), reply_expected=False)
    raw = event.model_dump_json().encode()
    # Sent back to back and flushed together, so the recorder fetches both in one batch; a
    # later message of the same conversation (same partition) marks when that batch is done.
    sentinel = event.model_copy(update={"message_id": uuid.uuid4(), "text": "and then this"})
    for payload in (raw, raw, sentinel.model_dump_json().encode()):
        await producer.send(topics.INBOUND, payload, key=event.key)
    await producer.flush()

    def announced(message_id: uuid.UUID) -> list[TurnRecorded]:
        turns = [TurnRecorded.model_validate_json(r.value) for r in tap.on(topics.TURNS) if r.key == event.key]
        return [t for t in turns if t.message_id == message_id]

    [after] = await eventually(lambda: announced(sentinel.message_id))
    [turn] = announced(event.message_id)  # exactly one announcement of the duplicated message
    assert (turn.seq, after.seq) == (1, 2)
