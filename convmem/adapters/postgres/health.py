"""Health over Postgres: one round trip through the pool."""

from __future__ import annotations

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import Health


class PgHealth(Health):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def ping(self) -> None:
        await self._pool.run(lambda c: c.fetchval("SELECT 1"))
