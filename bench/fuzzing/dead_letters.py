"""What this run's records left in the dead-letter topics, by reason."""

from __future__ import annotations

from collections import Counter
from typing import Any

WATCHED = ("conv.inbound.v1", "conv.statuses.v1")


async def end_offsets(bootstrap: str, topics: tuple[str, ...]) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        await c._client.force_metadata_update()
        parts = [TopicPartition(t, p) for t in topics for p in (c.partitions_for_topic(t) or {0})]
        return dict(await c.end_offsets(parts))
    finally:
        await c.stop()


async def dead_letters_of_this_run(bootstrap: str, dlq_start: dict[Any, int], inbound_start: dict[Any, int]
                                   ) -> Counter[str]:
    """Dead letters of records published during the run (their original offset says so): the
    recorder may also be working through older records of the shared stack."""
    from aiokafka import AIOKafkaConsumer

    first = {(tp.topic, tp.partition): offset for tp, offset in inbound_start.items()}
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    reasons: Counter[str] = Counter()
    try:
        c.assign(list(dlq_start))
        end = await c.end_offsets(list(dlq_start))
        for tp, offset in dlq_start.items():
            c.seek(tp, offset)
        while [tp for tp in dlq_start if await c.position(tp) < end[tp]]:
            for records in (await c.getmany(timeout_ms=500)).values():
                for r in records:
                    h = {k: v.decode(errors="replace") for k, v in r.headers}
                    origin = (h.get("x-original-topic", ""), int(h.get("x-original-partition", "0")))
                    if int(h.get("x-original-offset", "-1")) >= first.get(origin, 0):
                        reasons[h.get("x-error", "?").split(":")[0][:80]] += 1
    finally:
        await c.stop()
    return reasons
