"""Scrubbing stored turns: the text in Postgres and the turn's vector are replaced by ones
made from the scrubbed text, per the tenant's policy (at once, after a delay, or never)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from contracts import PiiScrubbed, TurnRecorded
from convmem.memory.units import refresh_units
from convmem.memory.vector_payload import turn_payload
from convmem.ports import (
    Embedder,
    EmbeddingLedger,
    RetentionLedger,
    TenantPolicies,
    TenantPolicy,
    VectorIndex,
    VectorPoint,
)
from services.retention.pii import scrub

PiiMode = Literal["immediate", "delayed", "off"]


@dataclass(frozen=True)
class ScrubPolicy:
    """The defaults a tenant without its own policy gets (the seeds: scrub within 24 hours)."""

    mode: PiiMode = "delayed"
    delay_hours: int = 24
    region: str = "US"

    def for_tenant(self, own: TenantPolicy | None) -> ScrubPolicy:
        if own is None:
            return self
        return ScrubPolicy(own.pii_mode or self.mode, self.delay_hours if own.pii_delay_hours is None
                           else own.pii_delay_hours, own.phone_region or self.region)


async def scrub_one(turn: TurnRecorded, region: str, ledger: RetentionLedger, index: VectorIndex,
                    embedder: Embedder, units: EmbeddingLedger | None = None) -> PiiScrubbed | None:
    """Scrub a turn (idempotent: a turn already checked is left alone). Returns the audit
    event when something was replaced."""
    text, kinds = scrub(turn.text, region)
    changed = await ledger.record_scrub(turn.message_id, text if kinds else None, kinds)
    if not changed or not kinds:
        return None
    # What was derived from the turn's text (the conversation's title, its rolling summary)
    # may carry the same values: scrub those too.
    title, summary = await ledger.derived_texts(turn.conversation_id)
    await ledger.replace_derived_texts(turn.conversation_id, scrub(title, region)[0] if title else None,
                                      scrub(summary, region)[0] if summary else None)
    if text.strip():
        [vector] = await embedder.embed([text])
        await index.upsert([VectorPoint(turn.message_id, vector, turn_payload(turn))])
    if units is not None:  # the burst it belongs to held the same text: its vector is made again
        await refresh_units(units, embedder, index, [turn.conversation_id])
    return PiiScrubbed(tenant_id=turn.tenant_id, conversation_id=turn.conversation_id, message_id=turn.message_id,
                       kinds=kinds)


async def scrub_turn(turn: TurnRecorded, ledger: RetentionLedger, policies: TenantPolicies, index: VectorIndex,
                     embedder: Embedder, defaults: ScrubPolicy, units: EmbeddingLedger | None = None
                     ) -> PiiScrubbed | None:
    """On a freshly recorded turn: scrub now if the tenant says so; otherwise the sweep will."""
    policy = defaults.for_tenant(await policies.tenant_policy(turn.tenant_id))
    if policy.mode != "immediate":
        return None
    return await scrub_one(turn, policy.region, ledger, index, embedder, units)


async def scrub_due(ledger: RetentionLedger, policies: TenantPolicies, index: VectorIndex, embedder: Embedder,
                    defaults: ScrubPolicy, batch: int, now: datetime | None = None,
                    units: EmbeddingLedger | None = None) -> list[PiiScrubbed]:
    """The sweep: turns recorded longer ago than their tenant's delay and not yet checked,
    in bounded batches."""
    at = now or datetime.now(UTC)
    events: list[PiiScrubbed] = []
    policies_seen: dict[str, ScrubPolicy] = {}  # one lookup per tenant per sweep, not per turn
    while True:
        due = await ledger.turns_due_for_scrub(at - timedelta(hours=defaults.delay_hours),
                                              defaults.mode, batch)
        for turn in due:
            if turn.tenant_id not in policies_seen:
                policies_seen[turn.tenant_id] = defaults.for_tenant(await policies.tenant_policy(turn.tenant_id))
            policy = policies_seen[turn.tenant_id]
            if (found := await scrub_one(turn, policy.region, ledger, index, embedder, units)) is not None:
                events.append(found)
        if len(due) < batch:
            return events
