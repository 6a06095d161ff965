"""EmbeddingLedger over Postgres: what to embed (the text as it is now) and what was."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import offline_notice
from convmem.ports import EmbeddingLedger, Unit

UNIT_COLUMNS = "id, tenant_id, user_id, conversation_id, members, occurred_at, content, version"


def as_unit(row: asyncpg.Record) -> Unit:
    return Unit(row["id"], row["tenant_id"], row["user_id"], row["conversation_id"], tuple(row["members"]),
                row["occurred_at"], row["content"], row["version"])


class PgEmbeddingLedger(EmbeddingLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def texts_to_embed(self, message_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The current text of live turns: a turn scrubbed or deleted since its event was
        published is embedded as it is now, or not at all. An offline-mode notice has no
        text to embed: it is not memory."""
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT id, CASE WHEN {offline_notice()} THEN '' ELSE content END AS content
               FROM messages WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL""",
            list(message_ids)))
        return {r["id"]: r["content"] for r in rows}

    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None:
        await self._pool.run(lambda c: c.execute(
            "UPDATE messages SET embedded_at = now() WHERE id = ANY($1::uuid[]) AND embedded_at IS NULL",
            list(message_ids)))

    async def stale_units(self, conversation_ids: Sequence[UUID] | None, limit: int) -> list[Unit]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {UNIT_COLUMNS} FROM message_units
                WHERE embedded_at IS NULL AND ($1::uuid[] IS NULL OR conversation_id = ANY($1::uuid[]))
                ORDER BY conversation_id, first_seq LIMIT $2""",
            None if conversation_ids is None else list(conversation_ids), limit))
        return [as_unit(r) for r in rows]

    async def units_embedded(self, units: Sequence[Unit]) -> None:
        if not units:
            return
        ids, versions = [u.unit_id for u in units], [u.version for u in units]

        async def tx(c: asyncpg.Connection) -> None:
            async with c.transaction():
                # An emptied unit is forgotten once its point is gone; a unit that changed
                # after it was read keeps its newer version stale.
                await c.execute(
                    """DELETE FROM message_units u USING unnest($1::uuid[], $2::int[]) AS d(id, version)
                       WHERE u.id = d.id AND u.version = d.version AND u.content = ''""", ids, versions)
                await c.execute(
                    """UPDATE message_units u SET embedded_at = now()
                       FROM unnest($1::uuid[], $2::int[]) AS d(id, version)
                       WHERE u.id = d.id AND u.version = d.version""", ids, versions)

        await self._pool.run(tx)
