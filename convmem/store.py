"""Postgres adapter of the Store port (asyncpg). Every read of turns takes a MemoryScope and
filters on tenant and user here, in one place."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import orjson

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.errors import ConversationClosed, OwnershipConflict, PoisonError, RetryableError
from convmem.ports import (
    ConversationFilter,
    ConversationInfo,
    ConversationRef,
    ConversationStatus,
    Enrichment,
    ErasureStatus,
    MemoryScope,
    RecordOutcome,
    Stats,
    StoredReply,
    Summary,
    TenantPolicy,
    UserSummary,
)

T = TypeVar("T")

_TURN_COLUMNS = """id, tenant_id, user_id, conversation_id, seq, role, channel, content_type, content,
    external_id, in_reply_to, reply_expected, occurred_at, recorded_at, metadata, turn_published_at,
    language, intent, intent_confidence"""

_TITLE_CHARS = 80

# Errors that mean "the database is not there right now", as opposed to "this input is bad".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
)


def _turn(row: asyncpg.Record) -> TurnRecorded:
    return TurnRecorded(
        tenant_id=row["tenant_id"], user_id=row["user_id"], conversation_id=row["conversation_id"],
        message_id=row["id"], seq=row["seq"], role=row["role"], channel=row["channel"],
        content_type=row["content_type"], text=row["content"], external_id=row["external_id"],
        in_reply_to=row["in_reply_to"], reply_expected=row["reply_expected"],
        occurred_at=row["occurred_at"], recorded_at=row["recorded_at"], metadata=row["metadata"],
        language=row["language"], intent=row["intent"], intent_confidence=row["intent_confidence"],
    )


def _scope_sql(scope: MemoryScope, first: int) -> tuple[str, list[Any]]:
    """The WHERE clause every scoped read of messages uses (alias m), from parameter $first on."""
    clauses = [f"m.tenant_id = ${first}", f"m.user_id = ${first + 1}", "m.deleted_at IS NULL"]
    args: list[Any] = [scope.tenant_id, scope.user_id]
    for column, op, value in (("conversation_id", "=", scope.conversation_id), ("occurred_at", ">=", scope.since),
                              ("occurred_at", "<", scope.until)):
        if value is not None:
            args.append(value)
            clauses.append(f"m.{column} {op} ${first + len(args) - 1}")
    return " AND ".join(clauses), args


_CONVERSATION_COLUMNS = """id, tenant_id, user_id, channel, title, title_source, conversation_type, status,
    message_count, created_at, updated_at, last_message_at, metadata"""


def _conversation(row: asyncpg.Record) -> ConversationInfo:
    return ConversationInfo(
        conversation_id=row["id"], tenant_id=row["tenant_id"], user_id=row["user_id"], channel=row["channel"],
        title=row["title"], title_source=row["title_source"], conversation_type=row["conversation_type"],
        status=row["status"], message_count=row["message_count"], created_at=row["created_at"],
        updated_at=row["updated_at"], last_message_at=row["last_message_at"], metadata=row["metadata"],
    )


async def _count_interaction(conn: asyncpg.Connection, event: MessageReceived | ReplyGenerated, role: str,
                             new_conversation: bool, found: Enrichment) -> None:
    """The user's interaction summary moves with each recorded turn, in the same transaction,
    so it can never disagree with the turns it counts."""
    by_user = role == "user"
    language = found.language if by_user else None
    intent = found.intent if by_user else None
    await conn.execute(
        """INSERT INTO user_summaries AS s (tenant_id, user_id, conversations, messages, user_messages, first_at,
                                           last_at, languages, intents)
           VALUES ($1, $2, $3, 1, $4, $5, $5,
                   CASE WHEN $6::text IS NULL THEN '{}'::jsonb ELSE jsonb_build_object($6::text, 1) END,
                   CASE WHEN $7::text IS NULL THEN '{}'::jsonb ELSE jsonb_build_object($7::text, 1) END)
           ON CONFLICT (tenant_id, user_id) DO UPDATE SET
               conversations = s.conversations + excluded.conversations,
               messages = s.messages + 1,
               user_messages = s.user_messages + excluded.user_messages,
               first_at = least(s.first_at, excluded.first_at),
               last_at = greatest(s.last_at, excluded.last_at),
               languages = CASE WHEN $6::text IS NULL THEN s.languages ELSE jsonb_set(s.languages, ARRAY[$6::text],
                   to_jsonb(coalesce((s.languages ->> $6::text)::int, 0) + 1)) END,
               intents = CASE WHEN $7::text IS NULL THEN s.intents ELSE jsonb_set(s.intents, ARRAY[$7::text],
                   to_jsonb(coalesce((s.intents ->> $7::text)::int, 0) + 1)) END,
               updated_at = now()""",
        event.tenant_id, event.user_id, int(new_conversation), int(by_user), event.occurred_at, language, intent)


def _erasure(row: asyncpg.Record) -> ErasureStatus:
    return ErasureStatus(request_id=row["request_id"], tenant_id=row["tenant_id"], user_id=row["user_id"],
                         status=row["status"], requested_at=row["requested_at"], completed_at=row["completed_at"],
                         counts=dict(row["counts"]), announced=row["announced_at"] is not None)


def or_query(text: str, max_terms: int = 32) -> str | None:
    """A question as a to_tsquery OR of its words: a plain AND would demand that every word
    of a chatty question appear in one turn. Words are letters and digits only, so the
    string cannot carry tsquery operators."""
    words = list(dict.fromkeys(re.findall(r"[^\W_]+", text.lower())))[:max_terms]
    return " | ".join(words) or None


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=lambda v: orjson.dumps(v).decode(),
                              decoder=orjson.loads, schema="pg_catalog")


class PostgresStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, min_size: int = 1, max_size: int = 10) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                             init=_init_connection, command_timeout=30)
        except _UNAVAILABLE as exc:
            raise RetryableError(f"postgres unavailable: {type(exc).__name__}") from exc
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise RetryableError(f"postgres unavailable: {type(exc).__name__}") from exc
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise PoisonError(f"rejected by postgres: {type(exc).__name__}: {exc}") from exc

    async def _run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._conn() as conn:
            return await fn(conn)

    # ------------------------------------------------------------ recording
    async def record_turn(self, event: MessageReceived | ReplyGenerated,
                          enrichment: Enrichment | None = None) -> RecordOutcome:
        found = enrichment or Enrichment()

        async def tx(conn: asyncpg.Connection) -> RecordOutcome:
            async with conn.transaction():
                row = await conn.fetchrow(f"SELECT {_TURN_COLUMNS} FROM messages WHERE id = $1", event.message_id)
                if row is not None:
                    return RecordOutcome(_turn(row), created=False, published=row["turn_published_at"] is not None)
                role = event.role if isinstance(event, MessageReceived) else "assistant"
                title = event.text[:_TITLE_CHARS].strip() or None if role == "user" else None
                opened = await conn.fetchval(
                    """INSERT INTO conversations (id, tenant_id, user_id, channel, title, created_at)
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id""",
                    event.conversation_id, event.tenant_id, event.user_id, event.channel, title,
                    event.occurred_at,
                )
                conv = await conn.fetchrow(
                    "SELECT tenant_id, user_id, message_count, status FROM conversations WHERE id = $1 FOR UPDATE",
                    event.conversation_id,
                )
                assert conv is not None
                if (conv["tenant_id"], conv["user_id"]) != (event.tenant_id, event.user_id):
                    raise OwnershipConflict(f"conversation {event.conversation_id} belongs to another user")
                if conv["status"] == "deleted":
                    raise ConversationClosed(f"conversation {event.conversation_id} was deleted")
                seq = conv["message_count"] + 1
                await conn.execute(
                    """UPDATE conversations SET message_count = $2, updated_at = now(),
                           title = coalesce(title, $4),
                           last_message_at = greatest(coalesce(last_message_at, $3), $3)
                       WHERE id = $1""",
                    event.conversation_id, seq, event.occurred_at, title,
                )
                common: list[Any] = [
                    event.message_id, event.tenant_id, event.user_id, event.conversation_id, seq, role,
                    event.channel, event.occurred_at, found.language, found.intent, found.intent_confidence,
                ]
                if isinstance(event, MessageReceived):
                    inserted = await conn.fetchrow(
                        f"""INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel,
                                occurred_at, language, intent, intent_confidence,
                                content_type, content, external_id, reply_expected, metadata)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                            ON CONFLICT (tenant_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
                            RETURNING {_TURN_COLUMNS}""",
                        *common, event.content_type, event.text, event.external_id,
                        event.reply_expected, event.metadata,
                    )
                else:
                    inserted = await conn.fetchrow(
                        f"""INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel,
                                occurred_at, language, intent, intent_confidence, content, in_reply_to, model,
                                prompt_tokens, completion_tokens, latency_ms, sources, success, metadata)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                                    true, $19)
                            RETURNING {_TURN_COLUMNS}""",
                        *common, event.text, event.in_reply_to, event.model, event.usage.prompt_tokens,
                        event.usage.completion_tokens, event.latency_ms, list(event.sources),
                        {"model": event.model, "sources": [str(s) for s in event.sources],
                         "finish_reason": event.finish_reason},
                    )
                if inserted is None:
                    # Same external id under another message id: a producer reused its key.
                    raise PoisonError("external_id already used by another message of this tenant")
                await _count_interaction(conn, event, role, opened is not None, found)
                return RecordOutcome(_turn(inserted), created=True, published=False)

        return await self._run(tx)

    async def mark_turn_published(self, message_id: UUID) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE messages SET turn_published_at = now() WHERE id = $1 AND turn_published_at IS NULL",
            message_id))

    async def mark_turns_published(self, message_ids: Sequence[UUID]) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE messages SET turn_published_at = now() WHERE id = ANY($1::uuid[]) AND turn_published_at IS NULL",
            list(message_ids)))

    async def mark_embedded(self, message_ids: Sequence[UUID]) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE messages SET embedded_at = now() WHERE id = ANY($1::uuid[]) AND embedded_at IS NULL",
            list(message_ids)))

    # ------------------------------------------------------------- reading
    async def recent_turns(self, scope: MemoryScope, before_seq: int, limit: int) -> list[TurnRecorded]:
        if scope.conversation_id is None:
            raise ValueError("recent_turns needs a conversation in its scope")
        rows = await self._run(lambda c: c.fetch(
            f"""SELECT {_TURN_COLUMNS} FROM messages
                WHERE tenant_id = $1 AND user_id = $2 AND conversation_id = $3 AND seq < $4
                  AND deleted_at IS NULL
                ORDER BY seq DESC LIMIT $5""",
            scope.tenant_id, scope.user_id, scope.conversation_id, before_seq, limit))
        return [_turn(r) for r in reversed(rows)]

    async def turns_by_ids(self, scope: MemoryScope, ids: Sequence[UUID]) -> list[TurnRecorded]:
        where, args = _scope_sql(scope, 2)
        rows = await self._run(lambda c: c.fetch(
            f"SELECT {_TURN_COLUMNS} FROM messages m WHERE m.id = ANY($1::uuid[]) AND {where}", list(ids), *args))
        return [_turn(r) for r in rows]

    async def search_text(self, scope: MemoryScope, query: str, limit: int) -> list[tuple[UUID, float]]:
        """Turns sharing words with the query, scored by how much of the query's information
        they cover: the idf (BM25's, over this user's own turns) of the words a turn shares,
        divided by the idf of all the query's words. 1.0 means every word matched; a turn
        that shares only a common word scores near 0. Chat turns are short, so term frequency
        and length add little; rarity is what separates "Porto" from "say"."""
        tsq = or_query(query)
        if tsq is None:
            return []
        where, args = _scope_sql(scope, 3)
        rows = await self._run(lambda c: c.fetch(
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
        where, args = _scope_sql(MemoryScope(scope.tenant_id, scope.user_id), 4)
        rows = await self._run(lambda c: c.fetch(
            f"""SELECT {_TURN_COLUMNS} FROM messages m
                WHERE (m.conversation_id, m.seq) IN (
                    SELECT p.conv, p.seq + d FROM unnest($1::uuid[], $2::int[]) AS p(conv, seq),
                           generate_series(-$3::int, $3::int) AS d)
                  AND {where}""",
            [c for c, _ in places], [s for _, s in places], radius, *args))
        return [_turn(r) for r in rows]

    async def conversation_turns(self, scope: MemoryScope, after_seq: int, limit: int) -> list[TurnRecorded] | None:
        async def q(c: asyncpg.Connection) -> list[TurnRecorded] | None:
            owner = await c.fetchval(
                """SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2 AND user_id = $3
                   AND status <> 'deleted'""",
                scope.conversation_id, scope.tenant_id, scope.user_id)
            if owner is None:
                return None
            rows = await c.fetch(
                f"""SELECT {_TURN_COLUMNS} FROM messages
                    WHERE tenant_id = $1 AND user_id = $2 AND conversation_id = $3 AND seq > $4
                      AND deleted_at IS NULL
                    ORDER BY seq LIMIT $5""",
                scope.tenant_id, scope.user_id, scope.conversation_id, after_seq, limit)
            return [_turn(r) for r in rows]

        return await self._run(q)

    async def message_ref(self, tenant_id: str, external_id: str) -> tuple[UUID, UUID] | None:
        row = await self._run(lambda c: c.fetchrow(
            "SELECT id, conversation_id FROM messages WHERE tenant_id = $1 AND external_id = $2",
            tenant_id, external_id))
        return None if row is None else (row["id"], row["conversation_id"])

    async def conversation(self, conversation_id: UUID) -> ConversationRef | None:
        row = await self._run(lambda c: c.fetchrow(
            "SELECT id, tenant_id, user_id, status FROM conversations WHERE id = $1", conversation_id))
        return None if row is None else ConversationRef(row["id"], row["tenant_id"], row["user_id"], row["status"])

    # ------------------------------------------------------------- replies
    async def find_reply(self, in_reply_to: UUID) -> StoredReply | None:
        row = await self._run(lambda c: c.fetchrow(
            "SELECT event, published_at FROM replies WHERE in_reply_to = $1", in_reply_to))
        if row is None:
            return None
        return StoredReply(ReplyGenerated.model_validate(row["event"]), row["published_at"] is not None)

    async def claim_reply(self, reply: ReplyGenerated) -> StoredReply:
        async def tx(c: asyncpg.Connection) -> StoredReply:
            await c.execute(
                """INSERT INTO replies (in_reply_to, tenant_id, message_id, event) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (in_reply_to) DO NOTHING""",
                reply.in_reply_to, reply.tenant_id, reply.message_id, json.loads(reply.model_dump_json()))
            row = await c.fetchrow("SELECT event, published_at FROM replies WHERE in_reply_to = $1",
                                   reply.in_reply_to)
            return StoredReply(ReplyGenerated.model_validate(row["event"]), row["published_at"] is not None)

        return await self._run(tx)

    async def mark_reply_published(self, in_reply_to: UUID) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE replies SET published_at = now() WHERE in_reply_to = $1 AND published_at IS NULL",
            in_reply_to))

    # ---------------------------------------------------------- statuses etc.
    async def record_delivery_status(self, event: DeliveryStatusChanged) -> None:
        await self._run(lambda c: c.execute(
            """INSERT INTO delivery_statuses (tenant_id, external_id, status, occurred_at, errors)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            event.tenant_id, event.external_id, event.status, event.occurred_at, event.errors))

    async def purge_expired(self, cutoff: datetime, batch: int,
                            deleted_before: datetime | None = None) -> list[UUID]:
        """One bounded batch of turns past retention, or soft-deleted before `deleted_before`;
        once a deleted conversation has no turns left, its row goes too."""
        async def tx(c: asyncpg.Connection) -> list[UUID]:
            # A tenant's own retention period overrides the default cutoff.
            rows = await c.fetch(
                """DELETE FROM messages WHERE id IN (
                       SELECT m.id FROM messages m LEFT JOIN tenant_policies p ON p.tenant_id = m.tenant_id
                       WHERE m.occurred_at < CASE WHEN p.message_retention_days IS NULL THEN $1
                                             ELSE now() - make_interval(days => p.message_retention_days) END
                       ORDER BY m.occurred_at LIMIT $2 FOR UPDATE OF m SKIP LOCKED)
                   RETURNING id""", cutoff, batch)
            if deleted_before is not None and len(rows) < batch:
                rows += await c.fetch(
                    """DELETE FROM messages WHERE id IN (
                           SELECT id FROM messages WHERE deleted_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
                       RETURNING id""", deleted_before, batch - len(rows))
                if len(rows) < batch:
                    await c.execute(
                        """DELETE FROM conversations c WHERE c.status = 'deleted' AND c.deleted_at < $1
                           AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)""",
                        deleted_before)
            return [r["id"] for r in rows]

        return await self._run(tx)

    async def purge_summaries(self, cutoff: datetime) -> tuple[int, int]:
        """Conversation and interaction summaries not updated since their retention began."""
        async def tx(c: asyncpg.Connection) -> tuple[int, int]:
            when = """CASE WHEN p.summary_retention_days IS NULL THEN $1
                           ELSE now() - make_interval(days => p.summary_retention_days) END"""
            conv = await c.fetchval(
                f"""WITH d AS (DELETE FROM conversation_summaries s USING conversation_summaries s2
                               LEFT JOIN tenant_policies p ON p.tenant_id = s2.tenant_id
                               WHERE s.conversation_id = s2.conversation_id AND s.updated_at < {when} RETURNING 1)
                    SELECT count(*) FROM d""", cutoff)
            users = await c.fetchval(
                f"""WITH d AS (DELETE FROM user_summaries s USING user_summaries s2
                               LEFT JOIN tenant_policies p ON p.tenant_id = s2.tenant_id
                               WHERE (s.tenant_id, s.user_id) = (s2.tenant_id, s2.user_id)
                                 AND s.updated_at < {when} RETURNING 1)
                    SELECT count(*) FROM d""", cutoff)
            return int(conv), int(users)

        return await self._run(tx)

    # -------------------------------------------------------- conversations
    async def conversation_info(self, tenant_id: str, conversation_id: UUID) -> ConversationInfo | None:
        row = await self._run(lambda c: c.fetchrow(
            f"SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE tenant_id = $1 AND id = $2",
            tenant_id, conversation_id))
        return None if row is None else _conversation(row)

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
        rows = await self._run(lambda c: c.fetch(
            f"""SELECT {_CONVERSATION_COLUMNS} FROM conversations WHERE {" AND ".join(clauses)}
                ORDER BY created_at DESC, id DESC LIMIT ${len(args)}""", *args))
        return [_conversation(r) for r in rows]

    async def update_conversation(self, tenant_id: str, conversation_id: UUID, *, title: str | None = None,
                                  status: ConversationStatus | None = None) -> ConversationInfo | None:
        row = await self._run(lambda c: c.fetchrow(
            f"""UPDATE conversations SET title = coalesce($3, title),
                       title_source = CASE WHEN $3::text IS NULL THEN title_source ELSE 'user' END,
                       status = coalesce($4, status), updated_at = now()
                WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'
                RETURNING {_CONVERSATION_COLUMNS}""", tenant_id, conversation_id, title, status))
        return None if row is None else _conversation(row)

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

        return await self._run(tx)

    async def set_model_title(self, conversation_id: UUID, title: str) -> bool:
        done = await self._run(lambda c: c.execute(
            """UPDATE conversations SET title = $2, title_source = 'model', updated_at = now()
               WHERE id = $1 AND title_source = 'first_message' AND status <> 'deleted'""",
            conversation_id, title))
        return done.endswith(" 1")

    async def stats(self, tenant_id: str, user_id: str | None) -> Stats:
        row = await self._run(lambda c: c.fetchrow(
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

    async def summary(self, conversation_id: UUID) -> Summary | None:
        row = await self._run(lambda c: c.fetchrow(
            "SELECT summary, through_seq, method FROM conversation_summaries WHERE conversation_id = $1",
            conversation_id))
        return None if row is None else Summary(conversation_id, row["summary"], row["through_seq"], row["method"])

    async def save_summary(self, scope: MemoryScope, summary: Summary) -> None:
        # Two workers may race on one conversation: the summary that covers more turns wins.
        await self._run(lambda c: c.execute(
            """INSERT INTO conversation_summaries (conversation_id, tenant_id, user_id, summary, through_seq, method)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (conversation_id) DO UPDATE SET summary = excluded.summary,
                   through_seq = excluded.through_seq, method = excluded.method, updated_at = now()
               WHERE conversation_summaries.through_seq < excluded.through_seq""",
            summary.conversation_id, scope.tenant_id, scope.user_id, summary.text, summary.through_seq,
            summary.method))

    async def user_summary(self, tenant_id: str, user_id: str) -> UserSummary | None:
        row = await self._run(lambda c: c.fetchrow(
            """SELECT conversations, messages, user_messages, first_at, last_at, languages, intents, updated_at
               FROM user_summaries WHERE tenant_id = $1 AND user_id = $2""", tenant_id, user_id))
        return None if row is None else UserSummary(**dict(row))

    # ------------------------------------------------------------ privacy
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

        return await self._run(q)

    async def key_by_id(self, key_id: UUID) -> bytes | None:
        secret = await self._run(lambda c: c.fetchval("SELECT secret FROM subject_keys WHERE key_id = $1", key_id))
        return None if secret is None else bytes(secret)

    async def request_erasure(self, request_id: UUID, tenant_id: str, user_id: str, requested_by: str,
                              requested_at: datetime) -> ErasureStatus:
        """Open a request, or return the one still pending for this subject."""
        async def tx(c: asyncpg.Connection) -> ErasureStatus:
            async with c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(hashtext($1 || chr(31) || $2))", tenant_id, user_id)
                row = await c.fetchrow("SELECT * FROM erasure_requests WHERE request_id = $1", request_id)
                if row is None:
                    row = await c.fetchrow(
                        """SELECT * FROM erasure_requests WHERE tenant_id = $1 AND user_id = $2
                           AND status = 'requested' ORDER BY requested_at DESC LIMIT 1""", tenant_id, user_id)
                if row is None:
                    row = await c.fetchrow(
                        """INSERT INTO erasure_requests (request_id, tenant_id, user_id, requested_by, requested_at)
                           VALUES ($1, $2, $3, $4, $5) RETURNING *""",
                        request_id, tenant_id, user_id, requested_by, requested_at)
                return _erasure(row)

        return await self._run(tx)

    async def erasure_status(self, tenant_id: str, user_id: str) -> ErasureStatus | None:
        row = await self._run(lambda c: c.fetchrow(
            """SELECT * FROM erasure_requests WHERE tenant_id = $1 AND user_id = $2
               ORDER BY requested_at DESC LIMIT 1""", tenant_id, user_id))
        return None if row is None else _erasure(row)

    async def erase_subject(self, request_id: UUID, tenant_id: str, user_id: str) -> ErasureStatus:
        """Everything stored about the subject goes in one transaction: keys first (which
        shreds the event log), then turns, replies, conversations (with their summaries) and
        the interaction summary. Idempotent: a finished request is returned as it was."""
        async def tx(c: asyncpg.Connection) -> ErasureStatus:
            async with c.transaction():
                row = await c.fetchrow("SELECT * FROM erasure_requests WHERE request_id = $1 FOR UPDATE", request_id)
                if row is None:
                    raise PoisonError(f"unknown erasure request {request_id}")
                if row["status"] == "completed":
                    return _erasure(row)
                keys = await c.fetchval(
                    """WITH d AS (UPDATE subject_keys SET secret = NULL, destroyed_at = now()
                                  WHERE tenant_id = $1 AND user_id = $2 AND destroyed_at IS NULL RETURNING 1)
                       SELECT count(*) FROM d""", tenant_id, user_id)
                replies = await c.fetchval(
                    """WITH d AS (DELETE FROM replies r USING messages m
                                  WHERE r.in_reply_to = m.id AND m.tenant_id = $1 AND m.user_id = $2 RETURNING 1)
                       SELECT count(*) FROM d""", tenant_id, user_id)
                # Children before parents; conversations cascade to nothing left by then.
                removed = {}
                for name, table in (("messages", "messages"), ("conversation_summaries", "conversation_summaries"),
                                    ("conversations", "conversations"), ("interaction_summaries", "user_summaries")):
                    removed[name] = await c.fetchval(
                        f"WITH d AS (DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2 RETURNING 1) "
                        "SELECT count(*) FROM d", tenant_id, user_id)
                counts = {**removed, "replies": replies, "keys": keys}
                done = await c.fetchrow(
                    """UPDATE erasure_requests SET status = 'completed', completed_at = now(), counts = $2
                       WHERE request_id = $1 RETURNING *""", request_id, counts)
                return _erasure(done)

        return await self._run(tx)

    async def mark_erasure_announced(self, request_id: UUID) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE erasure_requests SET announced_at = now() WHERE request_id = $1 AND announced_at IS NULL",
            request_id))

    async def tenant_policy(self, tenant_id: str) -> TenantPolicy | None:
        row = await self._run(lambda c: c.fetchrow(
            """SELECT tenant_id, pii_mode, pii_delay_hours, phone_region, message_retention_days,
                      summary_retention_days FROM tenant_policies WHERE tenant_id = $1""", tenant_id))
        return None if row is None else TenantPolicy(**dict(row))

    async def set_tenant_policy(self, policy: TenantPolicy) -> TenantPolicy:
        row = await self._run(lambda c: c.fetchrow(
            """INSERT INTO tenant_policies (tenant_id, pii_mode, pii_delay_hours, phone_region,
                                            message_retention_days, summary_retention_days)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (tenant_id) DO UPDATE SET pii_mode = excluded.pii_mode,
                   pii_delay_hours = excluded.pii_delay_hours, phone_region = excluded.phone_region,
                   message_retention_days = excluded.message_retention_days,
                   summary_retention_days = excluded.summary_retention_days, updated_at = now()
               RETURNING tenant_id, pii_mode, pii_delay_hours, phone_region, message_retention_days,
                         summary_retention_days""",
            policy.tenant_id, policy.pii_mode, policy.pii_delay_hours, policy.phone_region,
            policy.message_retention_days, policy.summary_retention_days))
        return TenantPolicy(**dict(row))

    async def record_scrub(self, message_id: UUID, text: str | None, kinds: dict[str, int]) -> bool:
        """Mark a turn checked, replacing its text when something was found. False when it was
        checked before (a redelivery, or the sweep and the consumer both got to it)."""
        done = await self._run(lambda c: c.execute(
            """UPDATE messages SET content = coalesce($2, content), pii_scrubbed = $3, pii_scrubbed_at = now(),
                   pii_kinds = $4
               WHERE id = $1 AND pii_scrubbed_at IS NULL""", message_id, text, bool(kinds), kinds or None))
        return done.endswith(" 1")

    async def derived_texts(self, conversation_id: UUID) -> tuple[str | None, str | None]:
        """The conversation's title and rolling summary: text made from its turns."""
        row = await self._run(lambda c: c.fetchrow(
            """SELECT c.title, s.summary FROM conversations c
               LEFT JOIN conversation_summaries s ON s.conversation_id = c.id WHERE c.id = $1""", conversation_id))
        return (None, None) if row is None else (row["title"], row["summary"])

    async def replace_derived_texts(self, conversation_id: UUID, title: str | None, summary: str | None) -> None:
        async def tx(c: asyncpg.Connection) -> None:
            async with c.transaction():
                if title is not None:
                    await c.execute("UPDATE conversations SET title = $2 WHERE id = $1 AND title IS DISTINCT FROM $2",
                                    conversation_id, title)
                if summary is not None:
                    await c.execute("""UPDATE conversation_summaries SET summary = $2
                                       WHERE conversation_id = $1 AND summary IS DISTINCT FROM $2""",
                                    conversation_id, summary)

        await self._run(tx)

    async def turns_due_for_scrub(self, default_cutoff: datetime, default_mode: str, batch: int
                                  ) -> list[TurnRecorded]:
        rows = await self._run(lambda c: c.fetch(
            f"""SELECT {_TURN_COLUMNS} FROM messages WHERE id IN (
                    SELECT m.id FROM messages m LEFT JOIN tenant_policies p ON p.tenant_id = m.tenant_id
                    WHERE m.pii_scrubbed_at IS NULL AND m.deleted_at IS NULL
                      AND coalesce(p.pii_mode, $2) <> 'off'
                      AND m.recorded_at < CASE WHEN p.pii_delay_hours IS NULL THEN $1
                                               ELSE now() - make_interval(hours => p.pii_delay_hours) END
                    ORDER BY m.recorded_at LIMIT $3)""", default_cutoff, default_mode, batch))
        return [_turn(r) for r in rows]

    async def texts_to_embed(self, message_ids: Sequence[UUID]) -> dict[UUID, str]:
        """The current text of live turns: a turn scrubbed or deleted since its event was
        published is embedded as it is now, or not at all."""
        rows = await self._run(lambda c: c.fetch(
            "SELECT id, content FROM messages WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL",
            list(message_ids)))
        return {r["id"]: r["content"] for r in rows}

    async def export_rows(self, tenant_id: str, user_id: str, what: str,
                          batch: int = 500) -> AsyncIterator[dict[str, Any]]:
        """Everything stored about a user, row by row through a server-side cursor, so a user
        with 100k turns is streamed in constant memory. `what`: conversations or messages."""
        sql = {
            "conversations": f"""SELECT {_CONVERSATION_COLUMNS} FROM conversations
                                 WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, id""",
            "messages": """SELECT id, conversation_id, seq, role, channel, content_type, content, external_id,
                                  in_reply_to, occurred_at, recorded_at, metadata, language, intent,
                                  intent_confidence, model, prompt_tokens, completion_tokens, latency_ms,
                                  pii_scrubbed, pii_kinds, deleted_at
                           FROM messages WHERE tenant_id = $1 AND user_id = $2
                           ORDER BY conversation_id, seq""",
            "conversation_summaries": """SELECT conversation_id, summary, through_seq, method, updated_at
                                         FROM conversation_summaries WHERE tenant_id = $1 AND user_id = $2""",
        }[what]
        async with self._conn() as conn, conn.transaction():
            async for row in conn.cursor(sql, tenant_id, user_id, prefetch=batch):
                yield dict(row)

    async def known_external_ids(self, tenant_id: str, external_ids: Sequence[str]) -> set[str]:
        rows = await self._run(lambda c: c.fetch(
            "SELECT external_id FROM messages WHERE tenant_id = $1 AND external_id = ANY($2::text[])",
            tenant_id, list(external_ids)))
        return {r["external_id"] for r in rows}

    async def ping(self) -> None:
        await self._run(lambda c: c.fetchval("SELECT 1"))
