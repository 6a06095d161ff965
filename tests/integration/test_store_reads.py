"""The read side of the Postgres adapter on the real database: full-text search with its
scope, neighbours, conversation listing with keyset pages, soft delete, stats, summaries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import MessageReceived, ReplyGenerated
from convmem.adapters.postgres import PostgresStorage, or_query
from convmem.errors import ConversationClosed
from convmem.ports import ConversationFilter, Enrichment, MemoryScope, Summary
from tests.integration.support import unique

pytestmark = pytest.mark.stack
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def said(store: PostgresStorage, tenant: str, user: str, conv: uuid.UUID, text: str, day: int = 0,
               expect_reply: bool = True) -> MessageReceived:
    event = MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                            external_id=unique("e"), text=text, occurred_at=T0 + timedelta(days=day),
                            reply_expected=expect_reply)
    await store.turns.record_turn(event, Enrichment("en", "question", 0.6))
    return event


def test_questions_become_or_queries_without_operators() -> None:
    assert or_query("What's my sister's name?!") == "what | s | my | sister | name"
    assert or_query("a & b | !c <-> d:*") == "a | b | c | d"
    assert or_query("¿Dónde vive mi hermana?") == "dónde | vive | mi | hermana"
    assert or_query("?! ...") is None


async def test_full_text_search_is_stemmed_scoped_and_bounded_in_time(store: PostgresStorage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    c1, c2 = uuid.uuid4(), uuid.uuid4()
    booked = await said(store, tenant, ana, c1, "I booked a flight to Lisbon for the conference", day=0)
    later = await said(store, tenant, ana, c2, "Another booking: the Lisbon hotel near the venue", day=40)
    await said(store, tenant, ana, c1, "the weather is lovely", day=1)
    await said(store, tenant, ben, uuid.uuid4(), "I booked a flight to Lisbon too", day=0)
    await said(store, unique("t"), ana, uuid.uuid4(), "I booked a flight to Lisbon as well", day=0)

    hits = await store.memory.search_text(MemoryScope(tenant, ana), "when is my booking to lisbon?", 10)
    assert {i for i, _ in hits} == {booked.message_id, later.message_id}
    assert all(score > 0 for _, score in hits)
    in_march = MemoryScope(tenant, ana, since=T0 - timedelta(days=1), until=T0 + timedelta(days=10))
    assert [i for i, _ in await store.memory.search_text(in_march, "lisbon booking", 10)] == [booked.message_id]
    only_c2 = MemoryScope(tenant, ana, c2)
    assert [i for i, _ in await store.memory.search_text(only_c2, "lisbon", 10)] == [later.message_id]
    assert await store.memory.search_text(MemoryScope(tenant, ana), "the and of", 10) == []  # stop words only

    near = await store.memory.neighbours(MemoryScope(tenant, ana), [(c1, 1)], 1)
    assert sorted(t.seq for t in near) == [1, 2]
    assert await store.memory.neighbours(MemoryScope(tenant, ben), [(c1, 1)], 1) == []
    [turn] = await store.memory.turns_by_ids(MemoryScope(tenant, ana), [booked.message_id])
    # pytest types approx() as Approx, which mypy cannot see overlaps a float in a tuple.
    assert (turn.language, turn.intent, turn.intent_confidence) == ("en", "question", pytest.approx(0.6))  # type: ignore[comparison-overlap]


async def test_conversations_page_by_keyset_update_and_delete(store: PostgresStorage) -> None:
    tenant, ana, ben = unique("t"), unique("ana"), unique("ben")
    convs = [uuid.uuid4() for _ in range(5)]
    for i, c in enumerate(convs):
        await said(store, tenant, ana, c, f"conversation {i} starts here", day=i)
    await said(store, tenant, ben, uuid.uuid4(), "ben's own")

    page1 = await store.conversations.list_conversations(ConversationFilter(tenant, ana), 2)
    page2 = await store.conversations.list_conversations(
        ConversationFilter(tenant, ana, after=(page1[-1].created_at, page1[-1].conversation_id)), 2)
    page3 = await store.conversations.list_conversations(
        ConversationFilter(tenant, ana, after=(page2[-1].created_at, page2[-1].conversation_id)), 2)
    seen = [c.conversation_id for c in page1 + page2 + page3]
    assert seen == list(reversed(convs))
    assert page1[0].title == "conversation 4 starts here" and page1[0].title_source == "first_message"
    assert len(await store.conversations.list_conversations(ConversationFilter(tenant, None), 50)) == 6

    updated = await store.conversations.update_conversation(tenant, convs[0], title="Trip", status="archived")
    assert updated is not None and (updated.title, updated.title_source, updated.status) == ("Trip", "user", "archived")
    assert not await store.conversations.set_model_title(convs[0], "model title")  # a person's title stays
    archived = await store.conversations.list_conversations(ConversationFilter(tenant, ana, status="archived"), 10)
    assert [c.conversation_id for c in archived] == [convs[0]]
    assert await store.conversations.update_conversation(unique("t"), convs[0], title="x") is None  # another tenant

    gone = await store.conversations.delete_conversation(tenant, convs[1])
    assert len(gone) == 1
    assert await store.memory.turns_by_ids(MemoryScope(tenant, ana), gone) == []
    assert await store.memory.search_text(MemoryScope(tenant, ana), "conversation 1 starts", 10) != []
    assert all(i not in gone for i, _ in await store.memory.search_text(MemoryScope(tenant, ana), "starts", 10))
    with pytest.raises(ConversationClosed):  # a late event does not bring it back
        await store.turns.record_turn(MessageReceived(tenant_id=tenant, user_id=ana, conversation_id=convs[1],
                                                message_id=uuid.uuid4(), text="late", occurred_at=T0))
    assert (await store.conversations.conversation(convs[1])).status == "deleted"  # type: ignore[union-attr]
    # storage follows after the grace period
    purged = await store.retention.purge_expired(datetime(2000, 1, 1, tzinfo=UTC), 100, datetime.now(UTC) + timedelta(1))
    assert set(gone) <= set(purged)
    assert await store.conversations.conversation(convs[1]) is None


async def test_stats_summaries_and_known_external_ids(store: PostgresStorage) -> None:
    tenant, ana = unique("t"), unique("ana")
    conv = uuid.uuid4()
    q1 = await said(store, tenant, ana, conv, "question one", day=0)
    await said(store, tenant, ana, conv, "question two", day=2)
    await said(store, tenant, ana, conv, "history only", day=3, expect_reply=False)
    reply = ReplyGenerated(tenant_id=tenant, user_id=ana, conversation_id=conv, message_id=uuid.uuid4(),
                           in_reply_to=q1.message_id, text="answer", model="m", occurred_at=T0 + timedelta(hours=1))
    await store.replies.claim_reply(reply)
    await store.replies.mark_reply_published(q1.message_id)
    await store.turns.record_turn(reply)

    st = await store.conversations.stats(tenant, ana)
    assert (st.conversations, st.messages, st.by_role["user"], st.by_role["assistant"]) == (1, 4, 3, 1)
    assert (st.reply_expected, st.replied, st.success_rate) == (2, 1, 0.5)
    assert st.first_interaction == T0 and st.last_interaction == T0 + timedelta(days=3)
    assert (await store.conversations.stats(tenant, None)).users == 1
    assert (await store.conversations.stats(tenant, unique("nobody"))).messages == 0

    scope = MemoryScope(tenant, ana, conv)
    await store.conversations.save_summary(scope, Summary(conv, "newer", 20, "model"))
    await store.conversations.save_summary(scope, Summary(conv, "older", 10, "extractive"))  # a slower worker loses
    assert await store.memory.summary(conv) == Summary(conv, "newer", 20, "model")

    assert await store.lookup.known_external_ids(tenant, [(ana, q1.external_id or ""), (ana, "nope")]) == {
        (ana, q1.external_id)}
    assert await store.lookup.known_external_ids(unique("t"), [(ana, q1.external_id or "")]) == set()
