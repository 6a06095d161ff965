"""Kafka side of ingest: the topics it publishes to, behind the EventSink the HTTP edge uses."""

from __future__ import annotations

from contracts import DeliveryStatusChanged, ErasureRequested, MessageAmended, MessageReceived, topics
from convmem.delivery import Subscriptions
from services.ingest.sink import PUBLISH_TIMEOUT_S, EventSink


def register(subs: Subscriptions, publish_timeout_s: float = PUBLISH_TIMEOUT_S) -> EventSink:
    inbound = subs.outlet(topics.INBOUND, MessageReceived, "ingest -> conv.inbound.v1",
                          "Every accepted message, keyed by conversation id.", confirm_timeout_s=publish_timeout_s)
    erasures = subs.outlet(topics.PRIVACY_REQUESTS, ErasureRequested, "ingest -> privacy.requests.v1",
                           "Erasure requests, keyed by tenant and user.", confirm_timeout_s=publish_timeout_s)
    statuses = subs.outlet(topics.STATUSES, DeliveryStatusChanged, "ingest -> conv.statuses.v1",
                           "Delivery states reported by WhatsApp.", confirm_timeout_s=publish_timeout_s)

    amendments = subs.outlet(topics.AMENDMENTS, MessageAmended, "ingest -> conv.amendments.v1",
                             "Edits and revokes of earlier WhatsApp messages, keyed by conversation id.")

    async def kafka_ready() -> bool:
        return bool(await subs.broker.ping(timeout=2))

    async def publish_erasure(request: ErasureRequested) -> None:
        await erasures.publish([request])

    return EventSink(inbound.publish, statuses.publish, kafka_ready, publish_erasure, amendments.publish)
