"""ReplyLedger: one reply per user turn, whoever claims it first; published once acknowledged."""

from __future__ import annotations

import uuid

from convmem.ports import Storage
from tests.integration.support import answer, said, unique


async def test_the_first_claim_of_a_turn_is_the_only_reply(storage: Storage) -> None:
    question = said(unique("t"), unique("ana"), uuid.uuid4(), "hello?")
    assert await storage.replies.find_reply(question.message_id) is None
    one, two = answer(question, "one"), answer(question, "two")
    first = await storage.replies.claim_reply(one)
    second = await storage.replies.claim_reply(two)  # a second worker, or a redelivery with a new answer
    assert first == second and first.reply == one and not first.published
    assert await storage.replies.find_reply(question.message_id) == first


async def test_a_claimed_reply_is_marked_published_once(storage: Storage) -> None:
    question = said(unique("t"), unique("ana"), uuid.uuid4(), "hello?")
    reply = answer(question)
    await storage.replies.claim_reply(reply)
    await storage.replies.mark_reply_published(question.message_id)
    await storage.replies.mark_reply_published(question.message_id)  # an acknowledgement seen twice
    await storage.replies.mark_reply_published(uuid.uuid4())  # nothing claimed: nothing to mark
    found = await storage.replies.find_reply(question.message_id)
    assert found is not None and found.published and found.reply == reply
    again = await storage.replies.claim_reply(answer(question, "later"))
    assert again.published and again.reply == reply
