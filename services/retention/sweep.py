"""The retention sweep: bounded batches, so it never holds long locks on the hot tables.
Turns past their tenant's retention go (Postgres, then vectors), summaries after theirs,
deleted conversations after their grace period, and turns whose PII delay has passed are
scrubbed. Each run reports what it did as events for the privacy audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contracts import Event, RetentionPurged
from convmem.memory.units import refresh_units
from convmem.ports import Embedder, EmbeddingLedger, RetentionLedger, TenantPolicies, VectorIndex
from services.retention.scrubbing import ScrubPolicy, scrub_due


@dataclass(frozen=True)
class RetentionPolicy:
    """Defaults from the seeds; a tenant's own policy overrides the day counts."""

    message_days: int = 90
    summary_days: int = 730
    deleted_grace_hours: float = 24.0
    batch: int = 500


async def purge_expired(ledger: RetentionLedger, index: VectorIndex, policy: RetentionPolicy,
                        now: datetime | None = None) -> RetentionPurged | None:
    at = now or datetime.now(UTC)
    cutoff = at - timedelta(days=policy.message_days)
    deleted_before = at - timedelta(hours=policy.deleted_grace_hours)
    messages = 0
    while True:
        ids = await ledger.purge_expired(cutoff, policy.batch, deleted_before)
        # Postgres first: a vector without its row is never recalled (reads go through the store).
        await index.delete(ids)
        messages += len(ids)
        if len(ids) < policy.batch:
            break
    conversation_summaries, user_summaries = await ledger.purge_summaries(at - timedelta(days=policy.summary_days))
    if not (messages or conversation_summaries or user_summaries):
        return None
    return RetentionPurged(messages=messages, conversation_summaries=conversation_summaries,
                           user_summaries=user_summaries, swept_at=at)


async def sweep(ledger: RetentionLedger, policies: TenantPolicies, index: VectorIndex, embedder: Embedder,
                retention: RetentionPolicy, scrubbing: ScrubPolicy, now: datetime | None = None,
                units: EmbeddingLedger | None = None) -> list[Event]:
    events: list[Event] = []
    if (purged := await purge_expired(ledger, index, retention, now)) is not None:
        events.append(purged)
    events += await scrub_due(ledger, policies, index, embedder, scrubbing, retention.batch, now, units)
    if units is not None:
        # Bursts whose members were purged, scrubbed, deleted or revoked since the indexer
        # last saw them: embedded again from their live members, or their points removed.
        await refresh_units(units, embedder, index)
    return events
