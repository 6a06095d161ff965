"""Where the HTTP edge sends what it accepted. A port of the ingest service: the composition
root builds it over Kafka publishers (which seal, publish and wait for acks=all)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from contracts import DeliveryStatusChanged, ErasureRequested, MessageAmended, MessageReceived

# How long the edge waits for Kafka's acknowledgement before answering 503 by default
# (CONVMEM_PUBLISH_TIMEOUT_S); the publishers behind the sink give up within it
# (convmem.errors.PublishUnconfirmed once the producer holds an event).
PUBLISH_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class EventSink:
    """Each publish returns once Kafka acknowledged every event it was given, within
    PUBLISH_TIMEOUT_S; PublishUnconfirmed when the producer took an event and no acknowledgement
    came (it may be published later), any other error when nothing was handed over."""

    publish_inbound: Callable[[Sequence[MessageReceived]], Awaitable[None]]
    publish_statuses: Callable[[Sequence[DeliveryStatusChanged]], Awaitable[None]]
    kafka_ready: Callable[[], Awaitable[bool]]
    publish_erasure: Callable[[ErasureRequested], Awaitable[None]] | None = None
    publish_amendments: Callable[[Sequence[MessageAmended]], Awaitable[None]] | None = None
