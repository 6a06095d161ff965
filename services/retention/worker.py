"""Kafka adapter of the retention service: erasure requests and PII scrubbing."""

from __future__ import annotations

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from contracts import ErasureRequested, TurnRecorded, topics
from convmem.delivery import open_or_drop
from convmem.resources import Resources
from services.retention.erasure import erase
from services.retention.scrubbing import ScrubPolicy, scrub_turn

log = structlog.get_logger("convmem.retention")


def register(broker: KafkaBroker, res: Resources, group_prefix: str, defaults: ScrubPolicy) -> None:
    privacy_out = broker.publisher(
        topics.PRIVACY_EVENTS, title="retention -> privacy.events.v1",
        description="Audit trail without personal data: SubjectErased, PiiScrubbed, RetentionPurged.")

    @broker.subscriber(topics.PRIVACY_REQUESTS, group_id=f"{group_prefix}.retention.erasure",
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest",
                       title="retention.erasure <- privacy.requests.v1",
                       description="Erases a data subject from Postgres, the vector index and (by key) the log.")
    async def on_erasure(request: ErasureRequested) -> None:
        audit = await erase(request, res.store, res.index)
        res.sealer.forget(request.tenant_id, request.user_id)
        if audit is not None:
            await privacy_out.publish(audit, key=request.tenant_id.encode())
            await res.store.mark_erasure_announced(request.request_id)
            log.info("subject_erased", request_id=str(request.request_id), counts=audit.counts)

    @broker.subscriber(topics.TURNS, group_id=f"{group_prefix}.retention.pii",
                       ack_policy=AckPolicy.NACK_ON_ERROR, auto_offset_reset="earliest",
                       title="retention.pii <- conv.turns.v1",
                       description="Scrubs personal data from stored turns, at once or after the tenant's delay.")
    async def on_turn(event: TurnRecorded) -> None:
        turn = await open_or_drop(res.sealer, event)
        if turn is None:
            return
        found = await scrub_turn(turn, res.store, res.index, res.embedder, defaults)
        if found is not None:
            await privacy_out.publish(found, key=turn.key)
