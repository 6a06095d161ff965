"""A Kafka consumer that processes records concurrently, in order per key (conversation), with
honest offsets (see convmem.delivery.lanes for the mechanism).

- Fetching stops when `max_in_flight` records are unfinished: the assigned partitions are
  paused (the consumer keeps polling, so the group does not think it died) and resumed when
  room frees up. Nothing is buffered beyond the bound.
- Offsets are committed every `commit_interval_s`, per partition up to the lowest
  unfinished offset; never past a record that has not finished.
- On revocation (a rebalance) and on shutdown, in-flight records of the partitions being
  given up get `settle_s` to finish; what is left is abandoned, the watermarks are
  committed, and the new owner starts from the first unfinished record. The idempotent
  effects (record once, one reply per turn) make the redelivery harmless.

FastStream's own concurrent subscribers either commit before processing or only run
partitions in parallel, neither of which keeps both guarantees; this is the small mechanism
written once instead."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from convmem.delivery.lanes import Lanes, Partition

log = structlog.get_logger("convmem.delivery")


@dataclass
class KeyedConsumer:
    bootstrap: str
    topic: str
    group_id: str
    handle: Callable[[ConsumerRecord], Awaitable[None]]
    max_in_flight: int = 64
    commit_interval_s: float = 0.5
    settle_s: float = 10.0
    client_id: str = "convmem"
    _consumer: AIOKafkaConsumer | None = None
    _lanes: Lanes[ConsumerRecord] | None = None
    _task: asyncio.Task[None] | None = None
    _assigned: set[TopicPartition] = field(default_factory=set)
    _committed: dict[Partition, int] = field(default_factory=dict)
    _stopping: bool = False
    turned_at: float = field(default_factory=time.monotonic)  # the fetch loop's last turn, for liveness

    @property
    def assigned(self) -> frozenset[TopicPartition]:
        return frozenset(self._assigned)

    def failure(self) -> str | None:
        """Why this consumer no longer fetches, when its loop ended without being asked to."""
        if self._task is None or not self._task.done() or self._stopping:
            return None
        if self._task.cancelled():
            return "fetch loop cancelled"
        exc = self._task.exception()
        return f"fetch loop died: {type(exc).__name__}" if exc is not None else "fetch loop ended"

    async def start(self) -> None:
        self._lanes = Lanes(self.handle, self.max_in_flight)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
        )
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"keyed-consumer:{self.group_id}")

    async def stop(self) -> None:
        """Stop fetching, let in-flight records finish (up to `settle_s`), commit, leave."""
        self._stopping = True
        if self._task is not None:
            await self._task
        if self._lanes is not None:
            await self._lanes.settle(None, self.settle_s)
        await self.commit()
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self) -> None:
        assert self._consumer is not None and self._lanes is not None
        consumer, lanes = self._consumer, self._lanes
        last_commit = time.monotonic()
        paused = False
        while not self._stopping:
            self.turned_at = time.monotonic()
            if lanes.free <= 0:
                consumer.pause(*self._assigned)  # again each time: a partition may be new
                paused = True
            elif paused:
                consumer.resume(*self._assigned)
                paused = False
            try:
                batch = await consumer.getmany(timeout_ms=100, max_records=max(1, lanes.free))
            except KafkaError as exc:
                log.warning("fetch_failed", group=self.group_id, error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                if tp not in self._assigned:
                    continue  # revoked while this batch was on its way
                for record in records:
                    if lanes.free <= 0:
                        consumer.seek(tp, record.offset)  # no room: fetched again later, in order
                        break
                    lanes.admit(record)
            if paused:
                await lanes.wait_for_room(0.1)
            if time.monotonic() - last_commit >= self.commit_interval_s:
                await self.commit()
                last_commit = time.monotonic()

    async def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Commit each partition's watermark that moved since the last commit."""
        if self._consumer is None or self._lanes is None:
            return
        wanted = self._assigned if partitions is None else partitions
        marks = self._lanes.watermarks((tp.topic, tp.partition) for tp in wanted)
        moved = {TopicPartition(*p): w for p, w in marks.items() if self._committed.get(p) != w}
        if not moved:
            return
        try:
            await self._consumer.commit(moved)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance is under way or the broker is away: the next commit (or the
            # revocation hook) writes these watermarks, or the new owner redelivers.
            log.warning("commit_failed", group=self.group_id, error=type(exc).__name__)
            return
        self._committed.update({(tp.topic, tp.partition): w for tp, w in moved.items()})

    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        assert self._lanes is not None
        parts = {(tp.topic, tp.partition) for tp in revoked}
        self._assigned -= revoked
        await self._lanes.settle(parts, self.settle_s)
        await self.commit(revoked)
        self._lanes.forget(parts)
        for p in parts:
            self._committed.pop(p, None)

    def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._assigned |= assigned


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    def __init__(self, owner: KeyedConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._owner.partitions_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._owner.partitions_assigned(set(assigned))


async def stop_all(consumers: list[KeyedConsumer]) -> None:
    for c in consumers:
        with contextlib.suppress(Exception):
            await c.stop()
