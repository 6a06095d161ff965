"""Kafka side of the retention service: erasure requests and PII scrubbing of new turns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from contracts import ErasureRequested, Event, SubjectErased, TurnRecorded, topics
from convmem.delivery import Outlet, Subscriptions
from convmem.ports import Embedder, EmbeddingLedger, PrivacyLedger, RetentionLedger, TenantPolicies, VectorIndex
from services.retention.erasure import erase
from services.retention.scrubbing import ScrubPolicy, scrub_turn

log = structlog.get_logger("convmem.retention")


@dataclass(frozen=True)
class RetentionDeps:
    privacy: PrivacyLedger
    retention: RetentionLedger
    policies: TenantPolicies
    index: VectorIndex
    embedder: Embedder
    scrubbing: ScrubPolicy
    forget_keys: Callable[[str, str], None]  # drop a subject's cached data keys in this process
    after_erasure: Callable[[], None] = lambda: None  # asks for the erased rows to leave the files (Compaction)
    units: EmbeddingLedger | None = None  # the bursts whose vectors a scrub makes stale


def privacy_outlet(subs: Subscriptions) -> Outlet[Event]:
    return subs.outlet(topics.PRIVACY_EVENTS, None, "retention -> privacy.events.v1",
                       "Audit trail without personal data: SubjectErased, PiiScrubbed, RetentionPurged.")


def register(subs: Subscriptions, deps: Callable[[], RetentionDeps]) -> Outlet[Event]:
    """Declares the subscribers; returns the audit outlet, which the sweep publishes to too."""
    privacy_out = privacy_outlet(subs)

    async def announced(audits: Sequence[Event]) -> None:
        for audit in audits:
            if isinstance(audit, SubjectErased):
                await deps().privacy.mark_erasure_announced(audit.request_id)
                log.info("subject_erased", request_id=str(audit.request_id), counts=audit.counts)

    @subs.each(topics.PRIVACY_REQUESTS, group="retention.erasure", event=ErasureRequested,
               title="retention.erasure <- privacy.requests.v1",
               description="Erases a data subject from Postgres, the vector index and (by key) the log.",
               publish_to=privacy_out, mark=announced)
    async def on_erasure(request: ErasureRequested) -> Event | None:
        d = deps()
        audit = await erase(request, d.privacy, d.index)
        d.forget_keys(request.tenant_id, request.user_id)
        d.after_erasure()  # committed: vacuumed in the background, never on this path
        return audit

    @subs.each(topics.TURNS, group="retention.pii", event=TurnRecorded, title="retention.pii <- conv.turns.v1",
               description="Scrubs personal data from stored turns, at once or after the tenant's delay.",
               publish_to=privacy_out)
    async def on_turn(turn: TurnRecorded) -> Event | None:
        d = deps()
        return await scrub_turn(turn, d.retention, d.policies, d.index, d.embedder, d.scrubbing, d.units)

    return privacy_out
