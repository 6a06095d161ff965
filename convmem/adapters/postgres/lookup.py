"""MessageLookup over Postgres: producers' idempotency keys (external ids) already stored."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import MessageLookup


class PgMessageLookup(MessageLookup):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def message_ref(self, tenant_id: str, external_id: str) -> tuple[UUID, UUID] | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT id, conversation_id FROM messages WHERE tenant_id = $1 AND external_id = $2",
            tenant_id, external_id))
        return None if row is None else (row["id"], row["conversation_id"])

    async def known_external_ids(self, tenant_id: str, external_ids: Sequence[str]) -> set[str]:
        rows = await self._pool.run(lambda c: c.fetch(
            "SELECT external_id FROM messages WHERE tenant_id = $1 AND external_id = ANY($2::text[])",
            tenant_id, list(external_ids)))
        return {r["external_id"] for r in rows}
