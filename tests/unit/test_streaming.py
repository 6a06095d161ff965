"""Live replies without Kafka: positions, what a conversation's stream shows, waiting for a
reply, and the token publisher never making the model wait."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from contracts import ReplyGenerated, ReplyTokensGenerated, TurnRecorded, identity
from convmem.delivery.feed import (
    decode_position,
    decode_positions,
    encode_position,
    encode_positions,
    envelope_owner,
    owner_id,
)
from convmem.delivery.tokens import TokenPublisher
from convmem.ports import ConversationRef, FeedItem
from services.ingest.streaming import conversation_events, reply_within, user_events
from tests.fakes import FakeDb, FakeReplyLedger

CONV = uuid.uuid4()
OWNER = ConversationRef(CONV, "t", "ana")


def turn() -> TurnRecorded:
    now = datetime.now(UTC)
    return TurnRecorded(tenant_id="t", user_id="ana", conversation_id=CONV, message_id=uuid.uuid4(), seq=1,
                        role="user", channel="http", text="hi", occurred_at=now, recorded_at=now)


def piece(to: TurnRecorded, offset: int, text: str, user: str = "ana") -> ReplyTokensGenerated:
    return ReplyTokensGenerated(tenant_id="t", user_id=user, conversation_id=to.conversation_id,
                                message_id=identity.reply_id_for(to.message_id), in_reply_to=to.message_id,
                                offset=offset, text=text)


def reply(to: TurnRecorded, text: str = "hello there") -> ReplyGenerated:
    return ReplyGenerated(tenant_id="t", user_id="ana", conversation_id=to.conversation_id,
                          message_id=identity.reply_id_for(to.message_id), in_reply_to=to.message_id, text=text,
                          model="m", occurred_at=datetime.now(UTC))


async def feed(*events: ReplyGenerated | ReplyTokensGenerated, hold: asyncio.Event | None = None
               ) -> AsyncIterator[FeedItem]:
    for i, event in enumerate(events):
        yield FeedItem(encode_position(2, i, i), event)
    if hold is not None:
        await hold.wait()


def test_positions_round_trip_and_anything_else_starts_live() -> None:
    assert decode_position(encode_position(3, 1207, 88412)) == (3, 1207, 88412)
    for junk in (None, "", "abc", "1-2", "-1-2-3", "1-2-3-4", "9" * 30):
        assert decode_position(junk) is None


def test_a_users_position_holds_every_partition_and_refuses_another_layout() -> None:
    layout = [(topic, p) for topic in ("conv.tokens.v1", "conv.replies.v1") for p in range(6)]
    offsets = {w: (i + 1) * 987_654_321 for i, w in enumerate(layout)}
    offsets[layout[3]] = 0
    position = encode_positions(layout, offsets)
    assert position.startswith("u") and len(position) < 120 and decode_positions(position, layout) == offsets
    assert decode_positions(position, layout[:-1]) is None  # partitions were added: start live
    for junk in (None, "", "u", "u!!", "3-1207-88412", "u" + "_" * 500, "u" + "gA" * 12):
        assert decode_positions(junk, layout) is None


def test_a_reply_events_owner_is_read_from_its_envelope_only() -> None:
    t = turn()
    body = piece(t, 0, "x").model_dump_json().encode()
    record = ConsumerRecord(topic="conv.tokens.v1", partition=0, offset=1, timestamp=0, timestamp_type=0,
                            key=b"k", value=body, checksum=None, serialized_key_size=1,
                            serialized_value_size=len(body), headers=())
    assert envelope_owner(record) == owner_id("t", "ana") != owner_id("t", "ben")
    record.value = b"not json"
    assert envelope_owner(record) is None


async def test_a_users_stream_shows_every_conversation_of_that_user_only() -> None:
    t, elsewhere = turn(), turn()
    other_conv = elsewhere.model_copy(update={"conversation_id": uuid.uuid4()})
    events: list[ReplyGenerated | ReplyTokensGenerated] = [piece(t, 0, "hello "), piece(other_conv, 0, "hi"), piece(t, 6, "there", user="mallory"),
              reply(t), reply(other_conv), reply(t)]
    shown = [e async for e in user_events(feed(*events), "t", "ana")]
    assert [(e.kind, e.event.text) for e in shown] == [("token", "hello "), ("token", "hi"),
                                                      ("reply", "hello there"), ("reply", "hello there")]
    assert {e.event.conversation_id for e in shown} == {CONV, other_conv.conversation_id}


async def test_a_stream_shows_the_owners_pieces_then_the_reply_once() -> None:
    t = turn()
    events: list[ReplyGenerated | ReplyTokensGenerated] = [piece(t, 0, "hello "), piece(t, 6, "there", user="mallory"), piece(t, 6, "there"), reply(t),
              piece(t, 0, "late piece"), reply(t)]  # a trailing piece and a re-published copy
    shown = [e async for e in conversation_events(feed(*events), OWNER)]
    assert [(e.kind, e.event.text) for e in shown] == [("token", "hello "), ("token", "there"),
                                                      ("reply", "hello there")]
    assert [e.position for e in shown] == ["2-0-0", "2-2-2", "2-3-3"]


async def test_waiting_returns_the_reply_from_the_feed_or_the_store_or_nothing_in_time() -> None:
    t, db = turn(), FakeDb()
    replies = FakeReplyLedger(db)
    other = reply(turn(), "an answer to something else")
    from_feed = await reply_within(feed(piece(t, 0, "x"), other, reply(t, "from the feed")), replies, t.message_id, 1)
    assert from_feed is not None and from_feed.text == "from the feed"
    hold = asyncio.Event()
    started = asyncio.get_running_loop().time()
    assert await reply_within(feed(hold=hold), replies, t.message_id, 0.2) is None
    assert asyncio.get_running_loop().time() - started < 1
    stored = reply(t, "from the store")
    await replies.claim_reply(stored)  # claimed before we looked: a retried post
    found = await reply_within(feed(hold=hold), replies, t.message_id, 5)
    assert found is not None and found.text == "from the store"


class SlowOutlet:
    """Takes 50 ms to acknowledge each publish, as a busy broker would."""

    def __init__(self) -> None:
        self.published: list[ReplyTokensGenerated] = []

    async def publish(self, events: Sequence[ReplyTokensGenerated]) -> None:
        await asyncio.sleep(0.05)
        self.published.extend(events)


async def test_token_pieces_coalesce_while_the_broker_is_slow_and_the_writer_never_waits() -> None:
    outlet = SlowOutlet()
    publisher = TokenPublisher(outlet)  # type: ignore[arg-type]  # the outlet's one method is what it uses
    stream = publisher.open(turn(), uuid.uuid4())
    loop = asyncio.get_running_loop()
    started = loop.time()
    for word in ["one ", "two ", "three ", "four ", "five"]:
        stream.write(word)  # returns at once
    assert loop.time() - started < 0.01
    await asyncio.sleep(0)  # the pump takes what is there
    stream.write(" six")
    await stream.close()
    assert "".join(p.text for p in outlet.published) == "one two three four five six"
    assert len(outlet.published) < 6  # fewer, longer pieces
    assert [p.offset for p in outlet.published] == [0, len("one two three four five")][:len(outlet.published)]


class QuickOutlet:
    """Acknowledges at once: without a time bound every token would be a piece of its own."""

    def __init__(self) -> None:
        self.published: list[ReplyTokensGenerated] = []

    async def publish(self, events: Sequence[ReplyTokensGenerated]) -> None:
        self.published.extend(events)


async def test_token_pieces_coalesce_by_time_when_the_model_streams_token_by_token() -> None:
    outlet = QuickOutlet()
    publisher = TokenPublisher(outlet, piece_interval_s=0.1)  # type: ignore[arg-type]  # its one method
    stream = publisher.open(turn(), uuid.uuid4())
    words = [f"w{i} " for i in range(20)]
    for word in words:  # 20 tokens, 10 ms apart: 200 ms of streaming
        stream.write(word)
        await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    await stream.close()
    assert asyncio.get_running_loop().time() - started < 0.05  # the last piece goes out at close, not later
    assert "".join(p.text for p in outlet.published) == "".join(words)
    assert 2 <= len(outlet.published) <= 5  # the first at once, then about one per 100 ms
    offsets = [p.offset for p in outlet.published]
    assert offsets == sorted(offsets) and offsets[0] == 0
