"""ReplyLedger over Postgres: the replies table's primary key (in_reply_to) makes the
first claim of a turn the only one."""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg

from contracts import ReplyGenerated
from convmem.adapters.postgres.pool import PgPool
from convmem.ports import ReplyLedger, StoredReply


class PgReplyLedger(ReplyLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT event, published_at FROM replies WHERE in_reply_to = $1", in_reply_to))
        if row is None:
            return None
        return StoredReply(ReplyGenerated.model_validate(row["event"]), row["published_at"] is not None)

    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply:
        async def tx(c: asyncpg.Connection) -> StoredReply:
            await c.execute(
                """INSERT INTO replies (in_reply_to, tenant_id, message_id, event) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (in_reply_to) DO NOTHING""",
                reply.in_reply_to, reply.tenant_id, reply.message_id, json.loads(reply.model_dump_json()))
            row = await c.fetchrow("SELECT event, published_at FROM replies WHERE in_reply_to = $1",
                                   reply.in_reply_to)
            return StoredReply(ReplyGenerated.model_validate(row["event"]), row["published_at"] is not None)

        return await self._pool.run(tx)

    async def mark_reply_published(self, in_reply_to: UUID) -> None:
        await self._pool.run(lambda c: c.execute(
            "UPDATE replies SET published_at = now() WHERE in_reply_to = $1 AND published_at IS NULL",
            in_reply_to))
