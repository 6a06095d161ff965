"""Is this process's consuming alive? A consumer is stuck when its fetch task died, or when it
holds partitions with lag and nothing moved for `stall_s`: no handler attempt started or
ended (a hung handler), or, for a key-ordered consumer, its fetch loop did not turn (it turns
at least every 100 ms, busy or idle).

Idle is not stuck (no lag, nothing to do), and a dependency outage is not stuck either: the
delivery policy keeps attempting (each attempt is activity), readiness reports the outage,
and restarting the process would not bring the database back."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from convmem.delivery.keyed import KeyedConsumer
from convmem.ops.lag import Lag


class Consumer(Protocol):
    @property
    def group(self) -> str: ...
    def partitions(self) -> set[tuple[str, int]]: ...
    def failure(self) -> str | None: ...
    def turned_at(self) -> float | None: ...


@dataclass(frozen=True)
class KeyedView:
    consumer: KeyedConsumer

    @property
    def group(self) -> str:
        return self.consumer.group_id

    def partitions(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self.consumer.assigned}

    def failure(self) -> str | None:
        return self.consumer.failure()

    def turned_at(self) -> float | None:
        return self.consumer.turned_at


@dataclass(frozen=True)
class SubscriberView:
    """A FastStream subscriber. Its fetch loop blocks until a record arrives, so there is no
    turn to watch: handler activity (with lag) says whether it moves. FastStream restarts a
    consume task that failed; one that is gone while the subscriber runs is dead."""

    subscriber: Any  # faststream.kafka's subscriber: no public type for its running state

    @property
    def group(self) -> str:
        return str(self.subscriber.group_id)

    def partitions(self) -> set[tuple[str, int]]:
        consumer = self.subscriber.consumer
        return set() if consumer is None else {(tp.topic, tp.partition) for tp in consumer.assignment()}

    def failure(self) -> str | None:
        if not self.subscriber.running:
            return None
        tasks = self.subscriber.tasks
        if tasks and all(t.done() for t in tasks):
            return "consume task ended"
        return None

    def turned_at(self) -> float | None:
        return None


@dataclass
class Liveness:
    """Remembers since when each group has been behind, so that a group idle for an hour
    that just received a record is not taken for stuck: it must stay behind, with no handler
    activity, for `stall_s`."""

    stall_s: float
    _behind_since: dict[str, float] = field(default_factory=dict)

    def problems(self, consumers: Sequence[Consumer], lag: Lag | None, active_at: Mapping[str, float],
                 now: float | None = None) -> list[str]:
        """Why this process is not alive (empty: it is). Without lag figures (Kafka
        unreachable) only dead tasks count."""
        now = time.monotonic() if now is None else now
        found = []
        for c in consumers:
            if (why := c.failure()) is not None:
                found.append(f"{c.group}: {why}")
                continue
            if lag is None:
                continue
            behind = sum(lag.get((c.group, topic, p), 0) for topic, p in c.partitions())
            if behind <= 0:
                self._behind_since.pop(c.group, None)
                continue
            since = self._behind_since.setdefault(c.group, now)
            turned = c.turned_at()
            idle = now - max(since, active_at.get(c.group, since))
            if turned is not None and now - turned > self.stall_s:
                found.append(f"{c.group}: fetch loop has not turned for {now - turned:.0f} s "
                             f"with {behind} records of lag")
            elif idle > self.stall_s:
                found.append(f"{c.group}: no handler activity for {idle:.0f} s with {behind} records of lag")
        return found
