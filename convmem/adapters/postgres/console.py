"""ConsoleLedger over Postgres: sessions under the hash of their cookie, the action record,
and the console's tenant-wide reads (users by id prefix from the interaction summaries,
messages per minute from the turns' time index, a reply's latency and tokens)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.ports.console import ConsoleAction, ConsoleLedger, ConsoleSession, TurnFacts, UserRow


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PgConsoleLedger(ConsoleLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def open_session(self, session: ConsoleSession) -> None:
        async def tx(conn: asyncpg.Connection) -> None:
            # Expired sessions leave as new ones come: the table holds the live ones only.
            await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
            await conn.execute(
                """INSERT INTO console_sessions (token_hash, tenant_id, subject, roles, csrf, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                session.token_hash, session.tenant_id, session.subject, sorted(session.roles), session.csrf,
                session.created_at, session.expires_at)

        await self._pool.run(tx)

    async def session(self, token_hash: str, now: datetime) -> ConsoleSession | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT token_hash, tenant_id, subject, roles, csrf, created_at, expires_at
               FROM console_sessions WHERE token_hash = $1 AND expires_at > $2""", token_hash, now))
        if row is None:
            return None
        return ConsoleSession(row["token_hash"], row["tenant_id"], row["subject"], frozenset(row["roles"]),
                              row["csrf"], row["created_at"], row["expires_at"])

    async def close_session(self, token_hash: str) -> None:
        await self._pool.run(lambda c: c.execute("DELETE FROM console_sessions WHERE token_hash = $1", token_hash))

    async def record_action(self, action: ConsoleAction) -> None:
        await self._pool.run(lambda c: c.execute(
            """INSERT INTO console_actions (tenant_id, actor, action, subject, at, detail)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            action.tenant_id, action.actor, action.action, action.subject, action.at, action.detail))

    async def actions(self, tenant_id: str, limit: int, subject: str | None = None,
                      kinds: Sequence[str] | None = None) -> list[ConsoleAction]:
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT tenant_id, actor, action, subject, at, detail FROM console_actions
               WHERE tenant_id = $1 AND ($2::text IS NULL OR subject = $2)
                 AND ($4::text[] IS NULL OR action = ANY($4::text[]))
               ORDER BY at DESC, id DESC LIMIT $3""", tenant_id, subject, limit,
            None if kinds is None else list(kinds)))
        return [ConsoleAction(r["tenant_id"], r["actor"], r["action"], r["subject"], r["at"], r["detail"])
                for r in rows]

    async def find_users(self, tenant_id: str, prefix: str, limit: int) -> list[UserRow]:
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT user_id, conversations, last_at FROM user_summaries
               WHERE tenant_id = $1 AND lower(user_id) LIKE lower($2)
               ORDER BY last_at DESC NULLS LAST, user_id LIMIT $3""", tenant_id, _like_prefix(prefix), limit))
        return [UserRow(r["user_id"], r["conversations"], r["last_at"]) for r in rows]

    async def messages_per_minute(self, tenant_id: str, since: datetime) -> list[tuple[datetime, int]]:
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT date_trunc('minute', occurred_at) AS minute, count(*) AS n FROM messages
               WHERE occurred_at >= $2 AND tenant_id = $1 AND deleted_at IS NULL
               GROUP BY 1 ORDER BY 1""", tenant_id, since))
        return [(r["minute"], r["n"]) for r in rows]

    async def turn_facts(self, tenant_id: str, message_ids: Sequence[UUID]) -> dict[UUID, TurnFacts]:
        if not message_ids:
            return {}
        rows = await self._pool.run(lambda c: c.fetch(
            """SELECT id, latency_ms, prompt_tokens, completion_tokens FROM messages
               WHERE tenant_id = $1 AND id = ANY($2::uuid[])""", tenant_id, list(message_ids)))
        return {r["id"]: TurnFacts(r["latency_ms"], r["prompt_tokens"], r["completion_tokens"]) for r in rows}
