"""PrivacyLedger over Postgres: erasure requests and erasure itself, the interaction
summary, and the streamed export of everything stored about a user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import CONVERSATION_COLUMNS, as_erasure
from convmem.errors import PoisonError
from convmem.ports import ErasureStatus, PrivacyLedger, UserSummary

# What erase_subject deletes rows from (subject_keys, updated, is rewritten apart).
ERASED_TABLES = ("messages", "replies", "delivery_statuses", "conversation_summaries", "conversations",
                 "user_summaries", "reply_sends")
_VACUUM_TIMEOUT_S = 3600  # the pool's command timeout (30 s) is for queries, not for a vacuum


class PgPrivacyLedger(PrivacyLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def request_erasure(self, request_id: UUID, tenant_id: str, user_id: str, requested_by: str,
                              requested_at: datetime) -> ErasureStatus:
        """Open a request, or return the one still pending for this subject."""
        async def tx(c: asyncpg.Connection) -> ErasureStatus:
            async with c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(hashtext($1 || chr(31) || $2))", tenant_id, user_id)
                row = await c.fetchrow("SELECT * FROM erasure_requests WHERE request_id = $1", request_id)
                if row is None:
                    row = await c.fetchrow(
                        """SELECT * FROM erasure_requests WHERE tenant_id = $1 AND user_id = $2
                           AND status = 'requested' ORDER BY requested_at DESC LIMIT 1""", tenant_id, user_id)
                if row is None:
                    row = await c.fetchrow(
                        """INSERT INTO erasure_requests (request_id, tenant_id, user_id, requested_by, requested_at)
                           VALUES ($1, $2, $3, $4, $5) RETURNING *""",
                        request_id, tenant_id, user_id, requested_by, requested_at)
                return as_erasure(row)

        return await self._pool.run(tx)

    async def erasure_status(self, tenant_id: str, user_id: str) -> ErasureStatus | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT * FROM erasure_requests WHERE tenant_id = $1 AND user_id = $2
               ORDER BY requested_at DESC LIMIT 1""", tenant_id, user_id))
        return None if row is None else as_erasure(row)

    async def erase_subject(self, request_id: UUID, tenant_id: str, user_id: str) -> ErasureStatus:
        """Everything stored about the subject goes in one transaction: keys first (which
        shreds the event log), then turns, replies, conversations (with their summaries) and
        the interaction summary. Idempotent: a finished request is returned as it was."""
        async def tx(c: asyncpg.Connection) -> ErasureStatus:
            async with c.transaction():
                row = await c.fetchrow("SELECT * FROM erasure_requests WHERE request_id = $1 FOR UPDATE", request_id)
                if row is None:
                    raise PoisonError(f"unknown erasure request {request_id}")
                if row["status"] == "completed":
                    return as_erasure(row)
                keys = await c.fetchval(
                    """WITH d AS (UPDATE subject_keys SET secret = NULL, destroyed_at = now()
                                  WHERE tenant_id = $1 AND user_id = $2 AND destroyed_at IS NULL RETURNING 1)
                       SELECT count(*) FROM d""", tenant_id, user_id)
                replies = await c.fetchval(
                    """WITH d AS (DELETE FROM replies r USING messages m
                                  WHERE r.in_reply_to = m.id AND m.tenant_id = $1 AND m.user_id = $2 RETURNING 1)
                       SELECT count(*) FROM d""", tenant_id, user_id)
                # What Meta reported about the replies sent to the subject: keyed by wamid only,
                # so they are found through the sends before those go.
                statuses = await c.fetchval(
                    """WITH d AS (DELETE FROM delivery_statuses s USING reply_sends r
                                  WHERE r.tenant_id = $1 AND r.user_id = $2 AND r.wamid IS NOT NULL
                                    AND s.tenant_id = r.tenant_id AND s.external_id = r.wamid RETURNING 1)
                       SELECT count(*) FROM d""", tenant_id, user_id)
                # Children before parents; conversations cascade to nothing left by then.
                removed = {}
                for name, table in (("messages", "messages"), ("conversation_summaries", "conversation_summaries"),
                                    ("conversations", "conversations"), ("interaction_summaries", "user_summaries"),
                                    ("reply_sends", "reply_sends"), ("message_amendments", "message_amendments"),
                                    ("user_aliases", "user_aliases")):
                    removed[name] = await c.fetchval(
                        f"WITH d AS (DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2 RETURNING 1) "
                        "SELECT count(*) FROM d", tenant_id, user_id)
                counts = {**removed, "replies": replies, "keys": keys, "delivery_statuses": statuses}
                done = await c.fetchrow(
                    """UPDATE erasure_requests SET status = 'completed', completed_at = now(), counts = $2
                       WHERE request_id = $1 RETURNING *""", request_id, counts)
                return as_erasure(done)

        return await self._pool.run(tx)

    async def compact_erased(self) -> None:
        """A DELETE leaves the rows in the data files as dead tuples (and an UPDATE the old
        version: the destroyed key's secret) until a vacuum. The keys' table is small, so it is
        rewritten (VACUUM FULL: the secrets leave the files) under a lock that is given up rather
        than queued behind a long transaction, which would hold every key lookup behind it.
        The tables erasure deletes from are vacuumed: the rows leave their pages and indexes and
        their space is reused by the next rows (measured: the bytes stay in the freed part of
        a page until then; only a rewrite removes them at once)."""
        async def run(c: asyncpg.Connection) -> None:
            await c.execute("SET lock_timeout = '2s'")
            try:
                await c.execute("VACUUM (FULL) subject_keys", timeout=_VACUUM_TIMEOUT_S)
            finally:
                await c.execute("RESET lock_timeout")
            await c.execute(f"VACUUM {', '.join(ERASED_TABLES)}", timeout=_VACUUM_TIMEOUT_S)

        await self._pool.run(run)

    async def mark_erasure_announced(self, request_id: UUID) -> None:
        await self._pool.run(lambda c: c.execute(
            "UPDATE erasure_requests SET announced_at = now() WHERE request_id = $1 AND announced_at IS NULL",
            request_id))

    async def user_summary(self, tenant_id: str, user_id: str) -> UserSummary | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT conversations, messages, user_messages, first_at, last_at, languages, intents, updated_at
               FROM user_summaries WHERE tenant_id = $1 AND user_id = $2""", tenant_id, user_id))
        return None if row is None else UserSummary(**dict(row))

    async def export_rows(self, tenant_id: str, user_id: str, what: str,
                          batch: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Everything stored about a user, row by row through a server-side cursor, so a user
        with 100k turns is streamed in constant memory. `what`: conversations or messages."""
        sql = {
            "conversations": f"""SELECT {CONVERSATION_COLUMNS} FROM conversations
                                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id""",
            "messages": """SELECT id, conversation_id, seq, role, channel, content_type, content, external_id,
                                  in_reply_to, occurred_at, recorded_at, metadata, language, intent,
                                  intent_confidence, model, prompt_tokens, completion_tokens, latency_ms,
                                  pii_scrubbed, pii_kinds, deleted_at
                           FROM messages WHERE tenant_id = $1 AND user_id = $2
                           ORDER BY conversation_id, seq""",
            "conversation_summaries": """SELECT conversation_id, summary, through_seq, method, updated_at
                                         FROM conversation_summaries WHERE tenant_id = $1 AND user_id = $2""",
        }[what]
        async with self._pool.conn() as conn, conn.transaction():
            async for row in conn.cursor(sql, tenant_id, user_id, prefetch=batch):
                yield dict(row)
