"""MemoryReader over Postgres: scoped reads of one user's turns. Every query filters on
tenant and user (rows.scope_sql or the same columns spelled out) and skips deleted turns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts import TurnRecorded
from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import TURN_COLUMNS, as_turn, offline_notice, or_query, scope_sql, unit_scope_sql
from convmem.memory.speakers import vocative
from convmem.ports import MemoryReader, MemoryScope, Summary
from convmem.ports.records import NAMED_LINE


def _speaker(param: str) -> str:
    """Who said a turn, in SQL: metadata.speaker, else the name the line starts with (the
    parameter `param` carries NAMED_LINE's pattern)."""
    return f"coalesce(nullif(btrim(m.metadata ->> 'speaker'), ''), btrim(substring(m.content from {param}::text)))"


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

    async def search_text(self, scope: MemoryScope, query: str, limit: int,
                          context: float = 0.0) -> list[tuple[UUID, float]]:
        """Turns sharing words with the query, scored by how much of the query's information
        they cover: the idf (BM25's, over this user's own turns) of the words a turn shares,
        divided by the idf of all the query's words. 1.0 means every word matched; a turn
        that shares only a common word scores near 0. Chat turns are short, so term frequency
        and length add little; rarity is what separates "Porto" from "say".

        With `context` > 0 a turn is read together with the turn before it (the question it
        may answer): the previous turn's words count too, at that weight, so "The lemon tart,
        easily!" is found by the words of "Which dish did you like best?"."""
        tsq = or_query(query)
        if tsq is None:
            return []
        where, args = scope_sql(scope, 3)
        weight = f"${3 + len(args)}"
        carried = f"""UNION ALL
                    SELECT m.id, m.occurred_at, h.lex, {weight}::float8 FROM hits h
                    JOIN messages m ON m.conversation_id = h.conversation_id AND m.seq = h.seq + 1
                    WHERE {where}""" if context > 0 else ""
        rows = await self._pool.run(lambda c: c.fetch(
            f"""WITH terms AS (
                    SELECT DISTINCT lex, quote_literal(lex)::tsquery AS q
                    FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS lex),
                hits AS (
                    SELECT m.id, m.conversation_id, m.seq, m.occurred_at, t.lex
                    FROM messages m JOIN terms t ON m.search_tsv @@ t.q
                    WHERE m.search_tsv @@ to_tsquery('english', $1) AND {where}
                      AND NOT {offline_notice("m.")}),
                df AS (SELECT lex, count(*) AS df FROM hits GROUP BY lex),
                n AS (SELECT count(*) AS n FROM messages m WHERE {where}),
                idf AS (SELECT t.lex, ln(1 + (n.n - coalesce(df.df, 0) + 0.5) / (coalesce(df.df, 0) + 0.5)) AS w
                        FROM terms t CROSS JOIN n LEFT JOIN df USING (lex)),
                mass AS (SELECT sum(w) AS total FROM idf),
                said AS (
                    SELECT id, occurred_at, lex, max(part) AS part FROM (
                        SELECT id, occurred_at, lex, 1.0::float8 AS part FROM hits
                        {carried}) x
                    GROUP BY id, occurred_at, lex)
                SELECT s.id, sum(idf.w * s.part) / mass.total AS score
                FROM said s JOIN idf USING (lex) CROSS JOIN mass
                GROUP BY s.id, s.occurred_at, mass.total
                ORDER BY score DESC, s.occurred_at DESC LIMIT $2""",
            tsq, limit, *args, *([context] if context > 0 else [])))
        return [(r["id"], float(r["score"])) for r in rows]

    async def search_units(self, scope: MemoryScope, query: str, limit: int) -> list[tuple[list[UUID], float]]:
        """Bursts sharing words with the query, scored as search_text scores turns (the idf
        of the words a unit shares over the idf of all the query's words, idf over this
        user's units)."""
        tsq = or_query(query)
        if tsq is None:
            return []
        where, args = unit_scope_sql(scope, 3)
        rows = await self._pool.run(lambda c: c.fetch(
            f"""WITH terms AS (
                    SELECT DISTINCT lex, quote_literal(lex)::tsquery AS q
                    FROM unnest(tsvector_to_array(to_tsvector('english', $1))) AS lex),
                hits AS (
                    SELECT u.id, u.members, u.occurred_at, t.lex
                    FROM message_units u JOIN terms t ON u.search_tsv @@ t.q
                    WHERE u.search_tsv @@ to_tsquery('english', $1) AND {where}),
                df AS (SELECT lex, count(*) AS df FROM hits GROUP BY lex),
                n AS (SELECT count(*) AS n FROM message_units u WHERE {where}),
                idf AS (SELECT t.lex, ln(1 + (n.n - coalesce(df.df, 0) + 0.5) / (coalesce(df.df, 0) + 0.5)) AS w
                        FROM terms t CROSS JOIN n LEFT JOIN df USING (lex)),
                mass AS (SELECT sum(w) AS total FROM idf)
                SELECT h.members, sum(idf.w) / mass.total AS score
                FROM hits h JOIN idf USING (lex) CROSS JOIN mass
                GROUP BY h.id, h.members, h.occurred_at, mass.total
                ORDER BY score DESC, h.occurred_at DESC LIMIT $2""",
            tsq, limit, *args))
        return [(list(r["members"]), float(r["score"])) for r in rows]

    async def people(self, scope: MemoryScope, recent: int = 1000) -> dict[str, int]:
        """Who speaks in this user's `recent` latest turns (metadata.speaker, or a name the
        line starts with), and how many of those turns each said."""
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT name, count(*) AS n FROM (
                   SELECT {_speaker('$4')} AS name FROM messages m
                   WHERE m.tenant_id = $1 AND m.user_id = $2 AND m.deleted_at IS NULL
                   ORDER BY m.occurred_at DESC LIMIT $3) AS latest
               WHERE name IS NOT NULL GROUP BY name""",
            scope.tenant_id, scope.user_id, recent, NAMED_LINE.pattern))
        return {r["name"]: int(r["n"]) for r in rows}

    async def addressed(self, scope: MemoryScope, names: Sequence[str]) -> dict[str, dict[str, int]]:
        """For each name, how many of this user's turns address someone by it
        (convmem.memory.speakers.vocative), per side: the turn's speaker when the history
        names them, else its role. Names are plain words, never regular expression syntax."""
        wanted = sorted({n for n in names if n.isalpha()})
        if not wanted:
            return {}
        rows = await self._pool.run(lambda c: c.fetch(
            f"""WITH w AS (
                   SELECT word, lex FROM unnest($3::text[]) AS word,
                   LATERAL unnest(tsvector_to_array(to_tsvector('english', word))) AS lex)
               SELECT w.word, coalesce({_speaker('$5')}, m.role) AS side, count(*) AS n
                 FROM w JOIN messages m
                 ON m.tenant_id = $1 AND m.user_id = $2 AND m.deleted_at IS NULL
                AND m.search_tsv @@ quote_literal(w.lex)::tsquery
                AND m.content ~* replace($4, '{{name}}', w.word)
               GROUP BY 1, 2""",
            scope.tenant_id, scope.user_id, wanted, vocative("{name}"), NAMED_LINE.pattern))
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["word"], {})[r["side"]] = int(r["n"])
        return out

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

    async def neighbourhood(self, scope: MemoryScope, ids: Sequence[UUID], radius: int) -> list[TurnRecorded]:
        """In one round trip: the turns with these ids that the scope admits, and the turns
        within `radius` of them in their conversations (this user's, whatever the scope's
        time bounds, as `neighbours`)."""
        where, args = scope_sql(scope, 3)
        user, user_args = scope_sql(MemoryScope(scope.tenant_id, scope.user_id), 3 + len(args))
        rows = await self._pool.run(lambda c: c.fetch(
            f"""WITH hit AS (SELECT m.conversation_id, m.seq FROM messages m WHERE m.id = ANY($1::uuid[]) AND {where})
                SELECT {TURN_COLUMNS} FROM messages m
                WHERE (m.conversation_id, m.seq) IN (
                    SELECT h.conversation_id, h.seq + d FROM hit h, generate_series(-$2::int, $2::int) AS d)
                  AND {user}""",
            list(ids), max(0, radius), *args, *user_args))
        return [as_turn(r) for r in rows]

    async def last_said_at(self, scope: MemoryScope) -> datetime | None:
        """When this user's newest turn was said (whatever the scope's time bounds)."""
        return await self._pool.run(lambda c: c.fetchval(
            """SELECT occurred_at FROM messages WHERE tenant_id = $1 AND user_id = $2 AND deleted_at IS NULL
               ORDER BY occurred_at DESC LIMIT 1""", scope.tenant_id, scope.user_id))

    async def summary(self, conversation_id: UUID) -> Summary | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT summary, through_seq, method FROM conversation_summaries WHERE conversation_id = $1",
            conversation_id))
        return None if row is None else Summary(conversation_id, row["summary"], row["through_seq"], row["method"])
