"""The delivery layer without a broker: which failures are retried and which dead-lettered,
and how an outlet seals and orders what it publishes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel

from contracts import MessageReceived, PiiScrubbed, TurnRecorded, topics
from convmem.delivery import DeliveryPolicy, Outlet, decode_event, open_or_drop
from convmem.errors import PoisonError, PublishUnconfirmed, RetryableError
from convmem.privacy.sealing import Sealer
from tests.fakes import fake_storage


class RecordingBroker:
    """Stands in for the broker's publish when the policy dead-letters."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, str]]] = []

    async def publish(self, value: bytes, *, topic: str, key: bytes | None, headers: dict[str, str]) -> None:
        self.sent.append((topic, value, headers))


class RecordingPublisher:
    """As FastStream's publisher with no_confirm: the event is queued at once, in call order,
    and the returned future settles when the broker acknowledges it (after `delay_s`)."""

    def __init__(self, delay_s: float = 0.0, fail: int | None = None) -> None:
        self.sent: list[tuple[bytes, BaseModel]] = []
        self.delay_s, self.fail = delay_s, fail

    async def publish(self, event: BaseModel, *, key: bytes, no_confirm: bool = False) -> asyncio.Future[None]:
        assert no_confirm, "the outlet must not wait for one acknowledgement before sending the next"
        self.sent.append((key, event))
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failed = self.fail is not None and len(self.sent) == self.fail
        asyncio.get_running_loop().call_later(
            self.delay_s, lambda: ack.set_exception(RuntimeError("not acknowledged")) if failed else ack.set_result(None))
        return ack


def record(value: bytes, topic: str = topics.TURNS) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic=topic, partition=0, offset=7, timestamp=0, timestamp_type=0, key=b"k", value=value,
                          checksum=None, serialized_key_size=1, serialized_value_size=len(value), headers=())


def policy(max_attempts: int = 3) -> tuple[DeliveryPolicy, RecordingBroker]:
    broker = RecordingBroker()
    p = DeliveryPolicy(max_attempts=max_attempts, backoff_base_s=0.001, backoff_max_s=0.001)
    p.broker = broker  # type: ignore[assignment]  # only publish is used
    return p, broker


def failing(times: int, exc: Exception) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"

    return call, calls


def said(conv: uuid.UUID, text: str) -> MessageReceived:
    return MessageReceived(tenant_id="t", user_id="ana", conversation_id=conv, message_id=uuid.uuid4(), text=text,
                           occurred_at=datetime.now(UTC))


async def test_poison_is_dead_lettered_at_once_with_its_reason() -> None:
    p, broker = policy()
    call, calls = failing(1, PoisonError("conversation belongs to another user"))
    assert await p.run(call, [record(b"{}")], "convmem.indexer.embed") is None
    assert len(calls) == 1 and p.dead_lettered == 1
    topic, value, headers = broker.sent[0]
    assert topic == topics.dead_letter_topic(topics.TURNS) and value == b"{}"
    assert "another user" in headers["x-error"] and headers["x-original-offset"] == "7"
    assert headers["x-consumer-group"] == "convmem.indexer.embed"  # which of the topic's groups failed


async def test_a_programming_error_is_retried_then_dead_lettered_with_its_reason() -> None:
    p, broker = policy(max_attempts=3)
    call, calls = failing(10, ValueError("a bug, not bad input"))
    assert await p.run(call, [record(b"{}")], "convmem.indexer.embed") is None
    assert len(calls) == 3 and p.dead_lettered == 1
    assert broker.sent[0][2]["x-error"].startswith("exhausted 3 attempts: ValueError: a bug")


async def test_a_transient_error_is_retried_in_place_and_never_dead_lettered() -> None:
    p, broker = policy(max_attempts=1)
    call, calls = failing(4, RetryableError("postgres unavailable"))
    assert await p.run(call, [record(b"{}")], "convmem.indexer.embed") == "done"
    assert len(calls) == 5 and broker.sent == []


def test_only_our_validation_makes_a_record_poison() -> None:
    with pytest.raises(PoisonError, match="invalid TurnRecorded"):
        decode_event(TurnRecorded, record(b'{"not": "a turn"}'))
    with pytest.raises(PoisonError):
        decode_event(TurnRecorded, record(b"\xff not json"))


async def test_an_outlet_seals_personal_text_and_keeps_order_per_key() -> None:
    storage = fake_storage()
    sealer = Sealer(storage.keys)
    publisher = RecordingPublisher(delay_s=0.001)
    outlet: Outlet[Any] = Outlet(publisher, lambda: sealer)
    a, b = uuid.uuid4(), uuid.uuid4()
    events = [said(a, "first"), said(b, "other"), said(a, "second"), said(a, "third")]
    await outlet.publish(events)
    sent = [e for _, e in publisher.sent if isinstance(e, MessageReceived)]
    assert all(e.text == "" and e.sealed is not None for e in sent)  # nothing readable leaves unsealed
    in_a = [e.message_id for k, e in publisher.sent if k == str(a).encode() and isinstance(e, MessageReceived)]
    assert in_a == [events[0].message_id, events[2].message_id, events[3].message_id]
    opened = [await open_or_drop(sealer, e) for e in sent]
    assert sorted(o.text for o in opened if o is not None) == ["first", "other", "second", "third"]

    audit = PiiScrubbed(tenant_id="t", conversation_id=a, message_id=uuid.uuid4(), kinds={"EMAIL": 1})
    await outlet.publish([audit])
    assert publisher.sent[-1] == (str(a).encode(), audit)  # no personal text: published as it is


async def test_an_event_of_an_erased_subject_is_dropped_not_failed() -> None:
    storage = fake_storage()
    sealer = Sealer(storage.keys, ttl_s=0)
    sealed = await sealer.seal(said(uuid.uuid4(), "my card is 4111 1111 1111 1111"))
    request = await storage.privacy.request_erasure(uuid.uuid4(), "t", "ana", "ana", datetime.now(UTC))
    await storage.privacy.erase_subject(request.request_id, "t", "ana")
    assert await open_or_drop(sealer, sealed) is None


async def test_an_outlet_sends_a_large_batch_without_waiting_for_each_ack_and_reports_failure() -> None:
    sealer = Sealer(fake_storage().keys)
    conv = uuid.uuid4()
    events = [said(conv, f"message {i}") for i in range(500)]  # one key: a webhook from one sender
    slow = RecordingPublisher(delay_s=0.05)
    started = asyncio.get_running_loop().time()
    outlet: Outlet[MessageReceived] = Outlet(slow, lambda: sealer)
    await outlet.publish(events)
    assert asyncio.get_running_loop().time() - started < 2  # not 500 x 50 ms one after another
    sent = [e for _, e in slow.sent if isinstance(e, MessageReceived)]
    assert [e.message_id for e in sent] == [e.message_id for e in events]  # in order
    failing = RecordingPublisher(fail=250)
    broken: Outlet[MessageReceived] = Outlet(failing, lambda: sealer)
    with pytest.raises(RuntimeError, match="not acknowledged"):
        await broken.publish(events)
    assert len(failing.sent) == 500  # the caller answers "retry": what went out is deduplicated then


class StuckPublisher(RecordingPublisher):
    """A broker that is gone: with `hand_off`, the producer takes the event into its buffer and
    no acknowledgement comes; without, the hand-off itself never returns (the buffer is full)."""

    def __init__(self, hand_off: bool) -> None:
        super().__init__()
        self.hand_off = hand_off

    async def publish(self, event: BaseModel, *, key: bytes, no_confirm: bool = False) -> asyncio.Future[None]:
        if not self.hand_off:
            await asyncio.Event().wait()
        self.sent.append((key, event))
        return asyncio.get_running_loop().create_future()


async def test_an_outlet_with_a_deadline_says_whether_the_producer_holds_what_it_could_not_confirm() -> None:
    sealer = Sealer(fake_storage().keys)
    events = [said(uuid.uuid4(), "hello")]
    held: Outlet[MessageReceived] = Outlet(StuckPublisher(hand_off=True), lambda: sealer, confirm_timeout_s=0.05)
    with pytest.raises(PublishUnconfirmed, match="not acknowledged"):
        await held.publish(events)  # in the producer's buffer: it may still go out
    never: Outlet[MessageReceived] = Outlet(StuckPublisher(hand_off=False), lambda: sealer, confirm_timeout_s=0.05)
    with pytest.raises(TimeoutError):
        await never.publish(events)  # never handed over: not published, a plain failure
    failing: Outlet[MessageReceived] = Outlet(RecordingPublisher(fail=1), lambda: sealer, confirm_timeout_s=1)
    with pytest.raises(PublishUnconfirmed, match="1 failed"):
        await failing.publish(events)


async def test_a_retried_batch_dead_letters_its_poison_record_once() -> None:
    p, broker = policy()
    poison, good = record(b"{}"), record(b'{"ok": 1}')
    poison.offset, good.offset = 7, 8
    attempts: list[int] = []

    async def batch() -> str:
        attempts.append(1)
        await p.dead_letter(poison, "invalid TurnRecorded", "convmem.indexer.embed")  # alone, inside the batch
        if len(attempts) == 1:
            raise RetryableError("postgres unavailable")  # then the whole batch is run again
        return "done"

    assert await p.run(batch, [poison, good], "convmem.indexer.embed") == "done"
    assert len(attempts) == 2 and len(broker.sent) == 1 and p.dead_lettered == 1
