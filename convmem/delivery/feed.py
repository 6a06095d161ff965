"""The ReplyFeed port over Kafka: the token pieces (conv.tokens.v1) and replies
(conv.replies.v1) of a conversation, or of all a user's conversations, decoded and opened,
each with a position to resume after.

A conversation's position is `<partition>-<replies offset>-<tokens offset>`: for the
conversation's partition (the same number in both topics, keyed alike), the next offset of
each topic the reader has not seen. A user's conversations are spread over every partition,
so a user's position is `u` and the next unseen offset of every partition of both topics,
packed (varints, base64url). Resuming reads the gap between a position and the live tail
from Kafka, then goes on live, so a reader can come back to any process of the edge."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import structlog
from aiokafka.structs import ConsumerRecord

from contracts import ReplyGenerated, ReplyTokensGenerated, topics
from convmem.delivery import headers
from convmem.delivery.policy import decode_event
from convmem.delivery.subscriptions import open_or_drop
from convmem.delivery.tail import Tail, Where
from convmem.errors import PoisonError, RetryableError
from convmem.ports import FeedItem
from convmem.privacy.sealing import Sealer

log = structlog.get_logger("convmem.delivery")

TOPICS = (topics.TOKENS, topics.REPLIES)  # tokens first: a reply's pieces precede it
_POSITION = re.compile(r"^(\d{1,6})-(\d{1,19})-(\d{1,19})$")
_MAX_POSITION = 400
_MODELS: dict[str, Any] = {topics.TOKENS: ReplyTokensGenerated, topics.REPLIES: ReplyGenerated}


def encode_position(partition: int, replies: int, tokens: int) -> str:
    return f"{partition}-{replies}-{tokens}"


def decode_position(value: str | None) -> tuple[int, int, int] | None:
    """(partition, replies offset, tokens offset), or None for anything else: a stale or
    foreign Last-Event-ID starts a reader live instead of failing its request."""
    found = _POSITION.match(value.strip()) if value else None
    return None if found is None else (int(found[1]), int(found[2]), int(found[3]))


def encode_positions(layout: list[Where], offsets: dict[Where, int]) -> str:
    """A user's position: the layout's size, then each topic-partition's next offset."""
    out = bytearray()
    for n in (len(layout), *(offsets[w] for w in layout)):
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
    return "u" + base64.urlsafe_b64encode(bytes(out)).decode().rstrip("=")


def decode_positions(value: str | None, layout: list[Where]) -> dict[Where, int] | None:
    """The offsets a user's position holds, or None when it is not one for this layout (a
    conversation's id, a stale one after partitions were added, garbage): start live."""
    if not value or not value.startswith("u") or len(value) > _MAX_POSITION:
        return None
    try:
        raw = base64.urlsafe_b64decode(value[1:] + "=" * (-len(value[1:]) % 4))
    except (binascii.Error, ValueError):
        return None
    numbers: list[int] = []
    n = shift = 0
    for byte in raw:
        n |= (byte & 0x7F) << shift
        shift += 7
        if shift > 63:
            return None
        if not byte & 0x80:
            numbers.append(n)
            n = shift = 0
    if shift or not numbers or numbers[0] != len(layout) or len(numbers) != len(layout) + 1:
        return None
    return dict(zip(layout, numbers[1:], strict=True))


def owner_id(tenant_id: str, user_id: str) -> bytes:
    return orjson.dumps([tenant_id, user_id])


def envelope_owner(record: ConsumerRecord) -> bytes | None:
    """Whom a reply event belongs to, from its envelope (tenant and user travel in clear;
    the text is sealed and is not opened for this)."""
    try:
        body = orjson.loads(record.value or b"")
        return owner_id(str(body["tenant_id"]), str(body["user_id"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


@dataclass
class KafkaReplyFeed:
    tail: Tail
    sealer: Callable[[], Sealer]

    @asynccontextmanager
    async def follow(self, conversation_id: UUID, after: str | None = None) -> AsyncIterator[AsyncIterator[FeedItem]]:
        key = str(conversation_id).encode()
        # Each topic's partition for this key (the same number when, as provisioned, both
        # topics have the same partition count; the position names the replies' one).
        parts = {t: self.tail.partition_of(t, key) for t in TOPICS}
        partition = parts[topics.REPLIES]
        replies, tokens = (topics.REPLIES, parts[topics.REPLIES]), (topics.TOKENS, parts[topics.TOKENS])
        decoded = decode_position(after)
        resumed = None if decoded is None or decoded[0] != partition else {replies: decoded[1], tokens: decoded[2]}
        sub = self.tail.subscribe(key)
        try:
            yield self._read(sub.start, [tokens, replies], resumed, lambda r: r.key == key,
                             lambda seen: encode_position(partition, seen[replies], seen[tokens]), sub.next)
        finally:
            self.tail.unsubscribe(sub)

    @asynccontextmanager
    async def follow_user(self, tenant_id: str, user_id: str, after: str | None = None
                          ) -> AsyncIterator[AsyncIterator[FeedItem]]:
        owner = owner_id(tenant_id, user_id)
        parts = self.tail.partitions()
        layout = [(t, p) for t in TOPICS for p in parts[t]]
        sub = self.tail.subscribe_owner(owner)
        try:
            yield self._read(sub.start, layout, decode_positions(after, layout),
                             lambda r: self.tail.owner_of(r) == owner,
                             lambda seen: encode_positions(layout, seen), sub.next)
        finally:
            self.tail.unsubscribe(sub)

    async def _read(self, start: dict[Where, int], layout: list[Where], resumed: dict[Where, int] | None,
                    match: Callable[[ConsumerRecord], bool], encode: Callable[[dict[Where, int]], str],
                    live: Callable[[], Any]) -> AsyncIterator[FeedItem]:
        """The gap from `resumed` to where following began (read back from Kafka), then the
        live records; each item's position is the next unseen offset of every topic-partition
        of `layout`, so following again after it misses nothing and repeats nothing."""
        position = {w: start[w] for w in layout}
        if resumed is not None:
            seen = {w: min(resumed[w], position[w]) for w in layout}
            for record in await self.tail.history(match, seen, position):
                seen[(record.topic, record.partition)] = record.offset + 1
                try:
                    item = await self._opened(record, encode(seen))
                except RetryableError:
                    return  # keys unreadable right now: the reader resumes from its last position
                if item is not None:
                    yield item
        while True:
            fresh: ConsumerRecord | None = await live()
            if fresh is None:
                return  # cut off: too far behind; the reader resumes from its last position
            where = (fresh.topic, fresh.partition)
            if fresh.offset < position.get(where, 0):
                continue  # already read from the gap
            try:
                item = await self._opened(fresh, encode({**position, where: fresh.offset + 1}))
            except RetryableError:
                return
            position[where] = fresh.offset + 1
            if item is not None:
                yield item

    async def _opened(self, record: ConsumerRecord, where: str) -> FeedItem | None:
        if headers.is_replay(record):
            return None  # sent back for the one group that failed it; live readers had the original
        try:
            opened = await open_or_drop(self.sealer(), decode_event(_MODELS[record.topic], record))
        except PoisonError as exc:
            log.warning("feed_record_skipped", topic=record.topic, offset=record.offset, error=str(exc))
            return None
        if opened is None:  # its subject was erased
            return None
        return FeedItem(where, opened)

