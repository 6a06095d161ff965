"""The ReplyFeed port over Kafka: a conversation's token pieces (conv.tokens.v1) and replies
(conv.replies.v1), decoded and opened, each with a position to resume after.

A position is `<partition>-<replies offset>-<tokens offset>`: for the conversation's
partition (the same number in both topics, keyed alike), the next offset of each topic the
reader has not seen. Resuming reads the gap between that position and the live tail from
Kafka, then goes on live, so a reader can come back to any process of the edge."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from aiokafka.structs import ConsumerRecord

from contracts import ReplyGenerated, ReplyTokensGenerated, topics
from convmem.delivery import headers
from convmem.delivery.policy import decode_event
from convmem.delivery.subscriptions import open_or_drop
from convmem.delivery.tail import Tail
from convmem.errors import PoisonError, RetryableError
from convmem.ports import FeedItem
from convmem.sealing import Sealer

log = structlog.get_logger("convmem.delivery")

TOPICS = (topics.TOKENS, topics.REPLIES)  # tokens first: a reply's pieces precede it
_POSITION = re.compile(r"^(\d{1,6})-(\d{1,19})-(\d{1,19})$")
_MODELS: dict[str, Any] = {topics.TOKENS: ReplyTokensGenerated, topics.REPLIES: ReplyGenerated}


def encode_position(partition: int, replies: int, tokens: int) -> str:
    return f"{partition}-{replies}-{tokens}"


def decode_position(value: str | None) -> tuple[int, int, int] | None:
    """(partition, replies offset, tokens offset), or None for anything else: a stale or
    foreign Last-Event-ID starts a reader live instead of failing its request."""
    found = _POSITION.match(value.strip()) if value else None
    return None if found is None else (int(found[1]), int(found[2]), int(found[3]))


@dataclass
class KafkaReplyFeed:
    tail: Tail
    sealer: Callable[[], Sealer]

    @asynccontextmanager
    async def follow(self, conversation_id: UUID, after: str | None = None) -> AsyncIterator[AsyncIterator[FeedItem]]:
        key = str(conversation_id).encode()
        sub = self.tail.subscribe(key)
        try:
            yield self._items(sub.start, key, after, sub.next)
        finally:
            self.tail.unsubscribe(sub)

    async def _items(self, start: dict[tuple[str, int], int], key: bytes, after: str | None,
                     live: Callable[[], Any]) -> AsyncIterator[FeedItem]:
        # Each topic's partition for this key (the same number when, as provisioned, both
        # topics have the same partition count; the position names the replies' one).
        parts = {t: self.tail.partition_of(t, key) for t in TOPICS}
        partition = parts[topics.REPLIES]
        now = {t: start[(t, parts[t])] for t in TOPICS}
        resumed = decode_position(after)
        if resumed is not None and resumed[0] == partition:
            seen = {topics.REPLIES: min(resumed[1], now[topics.REPLIES]),
                    topics.TOKENS: min(resumed[2], now[topics.TOKENS])}
            gap = await self.tail.history(key, {(t, parts[t]): seen[t] for t in TOPICS},
                                          {(t, parts[t]): now[t] for t in TOPICS})
            for record in gap:
                seen[record.topic] = record.offset + 1
                try:
                    item = await self._item(record, partition, seen)
                except RetryableError:
                    return  # keys unreadable right now: the reader resumes from its last position
                if item is not None:
                    yield item
        position = dict(now)
        while True:
            fresh: ConsumerRecord | None = await live()
            if fresh is None:
                return  # cut off: too far behind; the reader resumes from its last position
            if fresh.offset < position[fresh.topic]:
                continue  # already read from the gap
            try:
                item = await self._item(fresh, partition, {**position, fresh.topic: fresh.offset + 1})
            except RetryableError:
                return
            position[fresh.topic] = fresh.offset + 1
            if item is not None:
                yield item

    async def _item(self, record: ConsumerRecord, partition: int, seen: dict[str, int]) -> FeedItem | None:
        where = encode_position(partition, seen[topics.REPLIES], seen[topics.TOKENS])
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
