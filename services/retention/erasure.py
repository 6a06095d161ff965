"""Erasure of a data subject: every store, then an audit record without personal data."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import ErasureRequested, SubjectErased
from convmem.ports import MemoryScope, PrivacyLedger, VectorIndex


async def erase(request: ErasureRequested, privacy: PrivacyLedger, index: VectorIndex) -> SubjectErased | None:
    """Remove the subject from Postgres (its data keys first, which shreds its events in the
    log) and from the vector index. Returns the audit event to publish, or None when it was
    already published (a redelivered request)."""
    await privacy.request_erasure(request.request_id, request.tenant_id, request.user_id, request.requested_by,
                                request.requested_at)  # a request published without the API still counts
    done = await privacy.erase_subject(request.request_id, request.tenant_id, request.user_id)
    # After Postgres: reads go through the store, so a vector outliving its row is never served,
    # and a crash here redelivers the request, which runs this again.
    await index.delete_scope(MemoryScope(request.tenant_id, request.user_id))
    if done.announced:
        return None
    return SubjectErased(request_id=done.request_id, tenant_id=done.tenant_id, counts=done.counts,
                         requested_at=done.requested_at, completed_at=done.completed_at or datetime.now(UTC))
