"""The Postgres adapter on the real database: idempotent recording, ordering, ownership,
one reply per turn, scoped reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts import MessageReceived, ReplyGenerated
from convmem.adapters.postgres import PostgresStorage
from convmem.errors import OwnershipConflict
from convmem.ports import MemoryScope
from tests.integration.support import unique

pytestmark = pytest.mark.stack


def said(user: str, conv: uuid.UUID, text: str, ext: str | None = None) -> MessageReceived:
    return MessageReceived(tenant_id="t", user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                           external_id=ext, text=text, occurred_at=datetime.now(UTC))


async def test_recording_is_idempotent_ordered_and_owned(store: PostgresStorage) -> None:
    user, conv = unique("u"), uuid.uuid4()
    a, b = said(user, conv, "first", unique("e")), said(user, conv, "second")
    ra = await store.turns.record_turn(a)
    rb = await store.turns.record_turn(b)
    assert (ra.created, ra.turn.seq, rb.turn.seq) == (True, 1, 2)
    again = await store.turns.record_turn(a)
    assert again.created is False and again.turn.seq == 1 and again.published is False
    await store.turns.mark_turn_published(a.message_id)
    assert (await store.turns.record_turn(a)).published is True
    assert a.external_id is not None  # narrows the type for the lookup below
    assert await store.lookup.message_ref("t", user, a.external_id) == (a.message_id, conv)
    with pytest.raises(OwnershipConflict):
        await store.turns.record_turn(said(unique("intruder"), conv, "mine now"))
    turns = await store.memory.conversation_turns(MemoryScope("t", user, conv), 0, 10)
    assert [t.text for t in turns or []] == ["first", "second"]
    assert await store.memory.conversation_turns(MemoryScope("t", unique("other"), conv), 0, 10) is None
    assert await store.memory.turns_by_ids(MemoryScope("t", unique("other")), [a.message_id]) == []


async def test_only_one_reply_per_turn_is_ever_claimed(store: PostgresStorage) -> None:
    turn_id = uuid.uuid4()

    def reply(text: str) -> ReplyGenerated:
        return ReplyGenerated(tenant_id="t", user_id="u", conversation_id=uuid.uuid4(), message_id=uuid.uuid4(),
                              in_reply_to=turn_id, text=text, model="m", occurred_at=datetime.now(UTC))

    first = await store.replies.claim_reply(reply("one"))
    second = await store.replies.claim_reply(reply("two"))
    assert first.reply.text == second.reply.text == "one" and not second.published
    await store.replies.mark_reply_published(turn_id)
    found = await store.replies.find_reply(turn_id)
    assert found is not None and found.published
