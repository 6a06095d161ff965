"""Backlog over Postgres: counts of turns a later stage has not finished, read through
partial indexes (messages_not_embedded, messages_reply_expected) so that the count stays
cheap as the table grows."""

from __future__ import annotations

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import Backlog, Pending


class PgBacklog(Backlog):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def unembedded(self, tenant_id: str | None = None) -> Pending:
        # Blank turns are never embedded (there is nothing to embed): they are not waiting.
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT count(*) AS n, min(recorded_at) AS oldest FROM messages
               WHERE embedded_at IS NULL AND deleted_at IS NULL AND btrim(content) <> ''
                 AND ($1::text IS NULL OR tenant_id = $1)""", tenant_id))
        return Pending(row["n"], row["oldest"])

    async def unreplied(self, tenant_id: str | None = None) -> Pending:
        # A reply claimed but not yet published has not reached anyone: still waiting.
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT count(*) AS n, min(m.recorded_at) AS oldest FROM messages m
               WHERE m.reply_expected AND m.role = 'user' AND m.deleted_at IS NULL
                 AND ($1::text IS NULL OR m.tenant_id = $1)
                 AND NOT EXISTS (SELECT 1 FROM replies r WHERE r.in_reply_to = m.id AND r.published_at IS NOT NULL)""",
            tenant_id))
        return Pending(row["n"], row["oldest"])
