"""RetentionLedger: expiry in bounded batches under each tenant's own retention, and PII
scrubbing of turns and of the texts derived from them.

The sweeps are global (every tenant at once) and the database is shared, so these tests
look for their own rows in what a sweep returns rather than at the totals, and use
defaults (cutoff far in the past, PII mode off) that leave other tenants' rows alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from convmem.ports import MemoryScope, Storage, Summary, TenantPolicy
from tests.integration.support import said, unique

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


async def test_a_turn_is_scrubbed_only_once(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    phone, clean = said(tenant, ana, conv, "call 020 7946 0958"), said(tenant, ana, conv, "nothing personal")
    for e in (phone, clean):
        await storage.turns.record_turn(e)
    assert await storage.retention.record_scrub(phone.message_id, "call <PHONE>", {"PHONE": 1})
    assert not await storage.retention.record_scrub(phone.message_id, "call <PHONE> again", {"PHONE": 1})
    assert await storage.retention.record_scrub(clean.message_id, None, {})  # checked, nothing found
    assert not await storage.retention.record_scrub(clean.message_id, None, {})
    assert not await storage.retention.record_scrub(uuid.uuid4(), "x", {"PHONE": 1})  # no such turn
    turns = await storage.memory.turns_by_ids(MemoryScope(tenant, ana), [phone.message_id, clean.message_id])
    assert sorted(t.text for t in turns) == ["call <PHONE>", "nothing personal"]


async def test_turns_are_due_for_scrubbing_by_their_tenants_policy(storage: Storage) -> None:
    now = datetime.now(UTC)
    at_once, never, later, unset = unique("t"), unique("t"), unique("t"), unique("t")
    await storage.policies.set_tenant_policy(TenantPolicy(at_once, "immediate", 0))
    await storage.policies.set_tenant_policy(TenantPolicy(never, "off"))
    await storage.policies.set_tenant_policy(TenantPolicy(later, "delayed", 48))
    turns = {t: said(t, unique("ana"), uuid.uuid4(), "call 020 7946 0958") for t in (at_once, never, later, unset)}
    for e in turns.values():
        await storage.turns.record_turn(e)
    gone = said(at_once, unique("ana"), uuid.uuid4(), "deleted before the sweep")
    await storage.turns.record_turn(gone)
    await storage.conversations.delete_conversation(at_once, gone.conversation_id)

    # The default mode is off: only tenants that chose a mode are swept, so other tests' rows stay out of it.
    due = {t.message_id for t in await storage.retention.turns_due_for_scrub(now + timedelta(hours=1), "off", 10_000)}
    assert turns[at_once].message_id in due
    assert not due & {turns[never].message_id, turns[later].message_id, turns[unset].message_id, gone.message_id}
    await storage.retention.record_scrub(turns[at_once].message_id, "call <PHONE>", {"PHONE": 1})
    due = {t.message_id for t in await storage.retention.turns_due_for_scrub(now + timedelta(hours=1), "off", 10_000)}
    assert turns[at_once].message_id not in due


async def test_purge_expired_respects_each_tenants_retention_days(storage: Storage) -> None:
    now = datetime.now(UTC)
    thirty, default = unique("t"), unique("t")
    await storage.policies.set_tenant_policy(TenantPolicy(thirty, message_retention_days=30))
    conv = uuid.uuid4()
    old = said(thirty, "ana", conv, "forty days old", when=now - timedelta(days=40))
    recent = said(thirty, "ana", conv, "ten days old", when=now - timedelta(days=10))
    other = said(default, "ana", uuid.uuid4(), "forty days old, default retention", when=now - timedelta(days=40))
    for e in (old, recent, other):
        await storage.turns.record_turn(e)

    purged = await storage.retention.purge_expired(LONG_AGO, 10_000)
    assert old.message_id in purged and recent.message_id not in purged and other.message_id not in purged
    left = await storage.memory.turns_by_ids(MemoryScope(thirty, "ana"), [old.message_id, recent.message_id])
    assert [t.message_id for t in left] == [recent.message_id]
    assert [t.message_id for t in await storage.memory.turns_by_ids(MemoryScope(default, "ana"), [other.message_id])
            ] == [other.message_id]
    assert (await storage.turns.record_turn(said(thirty, "ana", conv, "next"))).turn.seq == 3  # numbers stay taken


async def test_deleted_conversations_go_after_their_grace_period(storage: Storage) -> None:
    tenant, ana, conv, kept = unique("t"), unique("ana"), uuid.uuid4(), uuid.uuid4()
    a, b, c = said(tenant, ana, conv, "one"), said(tenant, ana, conv, "two"), said(tenant, ana, kept, "kept")
    for e in (a, b, c):
        await storage.turns.record_turn(e)
    before = datetime.now(UTC)
    await storage.conversations.delete_conversation(tenant, conv)

    early = await storage.retention.purge_expired(LONG_AGO, 10_000, before)  # still in its grace period
    assert not {a.message_id, b.message_id} & set(early)
    assert (await storage.conversations.conversation(conv)) is not None
    after = datetime.now(UTC) + timedelta(seconds=1)
    purged = await storage.retention.purge_expired(LONG_AGO, 10_000, after)
    assert {a.message_id, b.message_id} <= set(purged) and c.message_id not in purged
    assert await storage.conversations.conversation(conv) is None  # the row goes once its turns have
    assert await storage.conversations.conversation(kept) is not None


async def test_summaries_within_their_retention_are_kept(storage: Storage) -> None:
    # Expiry itself needs summaries older than a day; these only check that a sweep keeps fresh ones.
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await storage.policies.set_tenant_policy(TenantPolicy(tenant, summary_retention_days=1))
    await storage.turns.record_turn(said(tenant, ana, conv, "hello"))
    await storage.conversations.save_summary(MemoryScope(tenant, ana, conv), Summary(conv, "s", 1, "extractive"))
    conversations, users = await storage.retention.purge_summaries(LONG_AGO)
    assert conversations >= 0 and users >= 0
    assert await storage.memory.summary(conv) == Summary(conv, "s", 1, "extractive")
    assert await storage.privacy.user_summary(tenant, ana) is not None


async def test_derived_texts_are_replaced_in_place(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, conv, "call 020 7946 0958"))
    assert await storage.retention.derived_texts(conv) == ("call 020 7946 0958", None)
    await storage.conversations.save_summary(MemoryScope(tenant, ana, conv),
                                             Summary(conv, "2026: call 020 7946 0958", 1, "extractive"))
    assert await storage.retention.derived_texts(conv) == ("call 020 7946 0958", "2026: call 020 7946 0958")
    await storage.retention.replace_derived_texts(conv, "call <PHONE>", None)
    assert await storage.retention.derived_texts(conv) == ("call <PHONE>", "2026: call 020 7946 0958")
    await storage.retention.replace_derived_texts(conv, None, "2026: call <PHONE>")
    assert await storage.retention.derived_texts(conv) == ("call <PHONE>", "2026: call <PHONE>")
    info = await storage.conversations.conversation_info(tenant, conv)
    assert info is not None and info.title_source == "first_message"  # scrubbing is not renaming
    assert await storage.retention.derived_texts(uuid.uuid4()) == (None, None)
