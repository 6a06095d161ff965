"""What the Postgres ports share besides the pool: the column lists they select, the row
mappers to records, and the WHERE clause of every scoped read of turns, so tenant and user
are filtered in one place."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from contracts import OFFLINE_MODEL, TurnRecorded
from convmem.ports import ConversationInfo, ErasureStatus, MemoryScope

TURN_COLUMNS = """id, tenant_id, user_id, conversation_id, seq, role, channel, content_type, content,
    external_id, in_reply_to, reply_expected, occurred_at, recorded_at, metadata, turn_published_at,
    language, intent, intent_confidence"""

CONVERSATION_COLUMNS = """id, tenant_id, user_id, channel, title, title_source, conversation_type, status,
    message_count, created_at, updated_at, last_message_at, metadata"""


def offline_notice(alias: str = "") -> str:
    """SQL true for a reply no model wrote (contracts.is_offline_notice): not memory, so it is
    neither embedded nor recalled. Never NULL, so `NOT` of it keeps every other turn."""
    return f"({alias}role = 'assistant' AND {alias}model IS NOT DISTINCT FROM '{OFFLINE_MODEL}')"


def as_turn(row: asyncpg.Record) -> TurnRecorded:
    return TurnRecorded(
        tenant_id=row["tenant_id"], user_id=row["user_id"], conversation_id=row["conversation_id"],
        message_id=row["id"], seq=row["seq"], role=row["role"], channel=row["channel"],
        content_type=row["content_type"], text=row["content"], external_id=row["external_id"],
        in_reply_to=row["in_reply_to"], reply_expected=row["reply_expected"],
        occurred_at=row["occurred_at"], recorded_at=row["recorded_at"], metadata=row["metadata"],
        language=row["language"], intent=row["intent"], intent_confidence=row["intent_confidence"],
    )


def as_conversation(row: asyncpg.Record) -> ConversationInfo:
    return ConversationInfo(
        conversation_id=row["id"], tenant_id=row["tenant_id"], user_id=row["user_id"], channel=row["channel"],
        title=row["title"], title_source=row["title_source"], conversation_type=row["conversation_type"],
        status=row["status"], message_count=row["message_count"], created_at=row["created_at"],
        updated_at=row["updated_at"], last_message_at=row["last_message_at"], metadata=row["metadata"],
    )


def as_erasure(row: asyncpg.Record) -> ErasureStatus:
    return ErasureStatus(request_id=row["request_id"], tenant_id=row["tenant_id"], user_id=row["user_id"],
                         status=row["status"], requested_at=row["requested_at"], completed_at=row["completed_at"],
                         counts=dict(row["counts"]), announced=row["announced_at"] is not None)


def scope_sql(scope: MemoryScope, first: int) -> tuple[str, list[Any]]:
    """The WHERE clause every scoped read of messages uses (alias m), from parameter $first on."""
    clauses = [f"m.tenant_id = ${first}", f"m.user_id = ${first + 1}", "m.deleted_at IS NULL"]
    args: list[Any] = [scope.tenant_id, scope.user_id]
    for column, op, value in (("conversation_id", "=", scope.conversation_id), ("occurred_at", ">=", scope.since),
                              ("occurred_at", "<", scope.until)):
        if value is not None:
            args.append(value)
            clauses.append(f"m.{column} {op} ${first + len(args) - 1}")
    return " AND ".join(clauses), args


def unit_scope_sql(scope: MemoryScope, first: int) -> tuple[str, list[Any]]:
    """The same scope over message_units (alias u): a unit is where and when its first member is."""
    where, args = scope_sql(scope, first)
    return where.replace("m.deleted_at IS NULL", "u.content <> ''").replace("m.", "u."), args


def or_query(text: str, max_terms: int = 32) -> str | None:
    """A question as a to_tsquery OR of its words: a plain AND would demand that every word
    of a chatty question appear in one turn. Words are letters and digits only, so the
    string cannot carry tsquery operators."""
    words = list(dict.fromkeys(re.findall(r"[^\W_]+", text.lower())))[:max_terms]
    return " | ".join(words) or None
