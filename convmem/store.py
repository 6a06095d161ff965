"""Postgres adapter of the Store port (asyncpg). Every read of turns takes a MemoryScope and
filters on tenant and user here, in one place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import orjson

from contracts import DeliveryStatusChanged, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.errors import OwnershipConflict, PoisonError, RetryableError
from convmem.ports import ConversationRef, MemoryScope, RecordOutcome, StoredReply

T = TypeVar("T")

_TURN_COLUMNS = """id, tenant_id, user_id, conversation_id, seq, role, channel, content_type, content,
    external_id, in_reply_to, reply_expected, occurred_at, recorded_at, metadata, turn_published_at"""

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
    )


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
    async def record_turn(self, event: MessageReceived | ReplyGenerated) -> RecordOutcome:
        async def tx(conn: asyncpg.Connection) -> RecordOutcome:
            async with conn.transaction():
                row = await conn.fetchrow(f"SELECT {_TURN_COLUMNS} FROM messages WHERE id = $1", event.message_id)
                if row is not None:
                    return RecordOutcome(_turn(row), created=False, published=row["turn_published_at"] is not None)
                role = event.role if isinstance(event, MessageReceived) else "assistant"
                title = event.text[:_TITLE_CHARS].strip() or None if role == "user" else None
                await conn.execute(
                    """INSERT INTO conversations (id, tenant_id, user_id, channel, title, created_at)
                       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING""",
                    event.conversation_id, event.tenant_id, event.user_id, event.channel, title,
                    event.occurred_at,
                )
                conv = await conn.fetchrow(
                    "SELECT tenant_id, user_id, message_count, title FROM conversations WHERE id = $1 FOR UPDATE",
                    event.conversation_id,
                )
                assert conv is not None
                if (conv["tenant_id"], conv["user_id"]) != (event.tenant_id, event.user_id):
                    raise OwnershipConflict(f"conversation {event.conversation_id} belongs to another user")
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
                    event.channel, event.occurred_at,
                ]
                if isinstance(event, MessageReceived):
                    inserted = await conn.fetchrow(
                        f"""INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel,
                                occurred_at, content_type, content, external_id, reply_expected, metadata)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                            ON CONFLICT (tenant_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
                            RETURNING {_TURN_COLUMNS}""",
                        *common, event.content_type, event.text, event.external_id,
                        event.reply_expected, event.metadata,
                    )
                else:
                    inserted = await conn.fetchrow(
                        f"""INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel,
                                occurred_at, content, in_reply_to, model, prompt_tokens, completion_tokens,
                                latency_ms, sources, success, metadata)
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, true, $16)
                            RETURNING {_TURN_COLUMNS}""",
                        *common, event.text, event.in_reply_to, event.model, event.usage.prompt_tokens,
                        event.usage.completion_tokens, event.latency_ms, list(event.sources),
                        {"model": event.model, "sources": [str(s) for s in event.sources],
                         "finish_reason": event.finish_reason},
                    )
                if inserted is None:
                    # Same external id under another message id: a producer reused its key.
                    raise PoisonError("external_id already used by another message of this tenant")
                return RecordOutcome(_turn(inserted), created=True, published=False)

        return await self._run(tx)

    async def mark_turn_published(self, message_id: UUID) -> None:
        await self._run(lambda c: c.execute(
            "UPDATE messages SET turn_published_at = now() WHERE id = $1 AND turn_published_at IS NULL",
            message_id))

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
        rows = await self._run(lambda c: c.fetch(
            f"""SELECT {_TURN_COLUMNS} FROM messages
                WHERE tenant_id = $1 AND user_id = $2 AND id = ANY($3::uuid[]) AND deleted_at IS NULL""",
            scope.tenant_id, scope.user_id, list(ids)))
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
            "SELECT id, tenant_id, user_id FROM conversations WHERE id = $1", conversation_id))
        return None if row is None else ConversationRef(row["id"], row["tenant_id"], row["user_id"])

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

    async def purge_expired(self, cutoff: datetime, batch: int) -> list[UUID]:
        rows = await self._run(lambda c: c.fetch(
            """DELETE FROM messages WHERE id IN (
                   SELECT id FROM messages WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2
                   FOR UPDATE SKIP LOCKED)
               RETURNING id""", cutoff, batch))
        return [r["id"] for r in rows]

    async def ping(self) -> None:
        await self._run(lambda c: c.fetchval("SELECT 1"))
