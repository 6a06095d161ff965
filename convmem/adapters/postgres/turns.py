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


class PgTurnLedger(TurnLedger):
    def __init__(self, pool: PgPool) -> None:
        self._pool = pool

    async def record_turn(self, event: MessageReceived | ReplyGenerated,
                          enrichment: Enrichment | None = None) -> RecordOutcome:
        found = enrichment or Enrichment()

        # Only WhatsApp messages are ever amended (edits, revokes): only they wait for amendments.
        amendable = isinstance(event, MessageReceived) and event.channel == "whatsapp"

        async def tx(conn: asyncpg.Connection) -> RecordOutcome:
            async with conn.transaction():
                if amendable:
                    await amendments.lock(conn, event.message_id)
                row = await conn.fetchrow(f"SELECT {TURN_COLUMNS} FROM messages WHERE id = $1", event.message_id)
                if row is not None:
                    return RecordOutcome(as_turn(row), created=False, published=row["turn_published_at"] is not None)
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
                if opened is None:
                    # Another consumer (a rebalance overlap, a second group) may have recorded this
                    # message while we waited for the conversation's lock: look again, now that
                    # its commit is visible, instead of failing on the primary key.
                    row = await conn.fetchrow(f"SELECT {TURN_COLUMNS} FROM messages WHERE id = $1", event.message_id)
                    if row is not None:
                        return RecordOutcome(as_turn(row), created=False,
                                             published=row["turn_published_at"] is not None)
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
                            ON CONFLICT (tenant_id, user_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
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
                            RETURNING {TURN_COLUMNS}""",
                        *common, event.text, event.in_reply_to, event.model, event.usage.prompt_tokens,
                        event.usage.completion_tokens, event.latency_ms, list(event.sources),
                        {"model": event.model, "sources": [str(s) for s in event.sources],
                         "finish_reason": event.finish_reason},
                    )
                if inserted is None:
                    # Same external id under another message id: a producer reused its key.
                    raise PoisonError("external_id already used by another message of this user")
                await _count_interaction(conn, event, role, opened is not None, found)
                if amendable and await _amended_before_recorded(conn, event):
                    # Revoked before it was recorded: stored out of history, never announced.
                    return RecordOutcome(as_turn(inserted), created=True, published=True)
                if amendable:
                    inserted = await conn.fetchrow(f"SELECT {TURN_COLUMNS} FROM messages WHERE id = $1",
                                                   event.message_id)
                return RecordOutcome(as_turn(inserted), created=True, published=False)

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
