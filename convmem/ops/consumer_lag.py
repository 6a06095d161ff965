"""How far each consumer group is behind, per partition: the offset it committed against
the end of the log, and when the oldest record it has not handled yet was written. Read
with the admin client and a consumer of no group, so looking never moves a group."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from convmem.delivery.dead_letters import partitions_of, reader


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed here (it starts where it is told)
    start: int  # the oldest offset still in the log
    end: int
    oldest_pending_at: datetime | None = None  # when the first record not yet handled was written

    @property
    def lag(self) -> int:
        """Records written and not yet handled; a group with no position counts the whole log."""
        return max(0, self.end - max(self.start, self.committed if self.committed is not None else self.start))


async def _committed(admin: AIOKafkaAdminClient, group: str, parts: list[TopicPartition]) -> dict[TopicPartition, int]:
    try:
        found = await admin.list_consumer_group_offsets(group, partitions=parts)
    except GroupCoordinatorNotAvailableError:
        return {}  # a new broker has no coordinator until some group first commits
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def partition_lags(consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient,
                         groups: Sequence[tuple[str, str]]) -> list[list[PartitionLag]]:
    """Each (group, topic)'s partitions with their committed, first and end offsets, read with
    clients the caller owns (the status command's, or a process's lag reader's)."""
    by_group: list[list[PartitionLag]] = []
    for group, topic in groups:
        parts = await partitions_of(consumer, topic)
        if not parts:
            continue
        committed = await _committed(admin, group, parts)
        starts, ends = await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)
        by_group.append([PartitionLag(group, topic, tp.partition, committed.get(tp), starts[tp], ends[tp])
                         for tp in parts])
    return by_group


async def consumer_lag(bootstrap: str, groups: Sequence[tuple[str, str]], oldest: bool = True,
                       timeout_s: float = 5.0) -> list[PartitionLag]:
    """Each (group, topic)'s lag per partition; with `oldest`, also the time the first
    pending record of each lagging partition was written (one small fetch per partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="convmem-ops")
    consumer = reader(bootstrap)
    try:
        await admin.start()  # inside: clients that failed to start are closed too
        await consumer.start()
        # Every topic's partitions first: once the consumer is assigned partitions (to read the
        # oldest pending records), its metadata covers only the topics it was assigned.
        by_group = await partition_lags(consumer, admin, groups)
        if oldest:
            by_group = [await _with_oldest(consumer, lags, timeout_s) for lags in by_group]
        return [p for lags in by_group for p in lags]
    finally:
        await consumer.stop()
        await admin.close()


async def _with_oldest(consumer: AIOKafkaConsumer, lags: list[PartitionLag], timeout_s: float) -> list[PartitionLag]:
    pending = {TopicPartition(p.topic, p.partition): p for p in lags if p.lag > 0}
    if not pending:
        return lags
    consumer.assign(list(pending))
    for tp, p in pending.items():
        consumer.seek(tp, max(p.start, p.committed if p.committed is not None else p.start))
    stamps: dict[TopicPartition, datetime] = {}
    deadline = time.monotonic() + timeout_s
    while len(stamps) < len(pending) and time.monotonic() < deadline:
        waiting = [tp for tp in pending if tp not in stamps]
        for tp, records in (await consumer.getmany(*waiting, timeout_ms=500, max_records=1)).items():
            if records:
                stamps[tp] = datetime.fromtimestamp(records[0].timestamp / 1000, UTC)
    return [PartitionLag(p.group, p.topic, p.partition, p.committed, p.start, p.end,
                         stamps.get(TopicPartition(p.topic, p.partition))) for p in lags]


async def group_members(bootstrap: str, groups: Sequence[str]) -> dict[str, int | None]:
    """How many consumers each group has right now (0: nothing runs that consumes as it, so
    its lag waits for nobody); None where the broker could not say (no coordinator yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="convmem-ops")
    members: dict[str, int | None] = {}
    try:
        await admin.start()
        for group in dict.fromkeys(groups):
            try:
                # One group per request: this client misreads a response describing several.
                found = (await admin.describe_consumer_groups([group]))[0].to_object()["groups"]
            except GroupCoordinatorNotAvailableError:
                members[group] = None
                continue
            members[group] = sum(len(g["members"]) for g in found if g["group"] == group and g["error_code"] == 0)
        return members
    finally:
        await admin.close()


async def topic_sizes(bootstrap: str, names: Sequence[str]) -> dict[str, int]:
    """Records each topic holds now (end minus beginning, over its partitions)."""
    consumer = reader(bootstrap)
    try:
        await consumer.start()
        sizes: dict[str, int] = {}
        for name in names:
            parts = await partitions_of(consumer, name)
            if not parts:
                continue
            starts, ends = await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)
            sizes[name] = sum(ends[tp] - starts[tp] for tp in parts)
        return sizes
    finally:
        await consumer.stop()
