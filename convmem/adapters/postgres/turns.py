"""TurnLedger over Postgres: each turn recorded once, numbered under a row lock on its
conversation, with the user's interaction summary moved in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from contracts import MessageAmended, MessageReceived, ReplyGenerated
from convmem.adapters.postgres import amendments
from convmem.adapters.postgres.pool import PgPool
from convmem.adapters.postgres.rows import TURN_COLUMNS, as_turn
from convmem.errors import ConversationClosed, OwnershipConflict, PoisonError
from convmem.ports import AmendOutcome, Enrichment, RecordOutcome, TurnLedger

# A conversation's title until someone names it: the start of its first user turn.
_TITLE_CHARS = 80


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


async def _amended_before_recorded(conn: asyncpg.Connection, event: MessageReceived | ReplyGenerated) -> bool:
    """Apply what arrived before the message (Meta delivers out of order); True when it was
    revoked, which also marks it announced: there is nothing to announce."""
    revoked = await amendments.apply_waiting(conn, event.message_id, event.tenant_id, event.user_id)
    if revoked:
        await conn.execute("UPDATE messages SET turn_published_at = now() WHERE id = $1", event.message_id)
    return revoked


class _Seen(Exception):
    """The turn was recorded before: undo this attempt's count and answer with what is stored."""

    def __init__(self, outcome: RecordOutcome) -> None:
        super().__init__("recorded before")
        self.outcome = outcome


async def _stored(conn: asyncpg.Connection, message_id: UUID) -> RecordOutcome | None:
    row = await conn.fetchrow(f"SELECT {TURN_COLUMNS} FROM messages WHERE id = $1", message_id)
    return None if row is None else RecordOutcome(as_turn(row), created=False,
                                                  published=row["turn_published_at"] is not None)


async def _record(conn: asyncpg.Connection, event: MessageReceived | ReplyGenerated, found: Enrichment,
                  amendable: bool) -> RecordOutcome:
    if amendable:
        await amendments.lock(conn, event.message_id)
    role = event.role if isinstance(event, MessageReceived) else "assistant"
    title = event.text[:_TITLE_CHARS].strip() or None if role == "user" else None
    # Opened, or counted on: either way the row is locked until commit, so the turns of one
    # conversation take their seq one after another. Written before it is checked: a
    # conversation of another user or a deleted one raises below and the count rolls back.
    conv = await conn.fetchrow(
        """INSERT INTO conversations AS c (id, tenant_id, user_id, channel, title, created_at, message_count,
                                           last_message_at)
           VALUES ($1, $2, $3, $4, $5, $6, 1, $6)
           ON CONFLICT (id) DO UPDATE SET message_count = c.message_count + 1, updated_at = now(),
               title = coalesce(c.title, excluded.title),
               last_message_at = greatest(coalesce(c.last_message_at, excluded.last_message_at),
                                          excluded.last_message_at)
           RETURNING tenant_id, user_id, message_count, status, (xmax = 0) AS opened""",
        event.conversation_id, event.tenant_id, event.user_id, event.channel, title, event.occurred_at,
    )
    assert conv is not None
    if (conv["tenant_id"], conv["user_id"]) != (event.tenant_id, event.user_id):
        raise OwnershipConflict(f"conversation {event.conversation_id} belongs to another user")
    if conv["status"] == "deleted":
        if (before := await _stored(conn, event.message_id)) is not None:
            raise _Seen(before)  # a redelivery is still recognised
        raise ConversationClosed(f"conversation {event.conversation_id} was deleted")
    common: list[Any] = [
        event.message_id, event.tenant_id, event.user_id, event.conversation_id, conv["message_count"], role,
        event.channel, event.occurred_at, found.language, found.intent, found.intent_confidence,
    ]
    # ON CONFLICT without a target: the same id (recorded before), the same external id
    # (a reused key) and the same seq all come back as no row, told apart below.
    if isinstance(event, MessageReceived):
        inserted = await conn.fetchrow(
            f"""INSERT INTO messages (id, tenant_id, user_id, conversation_id, seq, role, channel,
                    occurred_at, language, intent, intent_confidence,
                    content_type, content, external_id, reply_expected, metadata)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                ON CONFLICT DO NOTHING
                RETURNING {TURN_COLUMNS}""",
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
                ON CONFLICT DO NOTHING
                RETURNING {TURN_COLUMNS}""",
            *common, event.text, event.in_reply_to, event.model, event.usage.prompt_tokens,
            event.usage.completion_tokens, event.latency_ms, list(event.sources),
            {"model": event.model, "sources": [str(s) for s in event.sources],
             "finish_reason": event.finish_reason},
        )
    if inserted is None:
        if (before := await _stored(conn, event.message_id)) is not None:
            raise _Seen(before)  # a redelivery, or another consumer got there while we waited for the lock
        if isinstance(event, MessageReceived) and event.external_id is not None and await conn.fetchval(
                "SELECT 1 FROM messages WHERE tenant_id = $1 AND user_id = $2 AND external_id = $3",
                event.tenant_id, event.user_id, event.external_id):
            # Same external id under another message id: a producer reused its key.
            raise PoisonError("external_id already used by another message of this user")
        raise RuntimeError(f"seq {conv['message_count']} of conversation {event.conversation_id} is taken")
    await _count_interaction(conn, event, role, conv["opened"], found)
    if amendable and await _amended_before_recorded(conn, event):
        # Revoked before it was recorded: stored out of history, never announced.
        return RecordOutcome(as_turn(inserted), created=True, published=True)
    if amendable:
        inserted = await conn.fetchrow(f"SELECT {TURN_COLUMNS} FROM messages WHERE id = $1", event.message_id)
    return RecordOutcome(as_turn(inserted), created=True, published=False)


class PgTurnLedger(TurnLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def record_turn(self, event: MessageReceived | ReplyGenerated,
                          enrichment: Enrichment | None = None) -> RecordOutcome:
        found = enrichment or Enrichment()

        # Only WhatsApp messages are ever amended (edits, revokes): only they wait for amendments.
        amendable = isinstance(event, MessageReceived) and event.channel == "whatsapp"

        async def tx(conn: asyncpg.Connection) -> RecordOutcome:
            # A new turn takes five round trips: begin, the conversation (opened or counted
            # on, locked), the message, the user's summary, commit. A turn seen before
            # (a redelivery) is found after the conversation's lock and rolled back.
            try:
                async with conn.transaction():
                    return await _record(conn, event, found, amendable)
            except _Seen as seen:
                return seen.outcome

        return await self._pool.run(tx)

    async def amend_turn(self, amendment: MessageAmended) -> AmendOutcome:
        async def tx(conn: asyncpg.Connection) -> AmendOutcome:
            async with conn.transaction():
                await amendments.lock(conn, amendment.message_id)
                await amendments.keep(conn, amendment)
                if await conn.fetchval("SELECT 1 FROM messages WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
                                       amendment.message_id, amendment.tenant_id, amendment.user_id) is None:
                    return AmendOutcome(None)  # not recorded yet: applied when it is
                revoked = await amendments.apply_waiting(conn, amendment.message_id, amendment.tenant_id,
                                                         amendment.user_id)
                row = await conn.fetchrow(f"SELECT {TURN_COLUMNS} FROM messages WHERE id = $1", amendment.message_id)
                return AmendOutcome(as_turn(row), revoked=revoked)

        return await self._pool.run(tx)

    async def mark_turn_published(self, message_id: UUID) -> None:
        await self._pool.run(lambda c: c.execute(
            "UPDATE messages SET turn_published_at = now() WHERE id = $1 AND turn_published_at IS NULL",
            message_id))

    async def mark_turns_published(self, message_ids: Sequence[UUID]) -> None:
        await self._pool.run(lambda c: c.execute(
            "UPDATE messages SET turn_published_at = now() WHERE id = ANY($1::uuid[]) AND turn_published_at IS NULL",
            list(message_ids)))
