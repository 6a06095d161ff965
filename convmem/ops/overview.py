"""The pipeline at a glance (the console's overview, GET /v1/overview): each dependency's
readiness, each consumer group's lag with the time of its oldest pending record, and the
records each dead-letter topic holds. Counts, times and positions only: nothing of any
tenant's data. Read with clients of no group, so looking never moves a consumer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
                            timeout_s: float = 5.0) -> PipelineOverview:
    """Readiness of `checks`, the lag of `groups` ((consumer group, topic) pairs) and every
    dead-letter topic's size, read at once and within about `timeout_s` (a page and a client
    waiting on it stay bounded). Kafka not answering in time is an answer (`kafka_error`)."""

    async def kafka() -> tuple[list[PartitionLag], dict[str, int]]:
        lags, dead = await asyncio.gather(consumer_lag(bootstrap, groups, timeout_s=timeout_s / 2),
                                          topic_sizes(bootstrap, dead_letter_topics()))
        return lags, dead

    ready, read = await asyncio.gather(readiness(checks), asyncio.wait_for(kafka(), timeout_s),
                                       return_exceptions=True)
    if isinstance(ready, BaseException):
        ready = dict.fromkeys(checks, False)
    if isinstance(read, BaseException):
        return PipelineOverview(datetime.now(UTC), ready, [], {}, type(read).__name__)
    lags, dead = read
    return PipelineOverview(datetime.now(UTC), ready, group_lags(lags), dead)


@dataclass
class PipelineWatch:
    """The overview of one pipeline (its Kafka and consumer groups), read at most every `ttl_s`:
    a read opens Kafka clients and fetches each lagging partition's oldest record, so consoles
    polling it cost Kafka one read per period, whatever their number."""

    bootstrap: str
    groups: Sequence[tuple[str, str]]
    ttl_s: float = 5.0
    _last: PipelineOverview | None = None
    _read_at: float = field(default=float("-inf"))
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def read(self, checks: Mapping[str, Check]) -> PipelineOverview:
        async with self._lock:
            if self._last is None or time.monotonic() - self._read_at >= self.ttl_s:
                self._last = await pipeline_overview(self.bootstrap, self.groups, checks)
                self._read_at = time.monotonic()
            return self._last
