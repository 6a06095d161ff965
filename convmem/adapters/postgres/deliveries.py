"""DeliveryLog over Postgres: the delivery states a channel reported, each stored once."""

from __future__ import annotations

from contracts import DeliveryStatusChanged
from convmem.adapters.postgres.pool import PgPool
from convmem.ports import DeliveryLog


class PgDeliveryLog(DeliveryLog):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        await self._pool.run(lambda c: c.execute(
            """INSERT INTO delivery_statuses (tenant_id, external_id, status, occurred_at, errors)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            event.tenant_id, event.external_id, event.status, event.occurred_at, event.errors))
