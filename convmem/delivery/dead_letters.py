"""Dead letters as operators see them: read from the `<topic>.dlq` topics, selected by
consumer group, time and reason, and sent back to the topic they came from for the one
group that failed them (convmem.delivery.headers says how the delivery layer honours it).

Reading assigns the partitions and reads from the start (or from the first record at or
after `since`) to the end they had when reading began: no consumer group, nothing
committed, so listing never moves anything."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts import topics
from convmem.delivery import headers as h
from convmem.ports import Position


def dead_letter_topics(names: Iterable[str] = ()) -> list[str]:
    """The DLQ topics meant by `names` (a topic or its `.dlq`); none named: every one."""
    wanted = list(names) or list(topics.CONSUMED_TOPICS)
    found = [n if n.endswith(topics.DLQ_SUFFIX) else topics.dead_letter_topic(n) for n in wanted]
    return list(dict.fromkeys(found))


def _instant(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class DeadLetter:
    position: Position  # in the DLQ topic
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    timestamp_ms: int

    @classmethod
    def of(cls, record: ConsumerRecord) -> DeadLetter:
        return cls(Position(record.topic, record.partition, record.offset), record.key, record.value or b"",
                   h.as_text(record.headers), record.timestamp)

    @property
    def group(self) -> str | None:
        return self.headers.get(h.CONSUMER_GROUP)

    @property
    def reason(self) -> str:
        return self.headers.get(h.ERROR, "")

    @property
    def replay_of(self) -> str | None:
        return self.headers.get(h.REPLAY_OF)

    @property
    def failed_at(self) -> datetime:
        try:
            return datetime.fromisoformat(self.headers[h.FAILED_AT])
        except (KeyError, ValueError):
            return _instant(self.timestamp_ms)  # when it reached the DLQ: as good, a moment later

    @property
    def original(self) -> Position | None:
        """Where the record was when its group failed it (None: a record no policy wrote)."""
        try:
            return Position(self.headers[h.ORIGINAL_TOPIC], int(self.headers[h.ORIGINAL_PARTITION]),
                            int(self.headers[h.ORIGINAL_OFFSET]))
        except (KeyError, ValueError):
            return None

    @property
    def tenant_id(self) -> str | None:
        """The tenant the event names; None for a record that is not an event we can read."""
        try:
            decoded = json.loads(self.value)
        except ValueError:
            return None
        tenant = decoded.get("tenant_id") if isinstance(decoded, dict) else None
        return tenant if isinstance(tenant, str) else None

    @property
    def original_at(self) -> datetime | None:
        stamp = self.headers.get(h.ORIGINAL_TIMESTAMP, "")
        return _instant(int(stamp)) if stamp.lstrip("-").isdigit() else None


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on; every criterion left empty admits all."""

    groups: frozenset[str] = frozenset()  # full consumer group names
    since: datetime | None = None  # failed at or after (inclusive)
    until: datetime | None = None  # failed before (exclusive)
    reason: str | None = None  # a part of the reason, any case
    reason_pattern: re.Pattern[str] | None = None
    positions: frozenset[Position] = field(default_factory=frozenset)
    # One tenant's dead letters (the console's admins): those naming it, and those naming no
    # tenant at all (records that are not readable events, so they show nobody's data).
    tenant: str | None = None

    def admits(self, letter: DeadLetter) -> bool:
        failed = letter.failed_at
        return ((not self.positions or letter.position in self.positions)
                and (self.tenant is None or letter.tenant_id in (None, self.tenant))
                and (not self.groups or letter.group in self.groups)
                and (self.since is None or failed >= self.since)
                and (self.until is None or failed < self.until)
                and (self.reason is None or self.reason.casefold() in letter.reason.casefold())
                and (self.reason_pattern is None or self.reason_pattern.search(letter.reason) is not None))


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    known = consumer.partitions_for_topic(topic)
    if not known:
        await consumer._client.force_metadata_update()  # no public way to wait for one topic's metadata
        known = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(known)]


def reader(bootstrap: str) -> AIOKafkaConsumer:
    """A consumer of no group: it reads where it is told and commits nothing."""
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            client_id="convmem-ops", auto_offset_reset="earliest")


async def scan(bootstrap: str, dlq_topics: Sequence[str], since: datetime | None = None,
               stall_s: float = 10.0) -> AsyncIterator[list[DeadLetter]]:
    """Every dead letter of these topics, in batches, oldest first per partition; with
    `since`, from the first record written at or after it. Stops at the end each partition
    had when the scan began, or after `stall_s` without progress (a broker gone away)."""
    consumer = reader(bootstrap)
    try:
        await consumer.start()  # inside: a consumer that failed to start is closed too
        parts = [tp for t in dlq_topics for tp in await partitions_of(consumer, t)]
        if not parts:
            return
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
            starts = {tp: ends[tp] if found.get(tp) is None else max(starts[tp], found[tp].offset) for tp in parts}
        for tp in parts:
            consumer.seek(tp, starts[tp])
        left = {tp for tp in parts if starts[tp] < ends[tp]}
        moved = time.monotonic()
        while left and time.monotonic() - moved < stall_s:
            batch = await consumer.getmany(*left, timeout_ms=500)
            letters = [DeadLetter.of(r) for tp, records in batch.items() for r in records if r.offset < ends[tp]]
            if letters:
                moved = time.monotonic()
                yield letters
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
        if left:
            raise TimeoutError(f"dead letters stopped arriving from {sorted(str(tp) for tp in left)}")
    finally:
        await consumer.stop()


async def read_one(bootstrap: str, position: Position, timeout_s: float = 10.0) -> DeadLetter | None:
    """The dead letter at `position`, or None when there is none (never written, or gone
    with the topic's retention)."""
    consumer = reader(bootstrap)
    try:
        await consumer.start()  # inside: a consumer that failed to start is closed too
        tp = TopicPartition(position.topic, position.partition)
        if tp not in await partitions_of(consumer, position.topic):
            return None
        consumer.assign([tp])
        start, end = (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
        if not start <= position.offset < end:
            return None
        consumer.seek(tp, position.offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                return DeadLetter.of(record) if record.offset == position.offset else None
        raise TimeoutError(f"no answer from the partition of {position}")
    finally:
        await consumer.stop()


class Republisher:
    """Sends dead letters back where they came from, acknowledged by every in-sync replica."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                          client_id="convmem-ops")

    async def __aenter__(self) -> Republisher:
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._producer.stop()

    async def send(self, letter: DeadLetter, group: str) -> Position:
        """Republish `letter` with its original key and headers, addressed to `group`; its
        new place in the original topic. The key picks the partition, as it did the first
        time; a record without a key goes back to its original partition."""
        original = letter.original
        if original is None:
            raise ValueError(f"{letter.position} does not say which topic it came from")
        replay = h.replay(letter.headers, group, str(letter.position))
        sent = await self._producer.send_and_wait(
            original.topic, letter.value, key=letter.key,
            partition=None if letter.key is not None else original.partition,
            headers=[(k, v.encode()) for k, v in replay.items()])
        return Position(original.topic, sent.partition, sent.offset)
