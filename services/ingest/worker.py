"""Kafka side of ingest: the publishers it declares (and documents)."""

from __future__ import annotations

from collections.abc import Sequence

from faststream.kafka import KafkaBroker

from contracts import DeliveryStatusChanged, ErasureRequested, MessageReceived, topics
from convmem.resources import Resources
from services.ingest.app import EventSink


def register(broker: KafkaBroker, res: Resources) -> EventSink:
    inbound = broker.publisher(topics.INBOUND, schema=MessageReceived, title="ingest -> conv.inbound.v1",
                               description="Every accepted message, keyed by conversation id.")
    erasures = broker.publisher(topics.PRIVACY_REQUESTS, schema=ErasureRequested,
                                title="ingest -> privacy.requests.v1",
                                description="Erasure requests, keyed by tenant and user.")
    statuses = broker.publisher(topics.STATUSES, schema=DeliveryStatusChanged, title="ingest -> conv.statuses.v1",
                                description="Delivery states reported by WhatsApp.")

    async def publish_inbound(events: Sequence[MessageReceived]) -> None:
        for e in events:
            await inbound.publish(await res.sealer.seal(e), key=e.key)

    async def publish_statuses(events: Sequence[DeliveryStatusChanged]) -> None:
        for e in events:
            await statuses.publish(e, key=e.key)

    async def kafka_ready() -> bool:
        return bool(await broker.ping(timeout=2))

    async def publish_erasure(request: ErasureRequested) -> None:
        await erasures.publish(request, key=request.key)

    return EventSink(publish_inbound, publish_statuses, kafka_ready, publish_erasure)
