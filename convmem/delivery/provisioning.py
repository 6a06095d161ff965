"""Topic provisioning. Partitions bound how far a role scales (one consumer per partition);
retention bounds how long message text lives in the event log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from contracts import topics

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int


def topic_specs(partitions: int = 6) -> list[TopicSpec]:
    # Seven days covers consumer outages and replays; Postgres is the durable record. Text in
    # these topics is sealed with its user's key, so an erasure reaches it before retention does.
    specs = [TopicSpec(t, partitions, 7 * DAY_MS) for t in topics.CONVERSATION_TOPICS]
    # Reply text as it is generated serves live views and their reconnects, nothing else: an
    # hour covers any reconnect, and the ReplyGenerated that follows is the record. Same
    # partition count, so a conversation's tokens and replies share a partition number.
    specs.append(TopicSpec(topics.TOKENS, partitions, 3600 * 1000))
    # Erasure requests must outlive a long outage of the retention worker; the audit trail
    # (no personal data) is kept as long as interaction summaries.
    specs += [TopicSpec(topics.PRIVACY_REQUESTS, partitions, 30 * DAY_MS),
              TopicSpec(topics.PRIVACY_EVENTS, partitions, 730 * DAY_MS)]
    specs += [TopicSpec(topics.dead_letter_topic(t), 1, 14 * DAY_MS) for t in topics.CONSUMED_TOPICS]
    return specs


async def ensure_topics(bootstrap: str, partitions: int = 6) -> list[str]:
    """Create missing topics; returns the names created. aiokafka's create_topics reports
    failures as error codes instead of raising, so each one is checked here."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in topic_specs(partitions) if s.name not in existing]
        if not wanted:
            return []
        resp = await admin.create_topics([
            NewTopic(s.name, s.partitions, 1, topic_configs={"retention.ms": str(s.retention_ms)})
            for s in wanted
        ])
        for name, code, *_ in resp.topic_errors:
            if code and for_code(code) is not TopicAlreadyExistsError:
                raise RuntimeError(f"could not create topic {name}: {for_code(code).__name__}")
        return [s.name for s in wanted]
    finally:
        await admin.close()


async def start_groups_at_end(bootstrap: str, groups: Sequence[tuple[str, str]]) -> None:
    """Commit the current end of each topic for consumer groups that have no position yet,
    so they start with what arrives from now on instead of replaying the whole log (a new
    deployment beside an old topic, a benchmark, a test's own worker). A group that already
    has a committed position keeps it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    for group, topic in groups:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            known: set[int] | None = consumer.partitions_for_topic(topic)
            if not known:
                await consumer._client.force_metadata_update()  # no public way to wait for one topic's metadata
                known = consumer.partitions_for_topic(topic) or set()
            parts = [TopicPartition(topic, p) for p in sorted(known)]
            consumer.assign(parts)
            fresh = [tp for tp in parts if await consumer.committed(tp) is None]
            if fresh:
                await consumer.commit(await consumer.end_offsets(fresh))
        finally:
            await consumer.stop()
