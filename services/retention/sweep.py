"""The retention sweep: bounded batches, so it never holds long locks on the hot tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from convmem.ports import Store, VectorIndex


async def purge_expired(store: Store, index: VectorIndex, retention_days: int, batch: int,
                        now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    total = 0
    while True:
        ids = await store.purge_expired(cutoff, batch)
        # Postgres first: a vector without its row is never recalled (reads go through the store).
        await index.delete(ids)
        total += len(ids)
        if len(ids) < batch:
            return total
