"""TurnLedger: each turn recorded once, numbered in its conversation, owned, and announced once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from convmem.errors import ConversationClosed, OwnershipConflict, PoisonError
from convmem.ports import Enrichment, MemoryScope, Storage
from tests.integration.support import answer, said, unique


async def test_a_turn_is_recorded_once_and_numbered_in_its_conversation(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    first = said(tenant, ana, conv, "first", ext=unique("e"))
    a = await storage.turns.record_turn(first, Enrichment("en", "greeting", 0.5))
    b = await storage.turns.record_turn(said(tenant, ana, conv, "second"))
    assert (a.created, a.published, a.turn.seq, b.created, b.turn.seq) == (True, False, 1, True, 2)
    assert (a.turn.message_id, a.turn.conversation_id, a.turn.text, a.turn.role, a.turn.external_id) == (
        first.message_id, conv, "first", "user", first.external_id)
    assert (a.turn.language, a.turn.intent) == ("en", "greeting")
    assert a.turn.intent_confidence == pytest.approx(0.5)

    again = await storage.turns.record_turn(first)  # a redelivery
    assert (again.created, again.published, again.turn.seq, again.turn.text) == (False, False, 1, "first")
    assert (await storage.turns.record_turn(said(tenant, ana, conv, "third"))).turn.seq == 3
    assert (await storage.turns.record_turn(said(tenant, ana, uuid.uuid4(), "elsewhere"))).turn.seq == 1


async def test_announced_turns_are_remembered(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    a, b, c, d = (said(tenant, ana, conv, text) for text in ("a", "b", "c", "d"))
    for event in (a, b, c, d):
        await storage.turns.record_turn(event)
    await storage.turns.mark_turn_published(a.message_id)
    await storage.turns.mark_turns_published([b.message_id, c.message_id])
    await storage.turns.mark_turns_published([a.message_id, b.message_id])  # marking again changes nothing
    published = [(await storage.turns.record_turn(e)).published for e in (a, b, c, d)]
    assert published == [True, True, True, False]


async def test_a_reply_is_recorded_as_the_assistants_turn(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    question = said(tenant, ana, conv, "where is my booking?")
    await storage.turns.record_turn(question)
    reply = answer(question, "in your inbox")
    out = await storage.turns.record_turn(reply)
    assert (out.created, out.turn.seq, out.turn.role, out.turn.text) == (True, 2, "assistant", "in your inbox")
    assert (out.turn.in_reply_to, out.turn.external_id, out.turn.reply_expected) == (question.message_id, None, False)
    assert out.turn.metadata == {"model": "m", "sources": [], "finish_reason": None}


async def test_a_conversation_belongs_to_whoever_started_it(storage: Storage) -> None:
    tenant, ana, ben, conv = unique("t"), unique("ana"), unique("ben"), uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, conv, "mine"))
    intruder = said(tenant, ben, conv, "mine now")
    with pytest.raises(OwnershipConflict):
        await storage.turns.record_turn(intruder)
    with pytest.raises(OwnershipConflict):  # the same user name in another tenant is someone else
        await storage.turns.record_turn(said(unique("t"), ana, conv, "also mine"))
    turns = await storage.memory.conversation_turns(MemoryScope(tenant, ana, conv), 0, 10)
    assert [t.text for t in turns or []] == ["mine"]
    assert await storage.memory.turns_by_ids(MemoryScope(tenant, ben), [intruder.message_id]) == []
    assert (await storage.turns.record_turn(said(tenant, ana, conv, "still mine"))).turn.seq == 2


async def test_a_deleted_conversation_takes_no_more_turns(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    first = said(tenant, ana, conv, "soon gone")
    await storage.turns.record_turn(first)
    await storage.conversations.delete_conversation(tenant, conv)
    late = said(tenant, ana, conv, "late")
    with pytest.raises(ConversationClosed):
        await storage.turns.record_turn(late)
    assert (await storage.turns.record_turn(first)).created is False  # a redelivery is still recognised
    assert await storage.memory.turns_by_ids(MemoryScope(tenant, ana), [late.message_id]) == []


async def test_an_external_id_names_one_message_per_tenant_and_user(storage: Storage) -> None:
    tenant, ana, conv, key = unique("t"), unique("ana"), uuid.uuid4(), unique("wamid")
    await storage.turns.record_turn(said(tenant, ana, conv, "first", ext=key))
    with pytest.raises(PoisonError):  # a producer reused its idempotency key for another message
        await storage.turns.record_turn(said(tenant, ana, conv, "same key", ext=key))
    assert (await storage.turns.record_turn(said(tenant, ana, conv, "next"))).turn.seq == 2  # nothing was kept
    fresh = uuid.uuid4()
    with pytest.raises(PoisonError):
        await storage.turns.record_turn(said(tenant, ana, fresh, "same key again", ext=key))
    assert await storage.conversations.conversation(fresh) is None  # nor a conversation opened for it
    elsewhere = await storage.turns.record_turn(said(unique("t"), ana, uuid.uuid4(), "other tenant", ext=key))
    assert elsewhere.created
    # Another user of the same tenant with the same key: another message, never taken for a retry.
    bens = await storage.turns.record_turn(said(tenant, unique("ben"), uuid.uuid4(), "ben's own", ext=key))
    assert bens.created and bens.turn.text == "ben's own"


async def test_the_same_message_recorded_at_once_by_two_consumers_is_one_turn(storage: Storage) -> None:
    # Two consumers can hold the same record at once (a rebalance overlap): neither may fail.
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, conv, "first"))  # the conversation exists
    for _ in range(5):
        event = said(tenant, ana, conv, "said once, recorded twice")
        outcomes = await asyncio.gather(*(storage.turns.record_turn(event) for _ in range(4)))
        assert sorted(o.created for o in outcomes) == [False, False, False, True]
        assert len({o.turn.seq for o in outcomes}) == 1
