"""What the edge decides before publishing (services.ingest.accepting): duplicates, derived
ids, and which conversations a message may go into."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import MessageReceived, identity
from convmem.ports import Storage
from services.ingest.accepting import Acceptance, accept_message, not_yet_stored
from services.ingest.principal import Principal, Refused
from services.ingest.schemas import PostMessage
from tests.fakes import fake_storage

ANA = Principal("ana", "default", frozenset({"user"}))
BEN = Principal("ben", "default", frozenset({"user"}))
BOT = Principal("bot", "default", frozenset({"service"}))


def post(user: str = "ana", **fields: Any) -> PostMessage:
    return PostMessage(user_id=user, text="hello", **fields)


async def stored(storage: Storage, event: MessageReceived) -> MessageReceived:
    await storage.turns.record_turn(event)
    return event


async def seed(storage: Storage, tenant: str = "default", user: str = "ana",
               external_id: str | None = None) -> MessageReceived:
    return await stored(storage, MessageReceived(
        tenant_id=tenant, user_id=user, conversation_id=uuid.uuid4(), message_id=uuid.uuid4(),
        external_id=external_id, text="hi", occurred_at=datetime.now(UTC)))


async def accept(storage: Storage, who: Principal, body: PostMessage) -> Acceptance:
    return await accept_message(storage.lookup, storage.conversations, who, body)


async def test_a_known_external_id_answers_the_stored_ids_and_publishes_nothing() -> None:
    storage = fake_storage()
    first = await seed(storage, external_id="ext-1")
    again = await accept(storage, ANA, post(external_id="ext-1"))
    assert again.duplicate and again.event is None
    assert (again.message_id, again.conversation_id) == (first.message_id, first.conversation_id)
    # the dedupe comes before the conversation rule: a retry gets its ids whatever it names
    elsewhere = await seed(storage, user="ben")
    retry = await accept(storage, ANA, post(external_id="ext-1", conversation_id=elsewhere.conversation_id))
    assert retry.duplicate and retry.message_id == first.message_id


async def test_new_ids_are_derived_from_the_external_id() -> None:
    storage = fake_storage()
    a = await accept(storage, ANA, post(external_id="ext-2"))
    b = await accept(storage, ANA, post(external_id="ext-2"))  # a retry racing the recorder
    assert not a.duplicate and a.event is not None
    assert a.message_id == b.message_id == identity.message_id_for_external("default", "ana", "ext-2")
    assert a.conversation_id == b.conversation_id == identity.conversation_id_for_external("default", "ana", "ext-2")
    assert (a.event.message_id, a.event.conversation_id, a.event.channel) == (a.message_id, a.conversation_id, "http")
    # without one, each message is new
    c, d = await accept(storage, ANA, post()), await accept(storage, ANA, post())
    assert c.message_id != d.message_id and c.conversation_id != d.conversation_id


async def test_the_event_says_what_was_posted() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    got = await accept(fake_storage(), BOT, post("ben", role="assistant", occurred_at=when, metadata={"k": 1}))
    event = got.event
    assert event is not None and (event.tenant_id, event.user_id, event.role) == ("default", "ben", "assistant")
    assert event.occurred_at == when and event.metadata == {"k": 1}
    assert not event.reply_expected  # only user turns are answered
    asked = (await accept(fake_storage(), ANA, post())).event
    assert asked is not None and asked.reply_expected


async def test_a_message_goes_only_into_its_users_live_conversation_of_its_tenant() -> None:
    storage = fake_storage()
    anas = await seed(storage)
    assert (await accept(storage, ANA, post(conversation_id=anas.conversation_id))).conversation_id \
        == anas.conversation_id
    assert not (await accept(storage, BOT, post(conversation_id=anas.conversation_id))).duplicate
    unknown = uuid.uuid4()  # an id nobody used yet opens a new conversation
    assert (await accept(storage, ANA, post(conversation_id=unknown))).conversation_id == unknown
    foreign = await seed(storage, tenant="acme")  # another tenant's: refused here, not dead-lettered later
    gone = await seed(storage)
    await storage.conversations.delete_conversation("default", gone.conversation_id)
    for who, body in [(BEN, post("ben", conversation_id=anas.conversation_id)),
                      (BOT, post("ben", conversation_id=anas.conversation_id)),  # a service posting as ben
                      (ANA, post(conversation_id=foreign.conversation_id)),
                      (ANA, post(conversation_id=gone.conversation_id))]:
        with pytest.raises(Refused) as caught:
            await accept(storage, who, body)
        assert (caught.value.status, caught.value.code) == (404, "conversation_not_found")


async def test_posting_rights_are_checked_first() -> None:
    with pytest.raises(Refused) as caught:
        await accept(fake_storage(), ANA, post("ben"))
    assert caught.value.status == 403


async def test_webhook_messages_already_stored_are_dropped_in_order() -> None:
    storage = fake_storage()
    old = await seed(storage, external_id="wamid.1")

    def msg(tenant: str, external_id: str | None) -> MessageReceived:
        return MessageReceived(tenant_id=tenant, user_id="ana", conversation_id=old.conversation_id,
                               message_id=uuid.uuid4(), external_id=external_id, channel="whatsapp", text="x",
                               occurred_at=datetime.now(UTC))
    batch = [msg("default", "wamid.2"), msg("default", "wamid.1"), msg("acme", "wamid.1"), msg("default", None)]
    assert await not_yet_stored(storage.lookup, batch) == [batch[0], batch[2], batch[3]]
    assert await not_yet_stored(storage.lookup, []) == []
