"""MessageLookup over Postgres: producers' idempotency keys (external ids) already stored."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import MessageLookup


class PgMessageLookup(MessageLookup):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def message_ref(self, tenant_id: str, user_id: str, external_id: str) -> tuple[UUID, UUID] | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT id, conversation_id FROM messages WHERE tenant_id = $1 AND user_id = $2 AND external_id = $3",
            tenant_id, user_id, external_id))
        return None if row is None else (row["id"], row["conversation_id"])

    async def known_external_ids(self, tenant_id: str, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        if not keys:
            return set()
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT m.user_id, m.external_id FROM messages m
                 JOIN unnest($2::text[], $3::text[]) AS k(user_id, external_id)
                   ON m.user_id = k.user_id AND m.external_id = k.external_id
                WHERE m.tenant_id = $1""",
            tenant_id, [u for u, _ in keys], [e for _, e in keys]))
        return {(r["user_id"], r["external_id"]) for r in rows}
