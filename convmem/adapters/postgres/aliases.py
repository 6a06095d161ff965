"""UserAliases over Postgres: the other ids a WhatsApp user is known by after a change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.ports import UserAliases


class PgUserAliases(UserAliases):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def resolve_aliases(self, tenant_id: str, ids: Sequence[str]) -> dict[str, str]:
        if not ids:
            return {}
        rows = await self._pool.run(lambda c: c.fetch(
            "SELECT alias, user_id FROM user_aliases WHERE tenant_id = $1 AND alias = ANY($2::text[])",
            tenant_id, list(ids)))
        return {r["alias"]: r["user_id"] for r in rows}

    async def add_aliases(self, tenant_id: str, user_id: str, aliases: Sequence[str], changed_at: datetime) -> str:
        async def tx(c: asyncpg.Connection) -> str:
            async with c.transaction():
                user: str = await c.fetchval(
                    "SELECT coalesce((SELECT user_id FROM user_aliases WHERE tenant_id = $1 AND alias = $2), $2)",
                    tenant_id, user_id)
                await c.executemany(
                    """INSERT INTO user_aliases AS a (tenant_id, alias, user_id, changed_at) VALUES ($1, $2, $3, $4)
                       ON CONFLICT (tenant_id, alias) DO UPDATE SET user_id = excluded.user_id,
                           changed_at = excluded.changed_at WHERE a.changed_at <= excluded.changed_at""",
                    [(tenant_id, alias, user, changed_at) for alias in dict.fromkeys(aliases) if alias != user])
                return user

        return await self._pool.run(tx)
