"""Conversations: ownership, listing by keyset pages, titles, archiving, soft deletion,
summaries and usage statistics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from convmem.ports import ConversationFilter, ConversationRef, MemoryScope, Storage, Summary
from tests.integration.support import answer, said, unique

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_a_conversation_is_owned_and_described_by_its_turns(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    question = said(tenant, ana, conv, "  Plan my trip to Porto  ", when=T0)
    await storage.turns.record_turn(question)
    await storage.turns.record_turn(answer(question, when=T0 + timedelta(minutes=1)))
    assert await storage.conversations.conversation(conv) == ConversationRef(conv, tenant, ana, "active")
    assert await storage.conversations.conversation(uuid.uuid4()) is None
    info = await storage.conversations.conversation_info(tenant, conv)
    assert info is not None
    assert (info.conversation_id, info.tenant_id, info.user_id, info.channel) == (conv, tenant, ana, "http")
    assert (info.title, info.title_source, info.status, info.conversation_type) == (
        "Plan my trip to Porto", "first_message", "active", "general")
    assert (info.message_count, info.created_at, info.last_message_at) == (2, T0, T0 + timedelta(minutes=1))
    assert await storage.conversations.conversation_info(unique("t"), conv) is None  # another tenant's

    started_by_bot, long_text = uuid.uuid4(), "x" * 100
    greeting = said(tenant, ana, started_by_bot, "ignored")
    await storage.turns.record_turn(answer(greeting, "Hi! How can I help?"))
    untitled = await storage.conversations.conversation_info(tenant, started_by_bot)
    assert untitled is not None and untitled.title is None  # the assistant's words do not title it
    await storage.turns.record_turn(said(tenant, ana, started_by_bot, long_text))
    titled = await storage.conversations.conversation_info(tenant, started_by_bot)
    assert titled is not None and titled.title == "x" * 80


async def test_conversations_are_listed_newest_first_in_keyset_pages(storage: Storage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    convs = [uuid.uuid4() for _ in range(5)]
    for i, c in enumerate(convs):
        await storage.turns.record_turn(said(tenant, ana, c, f"conversation {i}", when=T0 + timedelta(days=i)))
    await storage.turns.record_turn(said(tenant, ben, uuid.uuid4(), "ben's own", when=T0))

    seen, after = [], None
    while page := await storage.conversations.list_conversations(ConversationFilter(tenant, ana, after=after), 2):
        assert len(page) <= 2
        seen += [c.conversation_id for c in page]
        after = (page[-1].created_at, page[-1].conversation_id)
    assert seen == list(reversed(convs))
    assert len(await storage.conversations.list_conversations(ConversationFilter(tenant, None), 50)) == 6
    assert await storage.conversations.list_conversations(ConversationFilter(unique("t"), ana), 50) == []
    window = ConversationFilter(tenant, ana, since=T0 + timedelta(days=1), until=T0 + timedelta(days=3))
    assert [c.conversation_id for c in await storage.conversations.list_conversations(window, 50)] == [
        convs[2], convs[1]]

    await storage.conversations.update_conversation(tenant, convs[0], status="archived")
    await storage.conversations.delete_conversation(tenant, convs[1])
    archived = await storage.conversations.list_conversations(ConversationFilter(tenant, ana, status="archived"), 10)
    assert [c.conversation_id for c in archived] == [convs[0]]
    listed = [c.conversation_id for c in await storage.conversations.list_conversations(
        ConversationFilter(tenant, ana), 10)]
    assert listed == [convs[4], convs[3], convs[2], convs[0]]  # archived stays listed, deleted does not
    deleted = await storage.conversations.list_conversations(ConversationFilter(tenant, ana, status="deleted"), 10)
    assert [c.conversation_id for c in deleted] == [convs[1]]


async def test_a_persons_title_is_never_overwritten_by_the_model(storage: Storage) -> None:
    tenant, ana, named, untitled = unique("t"), unique("ana"), uuid.uuid4(), uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, named, "first words"))
    await storage.turns.record_turn(said(tenant, ana, untitled, "first words"))

    updated = await storage.conversations.update_conversation(tenant, named, title="Trip", status="archived")
    assert updated is not None and (updated.title, updated.title_source, updated.status) == ("Trip", "user", "archived")
    assert not await storage.conversations.set_model_title(named, "model title")
    kept = await storage.conversations.conversation_info(tenant, named)
    assert kept is not None and kept.title == "Trip"
    renamed = await storage.conversations.update_conversation(tenant, named, status="active")
    assert renamed is not None and (renamed.title, renamed.status) == ("Trip", "active")  # only what was given

    assert await storage.conversations.set_model_title(untitled, "Model's title")
    assert not await storage.conversations.set_model_title(untitled, "A second opinion")  # the model names once
    info = await storage.conversations.conversation_info(tenant, untitled)
    assert info is not None and (info.title, info.title_source) == ("Model's title", "model")
    assert not await storage.conversations.set_model_title(uuid.uuid4(), "nobody's")

    assert await storage.conversations.update_conversation(unique("t"), named, title="x") is None  # another tenant
    await storage.conversations.delete_conversation(tenant, named)
    assert await storage.conversations.update_conversation(tenant, named, title="back?") is None
    gone = uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, gone, "soon deleted"))
    await storage.conversations.delete_conversation(tenant, gone)
    assert not await storage.conversations.set_model_title(gone, "too late")


async def test_a_deleted_conversation_vanishes_from_every_read(storage: Storage) -> None:
    tenant, ana, conv, kept = unique("t"), unique("ana"), uuid.uuid4(), uuid.uuid4()
    a, b = said(tenant, ana, conv, "Lisbon plans"), said(tenant, ana, conv, "Lisbon hotel")
    other = said(tenant, ana, kept, "Lisbon again")
    for e in (a, b, other):
        await storage.turns.record_turn(e)

    assert await storage.conversations.delete_conversation(unique("t"), conv) == []  # not another tenant's to delete
    assert (await storage.conversations.conversation(conv)) == ConversationRef(conv, tenant, ana, "active")
    gone = await storage.conversations.delete_conversation(tenant, conv)
    assert sorted(gone) == sorted([a.message_id, b.message_id])
    assert await storage.conversations.delete_conversation(tenant, conv) == []  # once

    scope = MemoryScope(tenant, ana)
    assert await storage.conversations.conversation(conv) == ConversationRef(conv, tenant, ana, "deleted")
    info = await storage.conversations.conversation_info(tenant, conv)
    assert info is not None and info.status == "deleted"
    assert await storage.memory.turns_by_ids(scope, gone) == []
    assert [i for i, _ in await storage.memory.search_text(scope, "Lisbon", 10)] == [other.message_id]
    assert await storage.memory.recent_turns(MemoryScope(tenant, ana, conv), 99, 10) == []
    assert await storage.memory.conversation_turns(MemoryScope(tenant, ana, conv), 0, 10) is None
    assert await storage.embeddings.texts_to_embed(gone) == {}
    assert (await storage.conversations.stats(tenant, ana)).messages == 1


async def test_the_summary_covering_more_turns_wins(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, conv, "hello"))
    scope = MemoryScope(tenant, ana, conv)
    await storage.conversations.save_summary(scope, Summary(conv, "newer", 20, "model"))
    await storage.conversations.save_summary(scope, Summary(conv, "older", 10, "extractive"))  # a slower worker
    await storage.conversations.save_summary(scope, Summary(conv, "same reach", 20, "extractive"))  # no gain
    assert await storage.memory.summary(conv) == Summary(conv, "newer", 20, "model")
    await storage.conversations.save_summary(scope, Summary(conv, "newest", 30, "extractive"))
    assert await storage.memory.summary(conv) == Summary(conv, "newest", 30, "extractive")


async def test_stats_count_the_live_turns_of_a_tenant_or_one_user(storage: Storage) -> None:
    tenant, ana, ben, conv = unique("t"), unique("ana"), unique("ben"), uuid.uuid4()
    q1 = said(tenant, ana, conv, "question one", when=T0)
    for e in (q1, said(tenant, ana, conv, "question two", when=T0 + timedelta(days=2)),
              said(tenant, ana, conv, "history only", when=T0 + timedelta(days=3), reply_expected=False),
              said(tenant, ben, uuid.uuid4(), "ben asks", when=T0 + timedelta(days=5))):
        await storage.turns.record_turn(e)
    reply = answer(q1, when=T0 + timedelta(hours=1))
    await storage.replies.claim_reply(reply)
    await storage.replies.mark_reply_published(q1.message_id)
    await storage.turns.record_turn(reply)
    gone = uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, gone, "deleted later", when=T0 + timedelta(days=9)))
    await storage.conversations.delete_conversation(tenant, gone)

    st = await storage.conversations.stats(tenant, ana)
    assert (st.users, st.conversations, st.messages) == (1, 1, 4)
    assert st.by_role == {"user": 3, "assistant": 1, "system": 0}
    assert (st.reply_expected, st.replied, st.success_rate) == (2, 1, 0.5)
    assert (st.first_interaction, st.last_interaction) == (T0, T0 + timedelta(days=3))
    whole = await storage.conversations.stats(tenant, None)
    assert (whole.users, whole.conversations, whole.messages, whole.reply_expected) == (2, 2, 5, 3)
    empty = await storage.conversations.stats(unique("t"), None)
    assert (empty.users, empty.messages, empty.success_rate, empty.first_interaction) == (0, 0, None, None)
