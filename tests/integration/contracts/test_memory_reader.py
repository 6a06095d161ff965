"""MemoryReader: every read is scoped to one tenant and user, and deleted turns are gone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import MessageReceived
from convmem.ports import MemoryScope, Storage, Summary
from tests.integration.support import said, unique

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def conversation(storage: Storage, tenant: str, user: str, conv: uuid.UUID, n: int) -> list[MessageReceived]:
    events = [said(tenant, user, conv, f"turn {i}", when=T0 + timedelta(minutes=i)) for i in range(1, n + 1)]
    for e in events:
        await storage.turns.record_turn(e)
    return events


async def test_recent_turns_are_the_latest_before_a_place_in_order(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await conversation(storage, tenant, ana, conv, 5)
    recent = await storage.memory.recent_turns(MemoryScope(tenant, ana, conv), 5, 2)
    assert [(t.seq, t.text) for t in recent] == [(3, "turn 3"), (4, "turn 4")]
    assert [t.seq for t in await storage.memory.recent_turns(MemoryScope(tenant, ana, conv), 99, 10)] == [1, 2, 3, 4, 5]
    assert await storage.memory.recent_turns(MemoryScope(tenant, unique("ben"), conv), 99, 10) == []
    assert await storage.memory.recent_turns(MemoryScope(unique("t"), ana, conv), 99, 10) == []
    with pytest.raises(ValueError):
        await storage.memory.recent_turns(MemoryScope(tenant, ana), 99, 10)


async def test_conversation_turns_page_forward_for_the_owner_only(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await conversation(storage, tenant, ana, conv, 4)
    page = await storage.memory.conversation_turns(MemoryScope(tenant, ana, conv), 1, 2)
    assert [t.seq for t in page or []] == [2, 3]
    assert await storage.memory.conversation_turns(MemoryScope(tenant, ana, conv), 4, 10) == []
    assert await storage.memory.conversation_turns(MemoryScope(tenant, unique("ben"), conv), 0, 10) is None
    assert await storage.memory.conversation_turns(MemoryScope(unique("t"), ana, conv), 0, 10) is None
    assert await storage.memory.conversation_turns(MemoryScope(tenant, ana, uuid.uuid4()), 0, 10) is None
    await storage.conversations.delete_conversation(tenant, conv)
    assert await storage.memory.conversation_turns(MemoryScope(tenant, ana, conv), 0, 10) is None


async def test_turns_by_ids_never_cross_users_tenants_or_the_scope(storage: Storage) -> None:
    tenant, ana, ben, c1, c2 = unique("t"), unique("ana"), unique("ben"), uuid.uuid4(), uuid.uuid4()
    mine = await conversation(storage, tenant, ana, c1, 2)
    later = said(tenant, ana, c2, "much later", when=T0 + timedelta(days=30))
    his = said(tenant, ben, uuid.uuid4(), "his")
    namesake = said(unique("t"), ana, uuid.uuid4(), "same name, other tenant")
    for e in (later, his, namesake):
        await storage.turns.record_turn(e)
    ids = [e.message_id for e in (*mine, later, his, namesake)]

    found = await storage.memory.turns_by_ids(MemoryScope(tenant, ana), ids)
    assert {t.message_id for t in found} == {mine[0].message_id, mine[1].message_id, later.message_id}
    assert all((t.tenant_id, t.user_id) == (tenant, ana) for t in found)
    in_c2 = await storage.memory.turns_by_ids(MemoryScope(tenant, ana, c2), ids)
    assert [t.message_id for t in in_c2] == [later.message_id]
    march = MemoryScope(tenant, ana, since=T0, until=T0 + timedelta(days=1))
    assert {t.message_id for t in await storage.memory.turns_by_ids(march, ids)} == {e.message_id for e in mine}
    assert [t.message_id for t in await storage.memory.turns_by_ids(MemoryScope(tenant, ben), ids)] == [his.message_id]


async def test_search_text_is_scoped_ranked_and_forgets_deleted_conversations(storage: Storage) -> None:
    tenant, ana, c1, c2 = unique("t"), unique("ana"), uuid.uuid4(), uuid.uuid4()
    both = said(tenant, ana, c1, "my sister Lucia lives in Porto", when=T0)
    one = said(tenant, ana, c2, "Porto has great wine", when=T0 + timedelta(days=10))
    for e in (both, one, said(tenant, ana, c1, "the weather is lovely", when=T0),
              said(tenant, unique("ben"), uuid.uuid4(), "Lucia from Porto too", when=T0),
              said(unique("t"), ana, uuid.uuid4(), "Lucia Porto", when=T0)):
        await storage.turns.record_turn(e)

    hits = await storage.memory.search_text(MemoryScope(tenant, ana), "Lucia Porto?", 10)
    assert [i for i, _ in hits] == [both.message_id, one.message_id]  # more of the query ranks higher
    assert hits[0][1] == pytest.approx(1.0) and 0 < hits[1][1] < 1
    assert [i for i, _ in await storage.memory.search_text(MemoryScope(tenant, ana), "Lucia Porto", 1)] == [
        both.message_id]
    since = MemoryScope(tenant, ana, since=T0 + timedelta(days=5))
    assert [i for i, _ in await storage.memory.search_text(since, "Lucia Porto", 10)] == [one.message_id]
    assert [i for i, _ in await storage.memory.search_text(MemoryScope(tenant, ana, c1), "porto", 10)] == [
        both.message_id]
    assert await storage.memory.search_text(MemoryScope(tenant, ana), "the and of", 10) == []  # stop words only
    assert await storage.memory.search_text(MemoryScope(tenant, ana), "?! ...", 10) == []  # no words at all

    await storage.conversations.delete_conversation(tenant, c1)
    assert [i for i, _ in await storage.memory.search_text(MemoryScope(tenant, ana), "Lucia Porto", 10)] == [
        one.message_id]


async def test_neighbours_are_the_turns_around_a_place_in_the_users_memory(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await conversation(storage, tenant, ana, conv, 5)
    near = await storage.memory.neighbours(MemoryScope(tenant, ana), [(conv, 3)], 1)
    assert sorted(t.seq for t in near) == [2, 3, 4]
    assert sorted(t.seq for t in await storage.memory.neighbours(MemoryScope(tenant, ana), [(conv, 1)], 2)) == [
        1, 2, 3]
    assert await storage.memory.neighbours(MemoryScope(tenant, ana), [(conv, 3)], 0) == []
    assert await storage.memory.neighbours(MemoryScope(tenant, ana), [], 1) == []
    assert await storage.memory.neighbours(MemoryScope(tenant, unique("ben")), [(conv, 3)], 1) == []
    await storage.conversations.delete_conversation(tenant, conv)
    assert await storage.memory.neighbours(MemoryScope(tenant, ana), [(conv, 3)], 1) == []


async def test_a_saved_summary_is_read_back(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await conversation(storage, tenant, ana, conv, 2)
    assert await storage.memory.summary(conv) is None
    await storage.conversations.save_summary(MemoryScope(tenant, ana, conv), Summary(conv, "so far", 2, "extractive"))
    assert await storage.memory.summary(conv) == Summary(conv, "so far", 2, "extractive")


def spoken(tenant: str, user: str, conv: uuid.UUID, text: str, minute: int, *, role: str = "user",
           speaker: str | None = None) -> MessageReceived:
    return MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(), text=text,
                           role=role, occurred_at=T0 + timedelta(minutes=minute), reply_expected=False,  # type: ignore[arg-type]
                           metadata={"speaker": speaker} if speaker else {})


async def test_search_text_with_context_reads_a_turn_with_the_one_before_it(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    asked = spoken(tenant, ana, conv, "which dessert from the baking show did you like best?", 1, role="assistant")
    reply = spoken(tenant, ana, conv, "The lemon tart, easily!", 2)
    for e in (asked, reply, spoken(tenant, ana, uuid.uuid4(), "unrelated chatter about the weather", 3)):
        await storage.turns.record_turn(e)
    scope = MemoryScope(tenant, ana)
    assert [i for i, _ in await storage.memory.search_text(scope, "baking show dessert", 10)] == [asked.message_id]
    read = dict(await storage.memory.search_text(scope, "baking show dessert", 10, context=0.5))
    assert read[asked.message_id] == pytest.approx(1.0)
    assert read[reply.message_id] == pytest.approx(0.5)  # every word, carried at half weight
    both = dict(await storage.memory.search_text(scope, "lemon tart baking show dessert", 10, context=0.5))
    assert both[reply.message_id] > both[asked.message_id]  # its own words and the question's


async def test_people_are_who_speaks_in_the_latest_turns_by_metadata_or_a_leading_name(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    for e in (spoken(tenant, ana, conv, "hi", 1, speaker="Caroline Smith"),
              spoken(tenant, ana, conv, "hello", 2, role="assistant", speaker="Melanie"),
              spoken(tenant, ana, conv, "katia: made banana bread tonight", 3),
              spoken(tenant, ana, conv, "katia: lol", 4),
              spoken(tenant, ana, conv, "no name here, just a colon: see", 5),
              spoken(unique("t"), ana, uuid.uuid4(), "other tenant", 6, speaker="Jon")):
        await storage.turns.record_turn(e)
    scope = MemoryScope(tenant, ana)
    assert await storage.memory.people(scope) == {"Caroline Smith": 1, "Melanie": 1, "katia": 2}
    assert await storage.memory.people(scope, recent=3) == {"katia": 2}  # the latest turns only
    assert await storage.memory.people(MemoryScope(tenant, unique("ben"))) == {}


async def test_last_said_at_is_the_users_newest_turn(storage: Storage) -> None:
    tenant, ana = unique("t"), unique("ana")
    assert await storage.memory.last_said_at(MemoryScope(tenant, ana)) is None
    for minute in (3, 9, 5):
        await storage.turns.record_turn(spoken(tenant, ana, uuid.uuid4(), "hi", minute))
    assert await storage.memory.last_said_at(MemoryScope(tenant, ana, since=T0, until=T0 + timedelta(minutes=4))) == \
        T0 + timedelta(minutes=9)  # the user's, whatever the scope's time bounds


async def test_addressed_counts_turns_that_call_someone_by_name_per_side(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    for e in (spoken(tenant, ana, conv, "Hey Caroline! How was it?", 1, role="assistant"),
              spoken(tenant, ana, conv, "That's great, Caroline.", 2, role="assistant"),
              spoken(tenant, ana, conv, "I told Caroline about it yesterday", 3),  # a mention, not an address
              spoken(tenant, ana, conv, "Thanks, Mel!", 4),
              spoken(tenant, ana, conv, "zoë: kat u there", 5),  # a chat line: its speaker is the side
              spoken(tenant, ana, conv, "happy birthday kat!!", 6, speaker="zoë")):
        await storage.turns.record_turn(e)
    scope = MemoryScope(tenant, ana)
    assert await storage.memory.addressed(scope, ["Caroline", "Mel", "kat", "Nobody"]) == {
        "Caroline": {"assistant": 2}, "Mel": {"user": 1}, "kat": {"zoë": 2}}
    assert await storage.memory.addressed(MemoryScope(tenant, unique("ben")), ["Caroline"]) == {}
    assert await storage.memory.addressed(scope, ["a.*b"]) == {}  # not a word: never a pattern


async def test_neighbourhood_is_the_admitted_hits_and_the_turns_around_them(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    events = await conversation(storage, tenant, ana, conv, 6)
    scope = MemoryScope(tenant, ana)
    around = await storage.memory.neighbourhood(scope, [events[2].message_id], 1)
    assert sorted(t.seq for t in around) == [2, 3, 4]
    assert sorted(t.seq for t in await storage.memory.neighbourhood(scope, [events[2].message_id], 0)) == [3]
    # The time bounds decide which hits count; their neighbours come whatever the time.
    third_only = MemoryScope(tenant, ana, since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=4))
    ids = [events[2].message_id, events[4].message_id]
    assert sorted(t.seq for t in await storage.memory.neighbourhood(third_only, ids, 1)) == [2, 3, 4]
    assert await storage.memory.neighbourhood(MemoryScope(tenant, unique("ben")), ids, 1) == []
    await storage.conversations.delete_conversation(tenant, conv)
    assert await storage.memory.neighbourhood(scope, ids, 1) == []
