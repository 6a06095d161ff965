"""Conversations over Postgres: ownership, listing with keyset pages, renaming, archiving,
soft deletion, the title and summary written about one, and usage statistics."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import CONVERSATION_COLUMNS, as_conversation
from convmem.ports import (
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    Conversations,
    ConversationStatus,
    MemoryScope,
    Stats,
    Summary,
)


class PgConversations(Conversations):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def conversation(self, conversation_id: UUID) -> ConversationRef | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            "SELECT id, tenant_id, user_id, status FROM conversations WHERE id = $1", conversation_id))
        return None if row is None else ConversationRef(row["id"], row["tenant_id"], row["user_id"], row["status"])

    async def conversation_info(self, tenant_id: str, conversation_id: UUID) -> ConversationInfo | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE tenant_id = $1 AND id = $2",
            tenant_id, conversation_id))
        return None if row is None else as_conversation(row)

    async def list_conversations(self, where: ConversationFilter, limit: int) -> list[ConversationInfo]:
        clauses: list[str] = ["tenant_id = $1"]
        args: list[Any] = [where.tenant_id]

        def add(sql: str, *values: Any) -> None:
            args.extend(values)
            clauses.append(sql.format(*(f"${len(args) - len(values) + i + 1}" for i in range(len(values)))))

        if where.user_id is not None:
            add("user_id = {0}", where.user_id)
        if where.status is not None:
            add("status = {0}", where.status)
        else:
            clauses.append("status <> 'deleted'")
        if where.conversation_type is not None:
            add("conversation_type = {0}", where.conversation_type)
        if where.since is not None:
            add("created_at >= {0}", where.since)
        if where.until is not None:
            add("created_at < {0}", where.until)
        if where.after is not None:
            add("(created_at, id) < ({0}, {1})", *where.after)
        args.append(limit)
        rows = await self._pool.run(lambda c: c.fetch(
            f"""SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE {" AND ".join(clauses)}
                ORDER BY created_at DESC, id DESC LIMIT ${len(args)}""", *args))
        return [as_conversation(r) for r in rows]

    async def update_conversation(self, tenant_id: str, conversation_id: UUID, *, title: str | None = None,
                                  status: ConversationStatus | None = None) -> ConversationInfo | None:
        row = await self._pool.run(lambda c: c.fetchrow(
            f"""UPDATE conversations SET title = coalesce($3, title),
                       title_source = CASE WHEN $3::text IS NULL THEN title_source ELSE 'user' END,
                       status = coalesce($4, status), updated_at = now()
                WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'
                RETURNING {CONVERSATION_COLUMNS}""", tenant_id, conversation_id, title, status))
        return None if row is None else as_conversation(row)

    async def delete_conversation(self, tenant_id: str, conversation_id: UUID) -> list[UUID]:
        """Soft delete: out of every read at once; the retention sweep removes the rows."""
        async def tx(c: asyncpg.Connection) -> list[UUID]:
            async with c.transaction():
                await c.execute(
                    """UPDATE conversations SET status = 'deleted', deleted_at = coalesce(deleted_at, now()),
                           updated_at = now() WHERE tenant_id = $1 AND id = $2""", tenant_id, conversation_id)
                rows = await c.fetch(
                    """UPDATE messages SET deleted_at = now()
                       WHERE tenant_id = $1 AND conversation_id = $2 AND deleted_at IS NULL RETURNING id""",
                    tenant_id, conversation_id)
                return [r["id"] for r in rows]

        return await self._pool.run(tx)

    async def set_model_title(self, conversation_id: UUID, title: str) -> bool:
        done: str = await self._pool.run(lambda c: c.execute(
            """UPDATE conversations SET title = $2, title_source = 'model', updated_at = now()
               WHERE id = $1 AND title_source = 'first_message' AND status <> 'deleted'""",
            conversation_id, title))
        return done.endswith(" 1")

    async def save_summary(self, scope: MemoryScope, summary: Summary) -> None:
        # Two workers may race on one conversation: the summary that covers more turns wins.
        await self._pool.run(lambda c: c.execute(
            """INSERT INTO conversation_summaries (conversation_id, tenant_id, user_id, summary, through_seq, method)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (conversation_id) DO UPDATE SET summary = excluded.summary,
                   through_seq = excluded.through_seq, method = excluded.method, updated_at = now()
               WHERE conversation_summaries.through_seq < excluded.through_seq""",
            summary.conversation_id, scope.tenant_id, scope.user_id, summary.text, summary.through_seq,
            summary.method))

    async def stats(self, tenant_id: str, user_id: str | None) -> Stats:
        row = await self._pool.run(lambda c: c.fetchrow(
            """SELECT count(DISTINCT m.user_id) AS users, count(DISTINCT m.conversation_id) AS conversations,
                      count(*) AS messages,
                      count(*) FILTER (WHERE m.role = 'user') AS by_user,
                      count(*) FILTER (WHERE m.role = 'assistant') AS by_assistant,
                      count(*) FILTER (WHERE m.role = 'system') AS by_system,
                      count(*) FILTER (WHERE m.role = 'user' AND m.reply_expected) AS reply_expected,
                      count(*) FILTER (WHERE m.role = 'user' AND m.reply_expected AND EXISTS (
                          SELECT 1 FROM replies r WHERE r.in_reply_to = m.id AND r.published_at IS NOT NULL))
                          AS replied,
                      min(m.occurred_at) AS first_at, max(m.occurred_at) AS last_at
               FROM messages m
               WHERE m.tenant_id = $1 AND ($2::text IS NULL OR m.user_id = $2) AND m.deleted_at IS NULL""",
            tenant_id, user_id))
        assert row is not None
        return Stats(users=row["users"], conversations=row["conversations"], messages=row["messages"],
                     by_role={"user": row["by_user"], "assistant": row["by_assistant"], "system": row["by_system"]},
                     reply_expected=row["reply_expected"], replied=row["replied"],
                     first_interaction=row["first_at"], last_interaction=row["last_at"])
