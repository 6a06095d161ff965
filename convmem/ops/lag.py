"""Consumer lag of the groups this process consumes: log end offset minus committed offset,
per group, topic and partition, read on demand (a scrape, a liveness check) and cached for a
few seconds, so scraping often costs Kafka no more than one read per `ttl_s`.

One metadata consumer (no group: it only asks for end offsets) and one admin client (the
groups' committed offsets) per process, opened on first use and kept; after a failure both
are closed and opened again on the next read. A group that committed nothing yet on a
partition starts from the oldest record (auto_offset_reset=earliest), so its lag there is
everything the partition holds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from convmem.ops.consumer_lag import partition_lags
from convmem.telemetry import metrics

log = structlog.get_logger("convmem.lag")

Lag = dict[tuple[str, str, int], int]  # (group, topic, partition) -> records not yet committed


@dataclass
class LagReader:
    bootstrap: str
    groups: Sequence[tuple[str, str]]  # (consumer group, topic)
    ttl_s: float = 5.0
    timeout_s: float = 5.0
    client_id: str = "convmem.lag"
    _consumer: AIOKafkaConsumer | None = None
    _admin: AIOKafkaAdminClient | None = None
    _lag: Lag | None = None
    _read_at: float = field(default=float("-inf"))
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _shown: set[tuple[str, str, str]] = field(default_factory=set)

    async def read(self) -> Lag | None:
        """The lag per partition, at most `ttl_s` old; None while Kafka cannot tell."""
        async with self._lock:
            if time.monotonic() - self._read_at < self.ttl_s:
                return self._lag
            try:
                self._lag = await asyncio.wait_for(self._fetch(), self.timeout_s)
            except Exception as exc:
                log.warning("lag_unavailable", error=type(exc).__name__)
                self._lag = None
                await self._reset()
            self._read_at = time.monotonic()
            self._export(self._lag)
            return self._lag

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            await self._reset()
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id,
                                        enable_auto_commit=False)
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=self.client_id)
            await consumer.start()
            await admin.start()
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    async def _fetch(self) -> Lag:
        consumer, admin = await self._clients()
        lags = await partition_lags(consumer, admin, self.groups)
        return {(p.group, p.topic, p.partition): p.lag for group in lags for p in group}

    def _export(self, lag: Lag | None) -> None:
        """Set the gauge for this reader's partitions; while lag is unknown they have no value
        (a gap on the dashboard, not a stale number)."""
        shown = {(g, t, str(p)) for g, t, p in (lag or {})}
        for labels in self._shown - shown:
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(*labels)
        for (g, t, p), n in (lag or {}).items():
            metrics.CONSUMER_LAG.labels(g, t, str(p)).set(n)
        self._shown = shown

    async def _reset(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        for client in (consumer, admin):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.close() if isinstance(client, AIOKafkaAdminClient) else await client.stop()

    async def close(self) -> None:
        async with self._lock:
            await self._reset()
            self._export(None)
