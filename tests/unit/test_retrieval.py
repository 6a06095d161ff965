from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from contracts import MessageReceived, TurnRecorded
from convmem.ports import MemoryScope
from convmem.retrieval import Retriever, Stages, rrf_fusion
from services.indexer.embedding import embed_turns
from tests.fakes import FakeEmbedder, FakeIndex, fake_storage

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


class Memory:
    def __init__(self) -> None:
        self.store, self.index = fake_storage(), FakeIndex()
        self.retriever = Retriever(self.store.memory, self.index, FakeEmbedder())

    async def say(self, user: str, text: str, conv: uuid.UUID, days_ago: float = 0, role: str = "user",
                  tenant: str = "t") -> TurnRecorded:
        event = MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                                text=text, role=role, occurred_at=NOW - timedelta(days=days_ago))  # type: ignore[arg-type]
        outcome = await self.store.turns.record_turn(event)
        await embed_turns([outcome.turn], FakeEmbedder(), self.index, self.store.embeddings)
        return outcome.turn


def test_rrf_rewards_agreement_between_lists() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fused = rrf_fusion({"fts": [a, b], "vector": [b, c]})
    assert list(fused) == [b, a, c]
    assert fused[b] == pytest.approx(1 / 62 + 1 / 61)


def test_stage_switches_parse_and_reject_unknown_names() -> None:
    assert Stages.parse("fts", "none") == Stages("fts", False, False, False)
    assert Stages.parse("hybrid", "rerank,temporal") == Stages("hybrid", True, False, True)
    assert Stages.parse("vector", None, Stages(rerank=True)).rerank
    with pytest.raises(ValueError, match="unknown stage"):
        Stages.parse("hybrid", "magic")
    with pytest.raises(ValueError, match="mode"):
        Stages.parse("bm25", None)


async def test_search_is_scoped_to_the_user_and_finds_by_words_and_meaning() -> None:
    m, conv = Memory(), uuid.uuid4()
    fact = await m.say("ana", "my sister Lucia moved to Porto", conv, days_ago=30)
    await m.say("ana", "the weather is nice", conv, days_ago=29)
    await m.say("ben", "my sister Lucia moved to Porto", uuid.uuid4(), days_ago=30)
    await m.say("ana", "my sister Lucia moved to Porto", uuid.uuid4(), days_ago=30, tenant="t2")
    for mode in ("hybrid", "fts", "vector"):
        result = await m.retriever.search("where did my sister move", MemoryScope("t", "ana"), 5, NOW,
                                          Stages(mode, False, False, False))
        assert result.hits[0].turn.message_id == fact.message_id, mode
        assert {h.turn.user_id for h in result.hits} == {"ana"}
        assert {h.turn.tenant_id for h in result.hits} == {"t"}


async def test_a_time_in_the_question_prefers_turns_from_that_time() -> None:
    m, conv = Memory(), uuid.uuid4()
    old = await m.say("ana", "I went to the dentist", conv, days_ago=200)
    recent = await m.say("ana", "I went to the dentist again", conv, days_ago=3)
    question = "when did I go to the dentist last week?"
    plain = await m.retriever.search(question, MemoryScope("t", "ana"), 5, NOW, Stages(temporal=False))
    timed = await m.retriever.search(question, MemoryScope("t", "ana"), 5, NOW, Stages(temporal=True))
    assert plain.hits[0].turn.message_id == old.message_id  # fewer extra words: ranks first without time
    assert timed.timeframe is not None and timed.hits[0].turn.message_id == recent.message_id
    assert "fts@time" in timed.hits[0].ranks


async def test_neighbours_travel_with_a_hit_and_lift_the_answer_to_a_question() -> None:
    m, conv = Memory(), uuid.uuid4()
    await m.say("ana", "hello there", conv)
    question = await m.say("ana", "what is your dog called?", conv, role="assistant")
    answer = await m.say("ana", "Rex, he is a beagle", conv)
    result = await m.retriever.search("what is my dog called", MemoryScope("t", "ana"), 3, NOW,
                                      Stages(neighbours=True))
    top = result.hits[0]
    assert top.turn.message_id == question.message_id
    assert [c.message_id for c in top.context][-1] == answer.message_id
    ids = [h.turn.message_id for h in result.hits]
    assert answer.message_id in ids


async def test_rerank_and_conversation_scope_and_deleted_turns() -> None:
    m, c1, c2 = Memory(), uuid.uuid4(), uuid.uuid4()
    a = await m.say("ana", "my favourite colour is green", c1)
    b = await m.say("ana", "my favourite colour is blue", c2)
    only_c2 = await m.retriever.search("favourite colour", MemoryScope("t", "ana", c2), 5, NOW,
                                       Stages(rerank=True))
    assert [h.turn.message_id for h in only_c2.hits] == [b.message_id]
    await m.store.conversations.delete_conversation("t", c1)
    after = await m.retriever.search("favourite colour", MemoryScope("t", "ana"), 5, NOW)
    assert a.message_id not in [h.turn.message_id for h in after.hits]
    assert (await m.retriever.search("   ", MemoryScope("t", "ana"), 5, NOW)).hits == []
