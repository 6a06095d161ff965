"""Where the HTTP edge sends what it accepted. A port of the ingest service: the composition
root builds it over Kafka publishers (which seal, publish and wait for acks=all)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from contracts import DeliveryStatusChanged, ErasureRequested, MessageReceived


@dataclass(frozen=True)
class EventSink:
    """Each publish returns once Kafka acknowledged every event it was given."""

    publish_inbound: Callable[[Sequence[MessageReceived]], Awaitable[None]]
    publish_statuses: Callable[[Sequence[DeliveryStatusChanged]], Awaitable[None]]
    kafka_ready: Callable[[], Awaitable[bool]]
    publish_erasure: Callable[[ErasureRequested], Awaitable[None]] | None = None
