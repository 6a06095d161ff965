"""SubjectKeys over Postgres: one live data key per user; erasure nulls its secret, which
shreds every event sealed with it."""

from __future__ import annotations

import os
import uuid
from uuid import UUID

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import KeyDisclosure, SubjectKeys


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

    async def disclose_key(self, key_id: UUID, tenant_id: str, served_to: str) -> KeyDisclosure | None:
        async def tx(c: asyncpg.Connection) -> KeyDisclosure | None:
            async with c.transaction():
                row = await c.fetchrow("SELECT user_id, secret FROM subject_keys WHERE key_id = $1 AND tenant_id = $2",
                                       key_id, tenant_id)
                if row is None:
                    return None
                if row["secret"] is not None:
                    await c.execute("INSERT INTO key_disclosures (key_id, tenant_id, served_to) VALUES ($1, $2, $3)",
                                    key_id, tenant_id, served_to)
                return KeyDisclosure(key_id, tenant_id, row["user_id"],
                                     None if row["secret"] is None else bytes(row["secret"]))

        return await self._pool.run(tx)
