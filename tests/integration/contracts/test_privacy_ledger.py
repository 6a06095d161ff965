"""PrivacyLedger: erasure requests and erasure itself, the interaction summary, the export."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from convmem.adapters.postgres import PgPrivacyLedger
from convmem.errors import PoisonError
from convmem.ports import Enrichment, MemoryScope, Storage, Summary
from tests.integration.support import answer, said, unique
from tests.services import Endpoints

T0 = datetime(2026, 5, 1, tzinfo=UTC)

MESSAGE_COLUMNS = ["id", "conversation_id", "seq", "role", "channel", "content_type", "content", "external_id",
                   "in_reply_to", "occurred_at", "recorded_at", "metadata", "language", "intent",
                   "intent_confidence", "model", "prompt_tokens", "completion_tokens", "latency_ms", "pii_scrubbed",
                   "pii_kinds", "deleted_at"]
CONVERSATION_COLUMNS = ["id", "tenant_id", "user_id", "channel", "title", "title_source", "conversation_type",
                        "status", "message_count", "created_at", "updated_at", "last_message_at", "metadata"]


async def test_a_subject_has_one_pending_erasure_request(storage: Storage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    assert await storage.privacy.erasure_status(tenant, ana) is None
    first_id, at = uuid.uuid4(), datetime.now(UTC)
    request = await storage.privacy.request_erasure(first_id, tenant, ana, ana, at)
    assert (request.request_id, request.tenant_id, request.user_id, request.status) == (
        first_id, tenant, ana, "requested")
    assert (request.requested_at, request.completed_at, request.counts, request.announced) == (at, None, {}, False)
    assert await storage.privacy.request_erasure(first_id, tenant, ana, ana, at) == request  # a redelivery
    assert await storage.privacy.request_erasure(uuid.uuid4(), tenant, ana, "admin", datetime.now(UTC)) == request
    assert await storage.privacy.erasure_status(tenant, ana) == request
    other = await storage.privacy.request_erasure(uuid.uuid4(), tenant, ben, ben, datetime.now(UTC))
    assert other.request_id != first_id
    with pytest.raises(PoisonError):
        await storage.privacy.erase_subject(uuid.uuid4(), tenant, ana)  # no such request


async def test_erasure_removes_one_subject_only_is_counted_and_idempotent(storage: Storage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    question = said(tenant, ana, c1, "mine")
    for e in (question, said(tenant, ana, c1, "also mine"), said(tenant, ana, c2, "more"),
              said(tenant, ben, uuid.uuid4(), "his")):
        await storage.turns.record_turn(e)
    reply = answer(question)
    await storage.replies.claim_reply(reply)
    await storage.turns.record_turn(reply)
    await storage.conversations.save_summary(MemoryScope(tenant, ana, c1), Summary(c1, "s", 2, "extractive"))
    await storage.keys.subject_key(tenant, ana)
    await storage.aliases.add_aliases(tenant, ana, [unique("new-number")], datetime.now(UTC))

    request = await storage.privacy.request_erasure(uuid.uuid4(), tenant, ana, ana, datetime.now(UTC))
    done = await storage.privacy.erase_subject(request.request_id, tenant, ana)
    assert done.status == "completed" and done.completed_at is not None and not done.announced
    assert done.counts == {"messages": 4, "conversation_summaries": 1, "conversations": 2,
                           "interaction_summaries": 1, "replies": 1, "keys": 1, "reply_sends": 0,
                           "delivery_statuses": 0, "message_amendments": 0, "user_aliases": 1}
    again = await storage.privacy.erase_subject(request.request_id, tenant, ana)
    assert (again.status, again.counts, again.completed_at) == ("completed", done.counts, done.completed_at)

    assert (await storage.conversations.stats(tenant, ana)).messages == 0
    assert (await storage.conversations.stats(tenant, ben)).messages == 1
    assert await storage.conversations.conversation(c1) is None and await storage.memory.summary(c1) is None
    assert await storage.replies.find_reply(question.message_id) is None
    assert await storage.privacy.user_summary(tenant, ana) is None
    assert await storage.privacy.user_summary(tenant, ben) is not None
    assert [r async for r in storage.privacy.export_rows(tenant, ana, "messages")] == []

    await storage.privacy.mark_erasure_announced(request.request_id)
    await storage.privacy.mark_erasure_announced(request.request_id)
    status = await storage.privacy.erasure_status(tenant, ana)
    assert status is not None and (status.request_id, status.status, status.announced) == (
        request.request_id, "completed", True)
    later = await storage.privacy.request_erasure(uuid.uuid4(), tenant, ana, ana, datetime.now(UTC))
    assert later.request_id != request.request_id and later.status == "requested"  # none pending: a new one


async def data_file(conn: asyncpg.Connection, table: str) -> Path | None:
    """The table's main data file as it is on disk (after a checkpoint), when this database
    runs on this machine and lets us look; None otherwise."""
    try:
        await conn.execute("CHECKPOINT")
        folder = Path(await conn.fetchval("SHOW data_directory"))
        path = folder / str(await conn.fetchval("SELECT pg_relation_filepath($1::regclass)", table))
        path.read_bytes()
    except (asyncpg.PostgresError, OSError):
        return None
    return path


async def test_compaction_after_erasure_takes_the_destroyed_key_out_of_the_files(
        storage: Storage, endpoints: Endpoints) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    await storage.turns.record_turn(said(tenant, ana, uuid.uuid4(), "mine"))
    _, secret = await storage.keys.subject_key(tenant, ana)
    _, kept = await storage.keys.subject_key(tenant, ben)
    request = await storage.privacy.request_erasure(uuid.uuid4(), tenant, ana, ana, datetime.now(UTC))
    conn = await asyncpg.connect(endpoints.database_url) if isinstance(storage.privacy, PgPrivacyLedger) else None
    try:
        keys_file = None if conn is None else await data_file(conn, "subject_keys")
        if keys_file is not None:
            assert secret in keys_file.read_bytes()
        await storage.privacy.erase_subject(request.request_id, tenant, ana)
        if keys_file is not None:
            assert secret in keys_file.read_bytes()  # an UPDATE leaves the old row version behind
        await storage.privacy.compact_erased()
        await storage.privacy.compact_erased()  # as often as erasures ask
        if conn is not None and (after := await data_file(conn, "subject_keys")) is not None:
            assert secret not in after.read_bytes() and kept in after.read_bytes()
    finally:
        if conn is not None:
            await conn.close()
    assert await storage.keys.key_by_id((await storage.keys.subject_key(tenant, ben))[0]) == kept


async def test_the_interaction_summary_counts_each_turn_once(storage: Storage) -> None:
    tenant, ana = unique("t"), unique("ana")
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    first = said(tenant, ana, c1, "hola", when=T0)
    await storage.turns.record_turn(first, Enrichment("es", "greeting", 0.6))
    await storage.turns.record_turn(said(tenant, ana, c1, "book it", when=T0 + timedelta(days=1)),
                                    Enrichment("en", "booking", 0.6))
    await storage.turns.record_turn(answer(first, when=T0 + timedelta(hours=1)), Enrichment("en", "smalltalk", 0.6))
    await storage.turns.record_turn(said(tenant, ana, c2, "book again", when=T0 + timedelta(days=2)),
                                    Enrichment("en", "booking", 0.6))
    await storage.turns.record_turn(first, Enrichment("es", "greeting", 0.6))  # a redelivery counts nothing

    s = await storage.privacy.user_summary(tenant, ana)
    assert s is not None and (s.conversations, s.messages, s.user_messages) == (2, 4, 3)
    assert (s.first_at, s.last_at) == (T0, T0 + timedelta(days=2))
    assert s.languages == {"es": 1, "en": 2} and s.intents == {"greeting": 1, "booking": 2}  # users' turns only
    assert s.preferred_language == "en" and s.common_intents() == [("booking", 2), ("greeting", 1)]
    assert await storage.privacy.user_summary(tenant, unique("nobody")) is None


async def test_the_export_holds_everything_about_one_user(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    question = said(tenant, ana, conv, "call 020 7946 0958", ext=unique("e"), when=T0)
    reply = answer(question, "noted", when=T0 + timedelta(minutes=1))
    for e in (question, reply, said(tenant, unique("ben"), uuid.uuid4(), "not hers")):
        await storage.turns.record_turn(e)
    await storage.retention.record_scrub(question.message_id, "call <PHONE>", {"PHONE": 1})
    await storage.conversations.save_summary(MemoryScope(tenant, ana, conv), Summary(conv, "s", 2, "extractive"))

    rows = [r async for r in storage.privacy.export_rows(tenant, ana, "messages", batch=1)]
    assert [list(r) for r in rows] == [MESSAGE_COLUMNS, MESSAGE_COLUMNS]
    asked, answered = rows
    assert (asked["id"], asked["seq"], asked["content"], asked["external_id"]) == (
        question.message_id, 1, "call <PHONE>", question.external_id)
    assert (asked["pii_scrubbed"], asked["pii_kinds"], asked["model"], asked["deleted_at"]) == (
        True, {"PHONE": 1}, None, None)
    assert (answered["role"], answered["in_reply_to"], answered["model"], answered["prompt_tokens"],
            answered["completion_tokens"], answered["latency_ms"], answered["pii_scrubbed"]) == (
        "assistant", question.message_id, "m", 11, 5, 42, False)

    conversations = [r async for r in storage.privacy.export_rows(tenant, ana, "conversations")]
    assert [list(r) for r in conversations] == [CONVERSATION_COLUMNS]
    assert (conversations[0]["id"], conversations[0]["message_count"]) == (conv, 2)
    summaries = [r async for r in storage.privacy.export_rows(tenant, ana, "conversation_summaries")]
    assert [(r["conversation_id"], r["summary"], r["through_seq"], r["method"]) for r in summaries] == [
        (conv, "s", 2, "extractive")]
    assert sorted(summaries[0]) == ["conversation_id", "method", "summary", "through_seq", "updated_at"]
    with pytest.raises(KeyError):
        [r async for r in storage.privacy.export_rows(tenant, ana, "passwords")]

    await storage.conversations.delete_conversation(tenant, conv)  # soft-deleted turns are still hers, and shown
    after = [r async for r in storage.privacy.export_rows(tenant, ana, "messages")]
    assert len(after) == 2 and all(r["deleted_at"] is not None for r in after)
