"""Key-ordered concurrency, without Kafka: records with the same key run one after another in
a lane; lanes run concurrently; at most `max_in_flight` records are admitted at once. Per
partition, what may be committed is the lowest offset not yet finished, so a crash
redelivers every unfinished record and nothing past it is ever committed.

The design follows key-ordered parallel consumers (Confluent's Parallel Consumer among
them): ordering by key rather than by partition, a commit watermark per partition, and
back-pressure by admission rather than an unbounded buffer. The consumer loop around it is
in convmem.delivery.keyed."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import structlog

log = structlog.get_logger("convmem.delivery")


class Record(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...


R = TypeVar("R", bound=Record)
Partition = tuple[str, int]


def partition_of(record: Record) -> Partition:
    return record.topic, record.partition


@dataclass
class PartitionOffsets:
    """The offsets of one partition admitted and not yet finished."""

    unfinished: set[int] = field(default_factory=set)
    highest: int = -1  # highest offset admitted

    def admit(self, offset: int) -> None:
        self.unfinished.add(offset)
        self.highest = max(self.highest, offset)

    def finish(self, offset: int) -> None:
        self.unfinished.discard(offset)

    def watermark(self) -> int | None:
        """The offset to commit: the next one a restarted consumer must read. None before any
        record was admitted (nothing to say)."""
        if self.highest < 0:
            return None
        return min(self.unfinished) if self.unfinished else self.highest + 1


class Lanes(Generic[R]):
    """Runs `handle` for admitted records: in order per (partition, key), concurrently
    across keys, never more than `max_in_flight` admitted and unfinished at once.

    `handle` is expected to deal with its own failures (the delivery policy retries and
    dead-letters); if it still raises, the record is retried after `retry_after_s` and its
    lane waits, as a partition waits in a serial consumer."""

    def __init__(self, handle: Callable[[R], Awaitable[None]], max_in_flight: int,
                 retry_after_s: float = 1.0) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._handle = handle
        self.max_in_flight = max_in_flight
        self._retry_after_s = retry_after_s
        self._queues: dict[tuple[Partition, Hashable], deque[R]] = {}
        self._tasks: dict[tuple[Partition, Hashable], asyncio.Task[None]] = {}
        self._offsets: dict[Partition, PartitionOffsets] = {}
        self._in_flight = 0
        self._changed = asyncio.Event()  # set whenever a record finishes or is dropped

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def free(self) -> int:
        return self.max_in_flight - self._in_flight

    def admit(self, record: R) -> None:
        """Queue a record behind earlier ones with its key. The caller respects `free`: this
        never blocks, so the bound is kept by fetching no more than there is room for."""
        if self._in_flight >= self.max_in_flight:
            raise RuntimeError("admitted past max_in_flight: fetch at most `free` records")
        where = partition_of(record)
        lane = (where, record.key if record.key is not None else ("no-key", record.offset))
        self._offsets.setdefault(where, PartitionOffsets()).admit(record.offset)
        self._in_flight += 1
        self._queues.setdefault(lane, deque()).append(record)
        if lane not in self._tasks:
            self._tasks[lane] = asyncio.create_task(self._run(lane))

    async def _run(self, lane: tuple[Partition, Hashable]) -> None:
        queue = self._queues[lane]
        try:
            while queue:
                record = queue[0]
                while True:
                    try:
                        await self._handle(record)
                        break
                    except Exception as exc:  # the policy could not settle it: keep the lane's order
                        log.warning("record_unsettled", topic=record.topic, partition=record.partition,
                                    offset=record.offset, error=type(exc).__name__)
                        await asyncio.sleep(self._retry_after_s)
                queue.popleft()
                self._finish(record)
        finally:
            if not queue:
                self._queues.pop(lane, None)
            self._tasks.pop(lane, None)

    def _finish(self, record: R) -> None:
        offsets = self._offsets.get(partition_of(record))
        if offsets is not None:
            offsets.finish(record.offset)
        self._in_flight -= 1
        self._changed.set()

    def watermarks(self, partitions: Iterable[Partition] | None = None) -> dict[Partition, int]:
        chosen = self._offsets if partitions is None else {p: self._offsets[p] for p in partitions
                                                           if p in self._offsets}
        return {p: w for p, o in chosen.items() if (w := o.watermark()) is not None}

    def busy(self, partitions: Iterable[Partition] | None = None) -> bool:
        wanted = None if partitions is None else set(partitions)
        return any(o.unfinished for p, o in self._offsets.items() if wanted is None or p in wanted)

    async def settle(self, partitions: Iterable[Partition] | None, deadline_s: float) -> None:
        """Let the records of these partitions (all when None) finish, for up to `deadline_s`;
        then abandon what is left (cancel it: its effects are idempotent and an abandoned
        record is never committed past, so it is delivered again)."""
        wanted = None if partitions is None else set(partitions)
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline_s
        while self.busy(wanted) and (left := until - loop.time()) > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)
        await self.abandon(wanted)

    async def abandon(self, partitions: set[Partition] | None) -> None:
        lanes = [lane for lane in list(self._tasks) if partitions is None or lane[0] in partitions]
        tasks = [self._tasks[lane] for lane in lanes]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in [lane for lane in self._queues if partitions is None or lane[0] in partitions]:
            dropped = self._queues.pop(lane)
            self._in_flight -= len(dropped)
        if tasks:
            log.warning("records_abandoned", lanes=len(tasks))
        self._changed.set()

    def forget(self, partitions: Iterable[Partition]) -> None:
        """A partition this process no longer owns: its offsets are someone else's now."""
        for p in partitions:
            self._offsets.pop(p, None)

    async def wait_for_room(self, timeout_s: float) -> None:
        if self.free > 0:
            return
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout=timeout_s)
