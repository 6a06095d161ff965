"""EmbeddingLedger over Postgres: what to embed (the text as it is now) and what was."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import offline_notice
from convmem.ports import EmbeddingLedger


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
