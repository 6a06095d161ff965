from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts import OFFLINE_MODEL, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.memory.context import ContextBuilder
from convmem.memory.retrieval import Retriever
from convmem.ports import Storage
from services.indexer.embedding import embed_turns
from services.indexer.recording import record
from services.responder.reply import respond
from tests.fakes import FakeChatModel, FakeEmbedder, FakeIndex, FakeTokenCounter, fake_storage


def memory(store: Storage, index: FakeIndex) -> ContextBuilder:
    return ContextBuilder(store.memory, Retriever(store.memory, index, FakeEmbedder()), FakeTokenCounter())


def said(user: str, text: str, conv: uuid.UUID | None = None, tenant: str = "t1") -> MessageReceived:
    return MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv or uuid.uuid4(),
                           message_id=uuid.uuid4(), text=text, occurred_at=datetime.now(UTC))


async def recorded(store: Storage, index: FakeIndex, event: MessageReceived) -> TurnRecorded:
    turn = await record(event, store.turns)
    assert turn is not None
    await store.turns.mark_turn_published(turn.message_id)
    await embed_turns([turn], FakeEmbedder(), index, store.embeddings)
    return turn


async def test_recall_comes_from_the_same_user_only_and_offline_mode_says_so() -> None:
    store, index = fake_storage(), FakeIndex()
    fact = await recorded(store, index, said("ana", "my cat is called Miso"))
    await recorded(store, index, said("ben", "my cat is called Rex"))
    question = await recorded(store, index, said("ana", "what is my cat called"))
    reply = await respond(question, replies=store.replies, context=memory(store, index), model=None)
    assert reply is not None and reply.model == OFFLINE_MODEL
    assert reply.sources == [fact.message_id]
    assert "offline mode" in reply.text and "Miso" in reply.text and "Rex" not in reply.text


async def test_a_reply_is_generated_once_and_republished_only_until_marked() -> None:
    store, index, model = fake_storage(), FakeIndex(), FakeChatModel()
    turn = await recorded(store, index, said("ana", "hello"))

    async def answer() -> ReplyGenerated | None:
        return await respond(turn, replies=store.replies, context=memory(store, index), model=model)

    first = await answer()
    again = await answer()  # crash before publishing: same reply
    assert first is not None and again == first and len(model.calls) == 1
    await store.replies.mark_reply_published(first.in_reply_to)
    assert await answer() is None
    assert first.usage.total_tokens == 10


async def test_recent_turns_are_context_not_memory() -> None:
    store, index, model = fake_storage(), FakeIndex(), FakeChatModel()
    conv = uuid.uuid4()
    first = await recorded(store, index, said("ana", "my cat is called Miso", conv))
    second = await recorded(store, index, said("ana", "what is my cat called", conv))
    reply = await respond(second, replies=store.replies, context=memory(store, index), model=model)
    assert reply is not None and reply.sources == []
    sent = model.calls[0]
    assert [m.content for m in sent[1:]] == [first.text, second.text]


async def test_assistant_turns_and_imports_get_no_reply() -> None:
    store, index = fake_storage(), FakeIndex()
    event = said("ana", "old history").model_copy(update={"reply_expected": False, "channel": "import"})
    turn = await recorded(store, index, event)
    assert await respond(turn, replies=store.replies, context=memory(store, index), model=None) is None


async def test_redelivered_inbound_is_not_announced_twice() -> None:
    store = fake_storage()
    event = said("ana", "hi")
    turn = await record(event, store.turns)
    assert turn is not None and turn.seq == 1
    assert await record(event, store.turns) == turn  # stored, not yet announced: announce again
    await store.turns.mark_turn_published(turn.message_id)
    assert await record(event, store.turns) is None
