"""A process's probes, built from what its runtime started: readiness over the dependencies
its roles use, liveness over its consumers, lag of its consumer groups, the size of its
vector index. Served by the ingest edge when the process runs ingest, else by the ops
listener (convmem.ops.listener) on CONVMEM_OPS_PORT."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from faststream.kafka import KafkaBroker

from composition.resources import NotStarted, Resources
from convmem.delivery import DeliveryPolicy, Subscriptions
from convmem.ops.lag import LagReader
from convmem.ops.liveness import Consumer, KeyedView, SubscriberView
from convmem.ops.overview import PipelineWatch
from convmem.ops.probes import Check, Probes
from convmem.settings import CommonSettings

KAFKA_PING_S = 2.0


@runtime_checkable
class _Counted(Protocol):
    async def count(self) -> int: ...


def build_probes(common: CommonSettings, broker: KafkaBroker, policy: DeliveryPolicy, subs: Subscriptions,
                 res: Resources, pipeline_groups: Sequence[tuple[str, str]] = ()) -> Probes:
    async def kafka() -> bool:
        return bool(await broker.ping(timeout=KAFKA_PING_S))

    async def postgres() -> None:
        await res.storage.health.ping()

    checks: dict[str, Check] = {"kafka": kafka, "postgres": postgres}
    size = _index_size(res)
    if size is not None:
        checks["vector_index"] = size
    consumers: list[Consumer] = [KeyedView(c) for c in subs.keyed]
    consumers += [SubscriberView(s) for s in broker.subscribers]
    lag = LagReader(common.kafka_bootstrap, list(subs.groups), client_id=f"{common.group_prefix}.lag") \
        if subs.groups else None
    return Probes(checks, consumers, lag, policy.active_at, common.consumer_stall_s, size,
                  pipeline=PipelineWatch(common.kafka_bootstrap, pipeline_groups or list(subs.groups)))


def _index_size(res: Resources) -> Callable[[], Awaitable[int]] | None:
    """The index's point count, when this process's roles use an index that can count; a
    count that answers is also the index's readiness."""
    try:
        index = res.index
    except NotStarted:
        return None  # the sender alone: no vectors
    return index.count if isinstance(index, _Counted) else None
