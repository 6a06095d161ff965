"""Backlog: the turns a later stage has not finished, counted with the oldest of them."""

from __future__ import annotations

import uuid

from convmem.ports import Storage
from tests.integration.support import answer, said, unique


async def test_turns_wait_to_be_embedded_until_marked(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    assert (await storage.backlog.unembedded(tenant)).count == 0
    first, second = said(tenant, ana, conv, "first"), said(tenant, ana, conv, "second")
    recorded = [(await storage.turns.record_turn(e)).turn for e in (first, second)]

    waiting = await storage.backlog.unembedded(tenant)
    assert waiting.count == 2 and waiting.oldest_at == recorded[0].recorded_at
    assert (await storage.backlog.unembedded()).count >= 2  # every tenant's, these among them

    await storage.embeddings.mark_embedded([first.message_id])
    waiting = await storage.backlog.unembedded(tenant)
    assert waiting.count == 1 and waiting.oldest_at == recorded[1].recorded_at
    await storage.embeddings.mark_embedded([second.message_id])
    assert await storage.backlog.unembedded(tenant) == type(waiting)(0, None)


async def test_turns_of_deleted_conversations_wait_for_nothing(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    await storage.turns.record_turn(said(tenant, ana, conv, "soon gone"))
    assert (await storage.backlog.unembedded(tenant)).count == 1
    assert (await storage.backlog.unreplied(tenant)).count == 1
    await storage.conversations.delete_conversation(tenant, conv)
    assert (await storage.backlog.unembedded(tenant)).count == 0
    assert (await storage.backlog.unreplied(tenant)).count == 0


async def test_a_user_turn_waits_for_its_reply_until_the_reply_is_published(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    asked = said(tenant, ana, conv, "will you answer?")
    told = said(tenant, ana, conv, "just so you know", reply_expected=False)
    turn = (await storage.turns.record_turn(asked)).turn
    await storage.turns.record_turn(told)

    waiting = await storage.backlog.unreplied(tenant)
    assert waiting.count == 1 and waiting.oldest_at == turn.recorded_at

    reply = answer(asked)
    await storage.replies.claim_reply(reply)
    assert (await storage.backlog.unreplied(tenant)).count == 1  # claimed, not yet sent out
    await storage.replies.mark_reply_published(asked.message_id)
    assert (await storage.backlog.unreplied(tenant)).count == 0
    await storage.turns.record_turn(reply)  # the assistant's turn never waits for a reply
    assert (await storage.backlog.unreplied(tenant)).count == 0
    assert (await storage.backlog.unembedded(tenant)).count == 3
