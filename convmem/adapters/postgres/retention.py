"""RetentionLedger over Postgres: expiry in bounded batches (a tenant's own retention
overrides the default), and PII scrubbing of turns and of the texts derived from them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from contracts import TurnRecorded
from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import TURN_COLUMNS, as_turn
from convmem.ports import RetentionLedger


class PgRetentionLedger(RetentionLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def purge_expired(self, cutoff: datetime, batch: int,
                            deleted_before: datetime | None = None) -> list[UUID]:
        """One bounded batch of turns past retention, or soft-deleted before `deleted_before`;
        once a deleted conversation has no turns left, its row goes too."""
        async def tx(c: asyncpg.Connection) -> list[UUID]:
            # A tenant's own retention period overrides the default cutoff.
            rows = await c.fetch(
                """DELETE FROM messages WHERE id IN (
                       SELECT m.id FROM messages m LEFT JOIN tenant_policies p ON p.tenant_id = m.tenant_id
                       WHERE m.occurred_at < CASE WHEN p.message_retention_days IS NULL THEN $1
                                             ELSE now() - make_interval(days => p.message_retention_days) END
                       ORDER BY m.occurred_at LIMIT $2 FOR UPDATE OF m SKIP LOCKED)
                   RETURNING id""", cutoff, batch)
            if deleted_before is not None and len(rows) < batch:
                rows += await c.fetch(
                    """DELETE FROM messages WHERE id IN (
                           SELECT id FROM messages WHERE deleted_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
                       RETURNING id""", deleted_before, batch - len(rows))
                if len(rows) < batch:
                    await c.execute(
                        """DELETE FROM conversations c WHERE c.status = 'deleted' AND c.deleted_at < $1
                           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)""",
                        deleted_before)
            gone = [r["id"] for r in rows]
            if gone:  # what the sender kept about purged replies goes with them
                await c.execute(
                    """DELETE FROM delivery_statuses s USING reply_sends r
                       WHERE r.message_id = ANY($1::uuid[]) AND s.tenant_id = r.tenant_id AND s.external_id = r.wamid""",
                    gone)
                await c.execute("DELETE FROM reply_sends WHERE message_id = ANY($1::uuid[])", gone)
                await c.execute("DELETE FROM message_amendments WHERE message_id = ANY($1::uuid[])", gone)
            # Edits and revokes whose message never came are kept no longer than a message would be.
            await c.execute(
                """DELETE FROM message_amendments WHERE id IN (
                       SELECT a.id FROM message_amendments a LEFT JOIN tenant_policies p ON p.tenant_id = a.tenant_id
                       WHERE a.applied_at IS NULL AND a.occurred_at < CASE WHEN p.message_retention_days IS NULL
                           THEN $1 ELSE now() - make_interval(days => p.message_retention_days) END LIMIT $2)""",
                cutoff, batch)
            return gone

        return await self._pool.run(tx)

    async def purge_summaries(self, cutoff: datetime) -> tuple[int, int]:
        """Conversation and interaction summaries not updated since their retention began."""
        async def tx(c: asyncpg.Connection) -> tuple[int, int]:
            when = """CASE WHEN p.summary_retention_days IS NULL THEN $1
                           ELSE now() - make_interval(days => p.summary_retention_days) END"""
            conv = await c.fetchval(
                f"""WITH d AS (DELETE FROM conversation_summaries s USING conversation_summaries s2
                               LEFT JOIN tenant_policies p ON p.tenant_id = s2.tenant_id
                               WHERE s.conversation_id = s2.conversation_id AND s.updated_at < {when} RETURNING 1)
                    SELECT count(*) FROM d""", cutoff)
            users = await c.fetchval(
                f"""WITH d AS (DELETE FROM user_summaries s USING user_summaries s2
                               LEFT JOIN tenant_policies p ON p.tenant_id = s2.tenant_id
                               WHERE (s.tenant_id, s.user_id) = (s2.tenant_id, s2.user_id)
                                 AND s.updated_at < {when} RETURNING 1)
                    SELECT count(*) FROM d""", cutoff)
            return int(conv), int(users)

        return await self._pool.run(tx)

    async def turns_due_for_scrub(self, default_cutoff: datetime, default_mode: str, batch: int
                                  ) -> list[TurnRecorded]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {TURN_COLUMNS} FROM messages WHERE id IN (
                    SELECT m.id FROM messages m LEFT JOIN tenant_policies p ON p.tenant_id = m.tenant_id
                    WHERE m.pii_scrubbed_at IS NULL AND m.deleted_at IS NULL
                      AND coalesce(p.pii_mode, $2) <> 'off'
                      AND m.recorded_at < CASE WHEN p.pii_delay_hours IS NULL THEN $1
                                               ELSE now() - make_interval(hours => p.pii_delay_hours) END
                    ORDER BY m.recorded_at LIMIT $3)""", default_cutoff, default_mode, batch))
        return [as_turn(r) for r in rows]

    async def record_scrub(self, message_id: UUID, text: str | None, kinds: dict[str, int]) -> bool:
        """Mark a turn checked, replacing its text when something was found. False when it was
        checked before (a redelivery, or the sweep and the consumer both got to it)."""
        done: str = await self._pool.run(lambda c: c.execute(
            """UPDATE messages SET content = coalesce($2, content), pii_scrubbed = $3, pii_scrubbed_at = now(),
                   pii_kinds = $4
               WHERE id = $1 AND pii_scrubbed_at IS NULL""", message_id, text, bool(kinds), kinds or None))
        return done.endswith(" 1")

    async def derived_texts(self, conversation_id: UUID) -> tuple[str | None, str | None]:
        """The conversation's title and rolling summary: text made from its turns."""
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT c.title, s.summary FROM conversations c
               LEFT JOIN conversation_summaries s ON s.conversation_id = c.id WHERE c.id = $1""", conversation_id))
        return (None, None) if row is None else (row["title"], row["summary"])

    async def replace_derived_texts(self, conversation_id: UUID, title: str | None, summary: str | None) -> None:
        async def tx(c: asyncpg.Connection) -> None:
            async with c.transaction():
                if title is not None:
                    await c.execute("UPDATE conversations SET title = $2 WHERE id = $1 AND title IS DISTINCT FROM $2",
                                    conversation_id, title)
                if summary is not None:
                    await c.execute("""UPDATE conversation_summaries SET summary = $2
                                       WHERE conversation_id = $1 AND summary IS DISTINCT FROM $2""",
                                    conversation_id, summary)

        await self._pool.run(tx)
