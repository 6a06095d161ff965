"""The pipeline at a glance (the console's overview, GET /v1/overview): each dependency's
readiness, each consumer group's lag with the time of its oldest pending record, and the
records each dead-letter topic holds. Counts, times and positions only: nothing of any
tenant's data. Read with clients of no group, so looking never moves a consumer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from convmem.delivery.dead_letters import dead_letter_topics
from convmem.ops.consumer_lag import PartitionLag, consumer_lag, topic_sizes
from convmem.ops.probes import Check, readiness


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    lag: int  # records written and not yet handled, over the topic's partitions
    oldest_pending_at: datetime | None  # when the oldest of them was written (None: nothing pending)
    partitions: int
    committed: bool  # False: the group never committed (it starts where it is told)


@dataclass(frozen=True)
class PipelineOverview:
    checked_at: datetime
    ready: dict[str, bool]
    consumer_groups: list[GroupLag]
    dead_letters: dict[str, int]  # dead-letter topic -> records it holds
    kafka_error: str | None = None  # lag and dead letters could not be read (the error's type)


def group_lags(parts: Sequence[PartitionLag]) -> list[GroupLag]:
    """Partition lags summed per (group, topic), in the order first seen."""
    grouped: dict[tuple[str, str], list[PartitionLag]] = {}
    for p in parts:
        grouped.setdefault((p.group, p.topic), []).append(p)
    return [GroupLag(group, topic, sum(p.lag for p in ps),
                     min((p.oldest_pending_at for p in ps if p.lag and p.oldest_pending_at), default=None),
                     len(ps), any(p.committed is not None for p in ps))
            for (group, topic), ps in grouped.items()]


async def pipeline_overview(bootstrap: str, groups: Sequence[tuple[str, str]], checks: Mapping[str, Check],
                            timeout_s: float = 8.0) -> PipelineOverview:
    """Readiness of `checks`, the lag of `groups` ((consumer group, topic) pairs) and every
    dead-letter topic's size. Kafka being down is an answer (`kafka_error`), not an error."""
    ready = await readiness(checks)
    try:
        lags, dead = await asyncio.wait_for(
            asyncio.gather(consumer_lag(bootstrap, groups, timeout_s=timeout_s / 2),
                           topic_sizes(bootstrap, dead_letter_topics())), timeout_s)
    except Exception as exc:
        return PipelineOverview(datetime.now(UTC), ready, [], {}, type(exc).__name__)
    return PipelineOverview(datetime.now(UTC), ready, group_lags(lags), dead)
