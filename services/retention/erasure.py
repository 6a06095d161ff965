"""Erasure of a data subject: every store, then an audit record without personal data."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from contracts import ErasureRequested, SubjectErased
from convmem.ports import MemoryScope, PrivacyLedger, VectorIndex

log = structlog.get_logger("convmem.retention")


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


class Compaction:
    """Runs `compact` (PrivacyLedger.compact_erased) in the background after erasures, so the
    erased rows leave the data files soon without the erasure waiting for a vacuum: one run at
    a time, and erasures that commit during a run get one more run after it."""

    def __init__(self, compact: Callable[[], Awaitable[None]]) -> None:
        self._compact = compact
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """After an erasure committed."""
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while self._again:
            self._again = False
            try:
                await self._compact()
            except Exception as exc:  # a database blip or a lock not given: the next erasure asks again
                log.warning("erasure_compaction_failed", error=type(exc).__name__)

    async def idle(self) -> None:
        """Wait for the runs asked for so far (tests, and a shutdown that may wait)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
