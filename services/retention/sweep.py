"""The retention sweep: bounded batches, so it never holds long locks on the hot tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from convmem.ports import Store, VectorIndex


async def purge_expired(store: Store, index: VectorIndex, retention_days: int, batch: int,
                        now: datetime | None = None, deleted_grace_hours: float = 24.0) -> int:
    """Turns past retention, and deleted conversations once their grace period (an undo
    window; they are out of every read already) has passed."""
    at = now or datetime.now(UTC)
    cutoff = at - timedelta(days=retention_days)
    deleted_before = at - timedelta(hours=deleted_grace_hours)
    total = 0
    while True:
        ids = await store.purge_expired(cutoff, batch, deleted_before)
        # Postgres first: a vector without its row is never recalled (reads go through the store).
        await index.delete(ids)
        total += len(ids)
        if len(ids) < batch:
            return total
