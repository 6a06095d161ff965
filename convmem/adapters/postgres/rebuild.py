"""The rebuild's ports over Postgres: live turns to re-embed (TurnSource) and each index's
unfinished rebuild (IndexBuilds, the index_generations table)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts import TurnRecorded
from convmem.adapters.postgres.embeddings import UNIT_COLUMNS, as_unit
from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import TURN_COLUMNS, as_turn, offline_notice
from convmem.ports import Unit
from convmem.ports.generations import Generation, IndexBuild, IndexBuilds, TurnSource

# What the indexer embeds: live turns with text, except offline-mode notices (not memory).
# Anything else gets no vector, so it is not counted as work either.
_LIVE = f"""deleted_at IS NULL AND btrim(content) <> '' AND NOT {offline_notice()}"""


class PgTurnSource(TurnSource):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def watermark(self) -> datetime:
        # recorded_at, pii_scrubbed_at and deleted_at are now(): their transaction's start.
        # So every row stamped before the oldest transaction still running has committed.
        at: datetime = await self._pool.run(lambda c: c.fetchval(
            """SELECT least(now(), (SELECT min(xact_start) FROM pg_stat_activity
                                    WHERE pid <> pg_backend_pid() AND datname = current_database()))"""))
        return at

    async def count_live(self, tenant_id: str | None) -> int:
        n: int = await self._pool.run(lambda c: c.fetchval(
            f"SELECT count(*) FROM messages WHERE {_LIVE} AND ($1::text IS NULL OR tenant_id = $1)", tenant_id))
        return n

    async def live_after(self, cursor: UUID | None, tenant_id: str | None, limit: int) -> list[TurnRecorded]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {TURN_COLUMNS} FROM messages
                WHERE {_LIVE} AND ($1::uuid IS NULL OR id > $1) AND ($2::text IS NULL OR tenant_id = $2)
                ORDER BY id LIMIT $3""", cursor, tenant_id, limit))
        return [as_turn(r) for r in rows]

    async def changed_since(self, since: datetime, cursor: UUID | None, tenant_id: str | None,
                            limit: int) -> list[TurnRecorded]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {TURN_COLUMNS} FROM messages
                WHERE {_LIVE} AND (recorded_at >= $1 OR (pii_scrubbed AND pii_scrubbed_at >= $1))
                  AND ($2::uuid IS NULL OR id > $2) AND ($3::text IS NULL OR tenant_id = $3)
                ORDER BY id LIMIT $4""", since, cursor, tenant_id, limit))
        return [as_turn(r) for r in rows]

    async def deleted_since(self, since: datetime, tenant_id: str | None) -> list[UUID]:
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT id FROM messages WHERE deleted_at >= $1 AND ($2::text IS NULL OR tenant_id = $2)""",
            since, tenant_id))
        return [r["id"] for r in rows]

    async def erased_since(self, since: datetime, tenant_id: str | None) -> list[tuple[str, str]]:
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT DISTINCT tenant_id, user_id FROM erasure_requests
               WHERE status = 'completed' AND completed_at >= $1 AND ($2::text IS NULL OR tenant_id = $2)""",
            since, tenant_id))
        return [(r["tenant_id"], r["user_id"]) for r in rows]

    async def live_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT id FROM messages WHERE id = ANY($1::uuid[]) AND {_LIVE}
                UNION ALL SELECT id FROM message_units WHERE id = ANY($1::uuid[]) AND content <> ''""", list(ids)))
        return {r["id"] for r in rows}

    async def units_after(self, cursor: UUID | None, tenant_id: str | None, limit: int) -> list[Unit]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {UNIT_COLUMNS} FROM message_units
                WHERE content <> '' AND ($1::uuid IS NULL OR id > $1) AND ($2::text IS NULL OR tenant_id = $2)
                ORDER BY id LIMIT $3""", cursor, tenant_id, limit))
        return [as_unit(r) for r in rows]

    async def units_changed_since(self, since: datetime, tenant_id: str | None) -> list[Unit]:
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {UNIT_COLUMNS} FROM message_units
                WHERE changed_at >= $1 AND ($2::text IS NULL OR tenant_id = $2)""", since, tenant_id))
        return [as_unit(r) for r in rows]

    async def mark_embedded_before(self, before: datetime, tenant_id: str | None) -> int:
        done: str = await self._pool.run(lambda c: c.execute(
            """UPDATE messages SET embedded_at = now()
                WHERE embedded_at IS NULL AND deleted_at IS NULL AND recorded_at < $1
                  AND ($2::text IS NULL OR tenant_id = $2)""", before, tenant_id))
        return int(done.split()[-1])


class PgIndexBuilds(IndexBuilds):
    """Progress rows, and a session advisory lock per index on a connection of its own so
    that two rebuilds of one index cannot interleave (the lock goes with the connection if
    the process dies)."""

    def __init__(self, pool: PgPool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._held: dict[str, asyncpg.Connection] = {}

    async def claim(self, target: str) -> bool:
        conn = await asyncpg.connect(self._url)
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext('index_generations'), hashtext($1))", target):
            await conn.close()
            return False
        self._held[target] = conn
        return True

    async def release(self, target: str) -> None:
        conn = self._held.pop(target, None)
        if conn is not None:
            await conn.close()  # the session's lock goes with it

    async def unfinished(self, target: str) -> IndexBuild | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT * FROM index_generations WHERE target = $1 AND state <> 'serving'", target))
        if row is None:
            return None
        return IndexBuild(generation=row["generation"], model=row["model"], dimension=row["dimension"],
                          tenant_id=row["tenant_id"], started_at=row["started_at"], cursor=row["cursor_id"],
                          embedded=row["embedded"], state=row["state"])

    async def save(self, target: str, build: IndexBuild) -> None:
        await self._pool.run(lambda c: c.execute(
            """INSERT INTO index_generations (target, generation, model, dimension, tenant_id, started_at,
                                              cursor_id, embedded, state)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (target) WHERE state <> 'serving' DO UPDATE SET generation = $2, model = $3,
                   dimension = $4, tenant_id = $5, started_at = $6, cursor_id = $7, embedded = $8, state = $9,
                   updated_at = now()""",
            target, build.generation, build.model, build.dimension, build.tenant_id, build.started_at,
            build.cursor, build.embedded, build.state))

    async def abandon(self, target: str) -> None:
        await self._pool.run(lambda c: c.execute(
            "DELETE FROM index_generations WHERE target = $1 AND state <> 'serving'", target))

    async def serve(self, target: str, generation: Generation) -> None:
        async def tx(c: asyncpg.Connection) -> None:
            async with c.transaction():
                await c.execute("DELETE FROM index_generations WHERE target = $1", target)
                await c.execute(
                    """INSERT INTO index_generations (target, generation, model, dimension, state)
                       VALUES ($1, $2, $3, $4, 'serving')""",
                    target, generation.name, generation.model, generation.dimension)

        await self._pool.run(tx)

    async def serving(self, target: str) -> Generation | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT generation, model, dimension FROM index_generations WHERE target = $1 AND state = 'serving'",
            target))
        return None if row is None else Generation(row["generation"], row["model"], row["dimension"])
