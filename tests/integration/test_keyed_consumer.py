"""The key-ordered consumer on a real broker, through a rebalance: a second member joins while
records are in flight, partitions move, and still every record is processed, each key's
records in order, and the group's committed offsets end at the end of every partition."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from convmem.delivery.keyed import KeyedConsumer
from tests.services import Endpoints

pytestmark = pytest.mark.stack

KEYS, PER_KEY, PARTITIONS = 24, 12, 4


async def test_records_survive_a_rebalance_in_order_per_key_and_all_committed(endpoints: Endpoints) -> None:
    bootstrap, topic, group = endpoints.kafka_bootstrap, f"test.keyed.{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    for i in range(PER_KEY):
        for k in range(KEYS):
            await producer.send(topic, str(i).encode(), key=f"k{k}".encode())
    await producer.flush()
    await producer.stop()

    seen: dict[bytes, list[int]] = defaultdict(list)
    by_member: dict[str, int] = defaultdict(int)
    rng = random.Random(3)
    joined = asyncio.Event()  # set once the second member owns partitions

    def handler(member: str) -> Callable[[ConsumerRecord], Awaitable[None]]:
        async def handle(record: ConsumerRecord) -> None:
            await asyncio.sleep(rng.uniform(0.005, 0.03))  # a model call, say
            if member == "first" and sum(map(len, seen.values())) >= KEYS * PER_KEY // 4:
                # Past a quarter, the first member's calls hang until the second has joined:
                # records are in flight when the partitions move, and some are left for both.
                await joined.wait()
            assert record.key is not None and record.value is not None
            seen[record.key].append(int(record.value))
            by_member[member] += 1

        return handle

    # A short settle: the first member's hung calls are abandoned on revocation, uncommitted.
    first = KeyedConsumer(bootstrap, topic, group, handler("first"), max_in_flight=8, commit_interval_s=0.2,
                          settle_s=1)
    second = KeyedConsumer(bootstrap, topic, group, handler("second"), max_in_flight=8, commit_interval_s=0.2,
                           settle_s=1)
    await first.start()
    deadline = time.monotonic() + 60
    while sum(map(len, seen.values())) < KEYS * PER_KEY // 4 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await second.start()  # joins mid-stream: partitions move while records are in flight
    while not second.assigned and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    joined.set()
    while (len(seen) < KEYS or any(set(v) != set(range(PER_KEY)) for v in seen.values())) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await first.stop()
    await second.stop()

    assert by_member["first"] and by_member["second"]  # the partitions really moved mid-stream
    for key, values in seen.items():
        assert set(values) == set(range(PER_KEY)), key  # nothing skipped
        # Redelivery after a revocation may repeat a tail, never reorder: the first time each
        # value was processed, it came after every smaller one.
        firsts = list(dict.fromkeys(values))
        assert firsts == sorted(firsts), (key, values)
    check = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await check.end_offsets(parts)
        committed = {tp: await check.committed(tp) for tp in parts}
        assert committed == ends  # everything finished, so everything committed
    finally:
        await check.stop()
