"""SubjectKeys over Postgres: one live data key per user; erasure nulls its secret, which
shreds every event sealed with it."""

from __future__ import annotations

import os
import uuid
from uuid import UUID

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import SubjectKeys


class PgSubjectKeys(SubjectKeys):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def subject_key(self, tenant_id: str, user_id: str) -> tuple[UUID, bytes]:
        async def q(c: asyncpg.Connection) -> tuple[UUID, bytes]:
            await c.execute(
                """INSERT INTO subject_keys (key_id, tenant_id, user_id, secret) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (tenant_id, user_id) WHERE destroyed_at IS NULL DO NOTHING""",
                uuid.uuid4(), tenant_id, user_id, os.urandom(32))
            row = await c.fetchrow(
                "SELECT key_id, secret FROM subject_keys WHERE tenant_id = $1 AND user_id = $2 AND destroyed_at IS NULL",
                tenant_id, user_id)
            assert row is not None
            return row["key_id"], bytes(row["secret"])

        return await self._pool.run(q)

    async def key_by_id(self, key_id: UUID) -> bytes | None:
        secret = await self._pool.run(lambda c: c.fetchval("SELECT secret FROM subject_keys WHERE key_id = $1", key_id))
        return None if secret is None else bytes(secret)
