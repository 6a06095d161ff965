"""ReplyLedger over Postgres: the replies table's primary key (in_reply_to) makes the
first claim of a turn the only one."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from contracts import ReplyGenerated
from convmem.adapters.postgres.batching import Batched
from convmem.adapters.postgres.pool import PgPool
from convmem.ports import ReplyLedger, StoredReply


class PgReplyLedger(ReplyLedger):
    """Lookups and marks of the replies answered at the same moment share one statement
    (convmem.adapters.postgres.batching); a claim is one statement, not a transaction."""

    def __init__(self, pool: PgPool) -> None:
        self._pool = pool
        self._find = Batched(self._find_many)
        self._mark = Batched(self._mark_many)

    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None:
        return await self._find(in_reply_to)

    async def _find_many(self, ids: Sequence[UUID]) -> dict[UUID, StoredReply]:
        rows = await self._pool.run(lambda c: c.fetch(
            "SELECT in_reply_to, event, published_at FROM replies WHERE in_reply_to = ANY($1::uuid[])", list(ids)))
        return {r["in_reply_to"]: StoredReply(ReplyGenerated.model_validate(r["event"]), r["published_at"] is not None)
                for r in rows}

    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply:
        # The insert and, when another claim came first, the stored reply, in one round trip.
        # A claim committed by another worker after this statement began is not in its
        # snapshot: then the stored reply is read again.
        row = await self._pool.run(lambda c: c.fetchrow(
            """WITH claimed AS (
                   INSERT INTO replies (in_reply_to, tenant_id, message_id, event) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (in_reply_to) DO NOTHING RETURNING in_reply_to)
               SELECT true AS mine, NULL::jsonb AS event, NULL::timestamptz AS published_at FROM claimed
               UNION ALL
               SELECT false, event, published_at FROM replies
               WHERE in_reply_to = $1 AND NOT EXISTS (SELECT 1 FROM claimed)""",
            reply.in_reply_to, reply.tenant_id, reply.message_id, reply.model_dump(mode="json")))
        if row is not None and row["mine"]:
            return StoredReply(reply, published=False)
        if row is None:
            row = await self._pool.run(lambda c: c.fetchrow(
                "SELECT event, published_at FROM replies WHERE in_reply_to = $1", reply.in_reply_to))
            assert row is not None, "a claim that conflicted has a stored reply"
        return StoredReply(ReplyGenerated.model_validate(row["event"]), row["published_at"] is not None)

    async def mark_reply_published(self, in_reply_to: UUID) -> None:
        await self._mark(in_reply_to)

    async def _mark_many(self, ids: Sequence[UUID]) -> dict[UUID, None]:
        await self._pool.run(lambda c: c.execute(
            "UPDATE replies SET published_at = now() WHERE in_reply_to = ANY($1::uuid[]) AND published_at IS NULL",
            list(ids)))
        return {}
