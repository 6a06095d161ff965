"""MemoryReader over Postgres: scoped reads of one user's turns. Every query filters on
tenant and user (rows.scope_sql or the same columns spelled out) and skips deleted turns."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from contracts import TurnRecorded
from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import TURN_COLUMNS, as_turn, or_query, scope_sql
from convmem.ports import MemoryReader, MemoryScope, Summary


class PgMemoryReader(MemoryReader):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def recent_turns(self, scope: MemoryScope, before_seq: int, limit: int) -> list[TurnRecorded]:
        if scope.conversation_id is None:
            raise ValueError("recent_turns needs a conversation in its scope")
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {TURN_COLUMNS} FROM messages
                WHERE tenant_id = $1 AND user_id = $2 AND conversation_id = $3 AND seq < $4
                  AND deleted_at IS NULL
                ORDER BY seq DESC LIMIT $5""",
            scope.tenant_id, scope.user_id, scope.conversation_id, before_seq, limit))
        return [as_turn(r) for r in reversed(rows)]

    async def turns_by_ids(self, scope: MemoryScope, ids: Sequence[UUID]) -> list[TurnRecorded]:
        where, args = scope_sql(scope, 2)
        rows = await self._pool.run(lambda c: c.fetch(
            f"SELECT {TURN_COLUMNS} FROM messages m WHERE m.id = ANY($1::uuid[]) AND {where}", list(ids), *args))
        return [as_turn(r) for r in rows]

    async def conversation_turns(self, scope: MemoryScope, after_seq: int, limit: int) -> list[TurnRecorded] | None:
        async def q(c: asyncpg.Connection) -> list[TurnRecorded] | None:
            owner = await c.fetchval(
                """SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2 AND user_id = $3
                   AND status <> 'deleted'""",
                scope.conversation_id, scope.tenant_id, scope.user_id)
            if owner is None:
                return None
            rows = await c.fetch(
                f"""SELECT {TURN_COLUMNS} FROM messages
                    WHERE tenant_id = $1 AND user_id = $2 AND conversation_id = $3 AND seq > $4
                      AND deleted_at IS NULL
                    ORDER BY seq LIMIT $5""",
                scope.tenant_id, scope.user_id, scope.conversation_id, after_seq, limit)
            return [as_turn(r) for r in rows]

        return await self._pool.run(q)

    async def search_text(self, scope: MemoryScope, query: str, limit: int) -> list[tuple[UUID, float]]:
        """Turns sharing words with the query, scored by how much of the query's information
        they cover: the idf (BM25's, over this user's own turns) of the words a turn shares,
        divided by the idf of all the query's words. 1.0 means every word matched; a turn
        that shares only a common word scores near 0. Chat turns are short, so term frequency
        and length add little; rarity is what separates "Porto" from "say"."""
        tsq = or_query(query)
        if tsq is None:
            return []
        where, args = scope_sql(scope, 3)
        rows = await self._pool.run(lambda c: c.fetch(
            f"""WITH terms AS (
                    SELECT DISTINCT lex, quote_literal(lex)::tsquery AS q
                    FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS lex),
                hits AS (
                    SELECT m.id, m.occurred_at, t.lex FROM messages m JOIN terms t ON m.search_tsv @@ t.q
                    WHERE m.search_tsv @@ to_tsquery('english', $1) AND {where}),
                df AS (SELECT lex, count(*) AS df FROM hits GROUP BY lex),
                n AS (SELECT count(*) AS n FROM messages m WHERE {where}),
                idf AS (SELECT t.lex, ln(1 + (n.n - coalesce(df.df, 0) + 0.5) / (coalesce(df.df, 0) + 0.5)) AS w
                        FROM terms t CROSS JOIN n LEFT JOIN df USING (lex)),
                mass AS (SELECT sum(w) AS total FROM idf)
                SELECT h.id, sum(idf.w) / mass.total AS score
                FROM hits h JOIN idf USING (lex) CROSS JOIN mass
                GROUP BY h.id, h.occurred_at, mass.total
                ORDER BY score DESC, h.occurred_at DESC LIMIT $2""",
            tsq, limit, *args))
        return [(r["id"], float(r["score"])) for r in rows]

    async def neighbours(self, scope: MemoryScope, places: Sequence[tuple[UUID, int]],
                         radius: int) -> list[TurnRecorded]:
        if not places or radius < 1:
            return []
        where, args = scope_sql(MemoryScope(scope.tenant_id, scope.user_id), 4)
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {TURN_COLUMNS} FROM messages m
                WHERE (m.conversation_id, m.seq) IN (
                    SELECT p.conv, p.seq + d FROM unnest($1::uuid[], $2::int[]) AS p(conv, seq),
                           generate_series(-$3::int, $3::int) AS d)
                  AND {where}""",
            [c for c, _ in places], [s for _, s in places], radius, *args))
        return [as_turn(r) for r in rows]

    async def summary(self, conversation_id: UUID) -> Summary | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT summary, through_seq, method FROM conversation_summaries WHERE conversation_id = $1",
            conversation_id))
        return None if row is None else Summary(conversation_id, row["summary"], row["through_seq"], row["method"])
