"""The live end of some topics, shared by every reader in one process (the HTTP edge's event
streams and `wait`): one consumer without a group reads every partition from the end and
hands each record to the subscriptions of its key.

- The tail never waits on a reader: each subscription has a bounded queue, and a reader
  that lets it fill up is cut off (its iterator ends) instead of slowing the others. It can
  come back with the last position it saw and read the gap from Kafka (`history`).
- Positions are Kafka's own offsets, so any process serving the same topics can resume a
  reader that another one served, including after a restart.
- Records are routed by their key (a conversation id). Readers of a whole owner (a user's
  every conversation) are routed by an `owner` function the tail is given; it is asked
  once per key (a conversation never changes owner) and only while such readers exist."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord
from cachetools import LRUCache

log = structlog.get_logger("convmem.delivery")

Where = tuple[str, int]  # (topic, partition)
Owner = Callable[[ConsumerRecord], bytes | None]  # who a record belongs to, None if unknown
_OWNERS_REMEMBERED = 10_000  # keys whose owner is remembered, the least recently seen forgotten first


@dataclass(eq=False)
class Subscription:
    key: bytes
    start: dict[Where, int]  # the next offset of each topic-partition when it began: live from there
    queue: asyncio.Queue[ConsumerRecord | None]
    cut_off: bool = False
    by_owner: bool = False  # routed by the owner of its records, not by their key

    def offer(self, record: ConsumerRecord) -> None:
        if self.cut_off:
            return
        if self.queue.qsize() >= self.queue.maxsize - 1:  # keep room for the end marker
            self.cut_off = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(record)

    async def next(self) -> ConsumerRecord | None:
        """The next record of this key, or None once cut off."""
        return await self.queue.get()


@dataclass
class Tail:
    bootstrap: str
    topics: Sequence[str]
    queue_size: int = 1024
    client_id: str = "convmem-tail"
    owner: Owner | None = None
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None
    _positions: dict[Where, int] = field(default_factory=dict)
    _partitions: dict[str, list[int]] = field(default_factory=dict)
    _subs: dict[bytes, set[Subscription]] = field(default_factory=dict)
    _owner_subs: dict[bytes, set[Subscription]] = field(default_factory=dict)
    # key -> owner, memoised for the keys seen lately (one per conversation: bounded)
    _owners: LRUCache[bytes, bytes | None] = field(default_factory=lambda: LRUCache(_OWNERS_REMEMBERED))

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    client_id=self.client_id)
        await consumer.start()
        self._consumer = consumer
        parts: list[TopicPartition] = []
        for topic in self.topics:
            known = consumer.partitions_for_topic(topic)
            if not known:
                await consumer._client.force_metadata_update()  # no public way to wait for one topic
                known = consumer.partitions_for_topic(topic) or {0}
            self._partitions[topic] = sorted(known)
            parts += [TopicPartition(topic, p) for p in sorted(known)]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            self._positions[(tp.topic, tp.partition)] = await consumer.position(tp)
        self._task = asyncio.create_task(self._run(), name="tail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subs in [*self._subs.values(), *self._owner_subs.values()]:
            for sub in subs:
                sub.cut_off = True
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)
        if self._consumer is not None:
            await self._consumer.stop()

    def partition_of(self, topic: str, key: bytes) -> int:
        """The partition the producers' default partitioner puts this key in."""
        parts = self._partitions[topic]
        partition: int = DefaultPartitioner()(key, parts, parts)
        return partition

    def partitions(self) -> dict[str, list[int]]:
        """Each topic's partitions, as read at start."""
        return {t: list(p) for t, p in self._partitions.items()}

    def subscribe(self, key: bytes) -> Subscription:
        """The live records of one key."""
        return self._register(self._subs, Subscription(key, dict(self._positions), asyncio.Queue(self.queue_size)))

    def subscribe_owner(self, owner: bytes) -> Subscription:
        """The live records of every key `owner` (as the tail's owner function says) has."""
        if self.owner is None:
            raise ValueError("this tail was given no owner function")
        sub = Subscription(owner, dict(self._positions), asyncio.Queue(self.queue_size), by_owner=True)
        return self._register(self._owner_subs, sub)

    @staticmethod
    def _register(table: dict[bytes, set[Subscription]], sub: Subscription) -> Subscription:
        # No await between the snapshot of positions and the registration: every record
        # dispatched after it has an offset at or past `start`, none before it goes live.
        table.setdefault(sub.key, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        table = self._owner_subs if sub.by_owner else self._subs
        subs = table.get(sub.key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del table[sub.key]

    def owner_of(self, record: ConsumerRecord) -> bytes | None:
        if self.owner is None or record.key is None:
            return None
        if record.key in self._owners:
            known: bytes | None = self._owners[record.key]
            return known
        found = self._owners[record.key] = self.owner(record)
        return found

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=500, max_records=2000)
            except KafkaError as exc:
                log.warning("tail_fetch_failed", error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                for record in records:
                    self._positions[(tp.topic, tp.partition)] = record.offset + 1
                    for sub in self._subs.get(record.key, ()):
                        sub.offer(record)
                    if self._owner_subs:
                        for sub in self._owner_subs.get(self.owner_of(record) or b"", ()):
                            sub.offer(record)

    async def history(self, match: Callable[[ConsumerRecord], bool], since: dict[Where, int],
                      until: dict[Where, int], *, max_scan: int = 20_000, timeout_s: float = 10.0
                      ) -> list[ConsumerRecord]:
        """The records that `match` from `since` up to (not including) `until` in each
        topic-partition, read by a consumer of its own; at most the last `max_scan` offsets
        of each are read (older ones are left to the history API). In time order, ties in
        the order of `topics`, and always in offset order within a partition (a reader's
        position per partition must never pass a record it has not been given)."""
        wanted = {w: (since[w], until[w]) for w in until if w in since and since[w] < until[w]}
        if not wanted:
            return []
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", client_id=self.client_id)
        await consumer.start()
        found: dict[Where, list[ConsumerRecord]] = {}
        try:
            tps = [TopicPartition(*w) for w in wanted]
            consumer.assign(tps)
            first = await consumer.beginning_offsets(tps)
            for tp in tps:
                low, high = wanted[(tp.topic, tp.partition)]
                consumer.seek(tp, max(low, first[tp], high - max_scan))
            left = {tp for tp in tps if await consumer.position(tp) < wanted[(tp.topic, tp.partition)][1]}
            deadline = time.monotonic() + timeout_s
            while left and time.monotonic() < deadline:
                batch = await consumer.getmany(*left, timeout_ms=200)
                for tp, records in batch.items():
                    high = wanted[(tp.topic, tp.partition)][1]
                    found.setdefault((tp.topic, tp.partition), []).extend(
                        r for r in records if r.offset < high and match(r))
                    if records and records[-1].offset + 1 >= high:
                        left.discard(tp)
            if left:
                log.warning("tail_history_incomplete", partitions=len(left))
        finally:
            await consumer.stop()
        order = {t: i for i, t in enumerate(self.topics)}
        # A merge, not a sort: producers' timestamps need not rise within a partition.
        return list(heapq.merge(*found.values(), key=lambda r: (r.timestamp, order.get(r.topic, 0), r.partition)))
