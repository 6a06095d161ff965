"""DeliveryLog over Postgres: the delivery states a channel reported, each stored once, and
each reply's parts as the sender recorded them, joined with those states by message id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts import DeliveryStatusChanged, identity
from convmem.adapters.postgres.pool import PgPool
from convmem.ports import DeliveredPart, Delivery, DeliveryLog


class PgDeliveryLog(DeliveryLog):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        ours = identity.parse_send_ref(event.callback_data)

        async def tx(c: asyncpg.Connection) -> None:
            async with c.transaction():
                await c.execute(
                    """INSERT INTO delivery_statuses (tenant_id, external_id, status, occurred_at, errors)
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
                    event.tenant_id, event.external_id, event.status, event.occurred_at, event.errors)
                if ours is not None:
                    # The channel has the message: a send left 'sending' or 'unknown' by a
                    # sender that stopped before recording it is settled here.
                    await c.execute(
                        """UPDATE reply_sends SET wamid = coalesce(wamid, $4), updated_at = now(),
                               sent_at = coalesce(sent_at, $5),
                               state = CASE WHEN state IN ('sending', 'unknown') THEN 'sent' ELSE state END
                           WHERE message_id = $1 AND part = $2 AND tenant_id = $3""",
                        ours[0], ours[1], event.tenant_id, event.external_id, event.occurred_at)

        await self._pool.run(tx)

    async def deliveries(self, tenant_id: str, message_ids: Sequence[UUID]) -> dict[UUID, Delivery]:
        if not message_ids:
            return {}
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT s.message_id, s.part, s.state, s.wamid, s.error_code, s.error,
                      coalesce(jsonb_object_agg(d.status, d.occurred_at) FILTER (WHERE d.status IS NOT NULL),
                               '{}'::jsonb) AS statuses
               FROM reply_sends s
               LEFT JOIN delivery_statuses d ON d.tenant_id = s.tenant_id AND d.external_id = s.wamid
               WHERE s.tenant_id = $1 AND s.message_id = ANY($2::uuid[])
               GROUP BY s.message_id, s.part ORDER BY s.message_id, s.part""",
            tenant_id, list(message_ids)))
        parts: dict[UUID, list[DeliveredPart]] = {}
        for r in rows:
            statuses = {k: datetime.fromisoformat(v) for k, v in r["statuses"].items()}
            parts.setdefault(r["message_id"], []).append(
                DeliveredPart(r["part"], r["state"], r["wamid"], r["error_code"], r["error"], statuses))
        return {m: Delivery(tuple(p)) for m, p in parts.items()}
