"""Liveness: a stuck consumer fails the probe with its reason; an idle one, a busy one, and
one waiting out a database outage do not."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

from convmem.delivery.keyed import KeyedConsumer
from convmem.ops.liveness import KeyedView, Liveness
from convmem.ops.probes import Probes, live_answer

T, G = "conv.turns.v1", "convmem.responder"


@dataclass
class Consumer:
    group: str = G
    parts: frozenset[tuple[str, int]] = frozenset({(T, 0), (T, 1)})
    dead: str | None = None
    turned: float | None = None

    def partitions(self) -> set[tuple[str, int]]:
        return set(self.parts)

    def failure(self) -> str | None:
        return self.dead

    def turned_at(self) -> float | None:
        return self.turned


def test_idle_without_lag_is_alive_however_long_nothing_happened() -> None:
    live = Liveness(stall_s=60)
    assert live.problems([Consumer()], {(G, T, 0): 0, (G, T, 1): 0}, {G: 0.0}, now=10_000) == []


def test_behind_with_no_handler_activity_for_the_stall_time_is_stuck() -> None:
    live, c = Liveness(stall_s=60), Consumer()
    lag = {(G, T, 0): 3, (G, T, 1): 0, ("other", T, 0): 50}
    # Idle for an hour, then records arrive: not stuck at once...
    assert live.problems([c], lag, {G: 0.0}, now=3600) == []
    assert live.problems([c], lag, {G: 0.0}, now=3650) == []
    # ...but when nothing moves for the stall time while behind.
    [why] = live.problems([c], lag, {G: 0.0}, now=3661)
    assert why == f"{G}: no handler activity for 61 s with 3 records of lag"


def test_a_consumer_attempting_records_is_alive_even_while_it_retries() -> None:
    live, c = Liveness(stall_s=60), Consumer()
    lag = {(G, T, 0): 500}
    assert live.problems([c], lag, {G: 100.0}, now=100) == []
    # Backing off between attempts (a database outage): each attempt is activity.
    assert live.problems([c], lag, {G: 150.0}, now=200) == []
    assert live.problems([c], {(G, T, 0): 0}, {G: 150.0}, now=10_000) == []


def test_a_fetch_loop_that_stopped_turning_is_stuck_when_behind() -> None:
    live = Liveness(stall_s=60)
    c = Consumer(turned=100.0)
    lag = {(G, T, 1): 7}
    assert live.problems([c], lag, {G: 150.0}, now=150) == []
    [why] = live.problems([c], lag, {G: 200.0}, now=200)
    assert why == f"{G}: fetch loop has not turned for 100 s with 7 records of lag"


def test_a_dead_task_is_stuck_even_without_lag_figures() -> None:
    live = Liveness(stall_s=60)
    assert live.problems([Consumer(dead="fetch loop died: RuntimeError")], None, {}, now=1) == [
        f"{G}: fetch loop died: RuntimeError"]
    assert live.problems([Consumer()], None, {}, now=10_000) == []  # Kafka unreachable: no verdict


async def test_a_key_ordered_consumer_whose_loop_died_fails_the_probe() -> None:
    async def handle(_: ConsumerRecord) -> None:
        return None

    consumer = KeyedConsumer("127.0.0.1:1", T, G, handle)

    async def crashed() -> None:
        raise RuntimeError("a bug in the fetch loop")

    consumer._task = asyncio.create_task(crashed())  # the task start() would have made, dying
    await asyncio.sleep(0)
    probes = Probes(checks={}, consumers=[KeyedView(consumer)])
    assert await live_answer(probes) == (503, {"status": "stuck",
                                               "problems": [f"{G}: fetch loop died: RuntimeError"]})
    assert await live_answer(Probes(checks={})) == (200, {"status": "ok"})
