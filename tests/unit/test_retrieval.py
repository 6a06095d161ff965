from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import OFFLINE_MODEL, MessageReceived, ReplyGenerated, TurnRecorded
from convmem.errors import RetryableError
from convmem.memory.fusion import standout
from convmem.memory.retrieval import Retriever, Stages, rrf_fusion
from convmem.memory.speakers import without_names
from convmem.ports import ChatMessage, Completion, MemoryScope
from services.indexer.embedding import embed_turns
from tests.fakes import FakeEmbedder, FakeIndex, fake_storage

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PLAIN = Stages.parse("hybrid", "none")


class Memory:
    def __init__(self) -> None:
        self.store, self.index = fake_storage(), FakeIndex()
        self.retriever = Retriever(self.store.memory, self.index, FakeEmbedder())

    async def say(self, user: str, text: str, conv: uuid.UUID, days_ago: float = 0, role: str = "user",
                  tenant: str = "t", speaker: str | None = None) -> TurnRecorded:
        metadata: dict[str, Any] = {"speaker": speaker} if speaker else {}
        event = MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                                text=text, role=role, occurred_at=NOW - timedelta(days=days_ago),  # type: ignore[arg-type]
                                metadata=metadata)
        outcome = await self.store.turns.record_turn(event)
        await embed_turns([outcome.turn], FakeEmbedder(), self.index, self.store.embeddings)
        return outcome.turn

    async def ids(self, question: str, stages: Stages, k: int = 5, scope: MemoryScope | None = None) -> list[uuid.UUID]:
        result = await self.retriever.search(question, scope or MemoryScope("t", "ana"), k, NOW, stages)
        return [h.turn.message_id for h in result.hits]


def test_rrf_rewards_agreement_between_lists_and_weighs_votes() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fused = rrf_fusion({"fts": [a, b], "vector": [b, c]})
    assert list(fused) == [b, a, c]
    assert fused[b] == pytest.approx(1 / 62 + 1 / 61)
    # A weak vote cannot carry its item level with a confident one.
    even = rrf_fusion({"fts": [a], "vector": [c]})
    assert even[a] == even[c]
    weighted = rrf_fusion({"fts": [a], "vector": [c]}, item_weights={"vector": {c: 0.1}})
    assert list(weighted) == [a, c] and weighted[c] == pytest.approx(0.1 / 61)


def test_a_cosine_votes_by_how_far_it_stands_above_the_rest() -> None:
    flat = standout([0.52, 0.51, 0.50, 0.50, 0.49], margin=0.25)
    clear = standout([0.80, 0.51, 0.50, 0.50, 0.49], margin=0.25)
    assert max(flat) < 0.2 and clear[0] == 1.0
    assert standout([], 0.25) == []


def test_stage_switches_parse_and_reject_unknown_names() -> None:
    assert Stages.parse("fts", "none") == Stages("fts", False, False, False, False, False, False, False, False)
    assert Stages.parse("hybrid", "rerank,temporal").names() == ["temporal", "rerank"]
    assert Stages.parse("vector", None, Stages(rerank=True)).rerank
    assert Stages().names() == ["temporal", "neighbours", "speakers", "context"]
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
        for stages in (Stages.parse(mode, "none"), Stages.parse(mode, None)):
            result = await m.retriever.search("where did my sister move", MemoryScope("t", "ana"), 5, NOW, stages)
            assert result.hits[0].turn.message_id == fact.message_id, stages
            assert {(h.turn.tenant_id, h.turn.user_id) for h in result.hits} == {("t", "ana")}


async def test_a_time_in_the_question_prefers_turns_from_that_time() -> None:
    m, conv = Memory(), uuid.uuid4()
    old = await m.say("ana", "I went to the dentist", conv, days_ago=200)
    recent = await m.say("ana", "I went to the dentist again", conv, days_ago=3)
    question = "when did I go to the dentist last week?"
    assert (await m.ids(question, PLAIN))[0] == old.message_id  # fewer extra words: ranks first without time
    timed = await m.retriever.search(question, MemoryScope("t", "ana"), 5, NOW, Stages.parse("hybrid", "temporal"))
    assert timed.timeframe is not None and timed.hits[0].turn.message_id == recent.message_id
    assert "fts@time" in timed.hits[0].ranks


async def test_a_question_about_now_prefers_the_newest_statement() -> None:
    m = Memory()
    await m.say("ana", "I live in Lyon, in a flat by the river", uuid.uuid4(), days_ago=300)
    newer = await m.say("ana", "I live in Porto now, in a flat near the sea", uuid.uuid4(), days_ago=20)
    question = "where do I live these days, which flat?"
    timed = await m.ids(question, Stages.parse("hybrid", "temporal"))
    assert timed[0] == newer.message_id


async def test_neighbours_bring_the_answer_to_a_matching_question_into_the_ranking() -> None:
    m, conv = Memory(), uuid.uuid4()
    await m.say("ana", "hello there", conv)
    question = await m.say("ana", "what is your dog called?", conv, role="assistant")
    answer = await m.say("ana", "Rex, easily the best boy", conv)
    for i in range(8):
        await m.say("ana", f"my dog likes walk number {i}", uuid.uuid4())
    fts = Stages.parse("fts", "none")
    assert answer.message_id not in await m.ids("what is my dog called", fts, k=3)
    result = await m.retriever.search("what is my dog called", MemoryScope("t", "ana"), 3, NOW,
                                      Stages.parse("fts", "neighbours,confidence"))
    ids = [h.turn.message_id for h in result.hits]
    assert ids[:2] == [question.message_id, answer.message_id]
    assert [c.message_id for c in result.hits[0].context][-1] == answer.message_id
    assert result.hits[1].ranks == {}  # it came in beside a hit, no retriever found it


async def test_context_reads_a_turn_with_the_question_it_answers() -> None:
    m, conv = Memory(), uuid.uuid4()
    await m.say("ana", "which dessert from the baking show did you like best?", conv, role="assistant")
    answer = await m.say("ana", "The lemon tart, easily!", conv)
    plain = await m.retriever.search("baking show dessert", MemoryScope("t", "ana"), 5, NOW, Stages.parse("fts", "none"))
    assert answer.message_id not in [h.turn.message_id for h in plain.hits]
    read = await m.ids("baking show dessert", Stages.parse("fts", "context"))
    assert answer.message_id in read


async def test_a_named_speaker_leaves_the_query_and_their_turns_come_first() -> None:
    m, conv = Memory(), uuid.uuid4()
    hers = await m.say("ana", "I went to a support group yesterday, so powerful", conv, speaker="Caroline")
    theirs = await m.say("ana", "Caroline, the support group sounds great!", conv, role="assistant", speaker="Melanie")
    assert (await m.ids("When did Caroline go to the support group?", PLAIN))[0] == theirs.message_id
    result = await m.retriever.search("When did Caroline go to the support group?", MemoryScope("t", "ana"), 5,
                                      NOW, Stages.parse("hybrid", "speakers"))
    assert result.speakers == ["Caroline"]
    assert result.hits[0].turn.message_id == hers.message_id


async def test_without_speaker_names_a_name_used_to_address_someone_is_the_other_side() -> None:
    m, conv = Memory(), uuid.uuid4()
    hers = await m.say("ana", "I went to a support group yesterday, so powerful", conv)
    await m.say("ana", "Hey Caroline! How was the support group?", conv, role="assistant")
    await m.say("ana", "Thanks, Caroline! Group hugs to you.", conv, role="assistant")
    result = await m.retriever.search("When did Caroline go to the support group?", MemoryScope("t", "ana"), 5,
                                      NOW, Stages.parse("hybrid", "speakers"))
    assert result.speakers == ["Caroline"]
    assert result.hits[0].turn.message_id == hers.message_id


def test_names_leave_a_question_and_a_possessive_becomes_mine() -> None:
    assert without_names("What is the name of Andrew's parrot?", ["Andrew"]) == "What is the name of my parrot?"
    assert without_names("When did caroline go there?", ["Caroline Smith"]) == "When did go there?"


async def test_sessions_with_more_hits_lift_their_turns() -> None:
    m, strong, weak = Memory(), uuid.uuid4(), uuid.uuid4()
    await m.say("ana", "kayak trip planning", strong)
    in_strong = await m.say("ana", "the lake trip", strong)
    await m.say("ana", "kayak rental prices", strong)
    in_weak = await m.say("ana", "the lake trip", weak)
    ids = await m.ids("kayak lake trip", Stages.parse("fts", "sessions"), k=5)
    assert ids.index(in_strong.message_id) < ids.index(in_weak.message_id)


async def test_rerank_and_conversation_scope_and_deleted_turns() -> None:
    m, c1, c2 = Memory(), uuid.uuid4(), uuid.uuid4()
    a = await m.say("ana", "my favourite colour is green", c1)
    b = await m.say("ana", "my favourite colour is blue", c2)
    only_c2 = await m.ids("favourite colour", Stages(rerank=True), scope=MemoryScope("t", "ana", c2))
    assert only_c2 == [b.message_id]
    await m.store.conversations.delete_conversation("t", c1)
    assert a.message_id not in await m.ids("favourite colour", Stages())
    assert (await m.retriever.search("   ", MemoryScope("t", "ana"), 5, NOW)).hits == []


class Restating:
    """A chat model that restates every question as one fixed text (or fails)."""

    name = "restating"

    def __init__(self, text: str | None) -> None:
        self.text, self.calls = text, 0

    async def complete(self, messages: Sequence[ChatMessage]) -> Completion:
        self.calls += 1
        if self.text is None:
            raise RetryableError("model down")
        return Completion(self.text, self.name)

    async def stream(self, messages: Sequence[ChatMessage], on_text: Callable[[str], None]) -> Completion:
        done = await self.complete(messages)
        on_text(done.text)
        return done


async def test_rewrite_searches_with_the_models_restatement_and_survives_its_failure() -> None:
    m, conv = Memory(), uuid.uuid4()
    kayak = await m.say("ana", "spent the morning paddling a kayak on the lake", conv)
    await m.say("ana", "the weather is grey today", conv)
    question = "what outdoor activities do I do?"
    assert kayak.message_id not in await m.ids(question, Stages.parse("fts", "none"))
    model = Restating("kayak hiking camping paddling")
    m.retriever.rewriter = model
    result = await m.retriever.search(question, MemoryScope("t", "ana"), 5, NOW, Stages.parse("fts", "rewrite"))
    assert result.hits[0].turn.message_id == kayak.message_id and "fts+rewrite" in result.hits[0].ranks
    assert model.calls == 1
    await m.ids(question, Stages.parse("fts", "none"))
    assert model.calls == 1  # the stage is off: no model call
    m.retriever.rewriter = Restating(None)
    assert await m.ids(question, Stages.parse("fts", "rewrite")) == []  # the model failed: the plain search


async def test_an_offline_notice_is_never_recalled_nor_shown_beside_a_hit() -> None:
    m, conv = Memory(), uuid.uuid4()
    question = await m.say("ana", "My cat is called Miso and she loves tuna", conv)
    notice = ReplyGenerated(tenant_id="t", user_id="ana", conversation_id=conv, message_id=uuid.uuid4(),
                            in_reply_to=question.message_id, model=OFFLINE_MODEL, occurred_at=NOW,
                            text="[offline mode] you said: my cat is called Miso and she loves tuna")
    recorded = (await m.store.turns.record_turn(notice)).turn
    await embed_turns([recorded], FakeEmbedder(), m.index, m.store.embeddings)
    for stages in (PLAIN, Stages.parse("hybrid", "neighbours,context")):
        result = await m.retriever.search("what is my cat called, Miso?", MemoryScope("t", "ana"), 5, NOW, stages)
        assert [h.turn.message_id for h in result.hits] == [question.message_id]
        assert all(n.message_id != notice.message_id for h in result.hits for n in h.context)


def test_a_reaction_beside_a_hit_is_lifted_less_than_an_answer() -> None:
    from convmem.memory.priors import substance

    assert substance("lol") < substance("omg cutest") < substance("The lemon tart, easily!") == 1.0
    assert substance("katia: 😂😂") == 0.0  # the speaker's name is not what the line says


async def test_units_find_the_burst_that_holds_a_fact_spread_over_short_messages() -> None:
    m, conv = Memory(), uuid.uuid4()
    m.retriever.unit_member_weight = 0.2
    burst = [await m.say("ana", text, conv, days_ago=3, speaker="Ana")
             for text in ("Baked banana bread today", "lol", "it came out with walnuts")]
    await m.say("ana", "walnuts are pricey", conv, days_ago=1, speaker="Ana")
    await m.say("ana", "banana for scale", conv, days_ago=2, speaker="Ana")
    question = "bake banana bread, any walnuts?"
    stages = Stages.parse("fts", "units")
    hits = await m.ids(question, stages, k=5)
    # Each line shares a word or two; the burst shares them all, so its lines lead, the one
    # with the most of them first.
    assert hits[:2] == [burst[0].message_id, burst[2].message_id]
    # Alone, "it came out with walnuts" ties with a newer line that shares one word, and loses.
    assert (await m.ids(question, Stages.parse("fts", "none"), k=5))[1] != burst[2].message_id
    # Vectors: a unit point sits beside the turn points and only a unit search sees it.
    [qvec] = await FakeEmbedder().embed([question])
    [unit] = await m.index.search(qvec, MemoryScope("t", "ana"), 5, kind="unit")
    assert unit.payload["members"] == [str(t.message_id) for t in burst]
    assert unit.id not in {h.id for h in await m.index.search(qvec, MemoryScope("t", "ana"), 50)}
    assert (await m.retriever.search(question, MemoryScope("t", "ana"), 5, NOW, Stages.parse("hybrid", "units"))
            ).hits[0].turn.message_id in {t.message_id for t in burst}


async def test_a_deleted_conversation_takes_its_units_points_with_it() -> None:
    m, conv = Memory(), uuid.uuid4()
    for text in ("Baked banana bread today", "lol"):
        await m.say("ana", text, conv)
    assert any(p.payload.get("kind") == "unit" for p in m.index.points.values())
    await m.store.conversations.delete_conversation("t", conv)
    from convmem.memory.units import refresh_units
    await refresh_units(m.store.embeddings, FakeEmbedder(), m.index)
    assert not any(p.payload.get("kind") == "unit" for p in m.index.points.values())
    assert await m.store.embeddings.stale_units(None, 10) == []


def test_feedback_terms_are_what_the_head_adds_to_the_question() -> None:
    from convmem.memory.expansion import feedback_terms, rocchio

    head = ["I love to cook, made a lentil curry", "the lentil curry was spicy lol", "see you tomorrow"]
    assert feedback_terms("What did she cook?", head, 3) == ["lentil", "curry", "love"]
    assert feedback_terms("What did she cook?", [], 3) == []
    moved = rocchio([1.0, 0.0], [[0.0, 2.0]], 1.0)
    assert moved == pytest.approx([2 ** -0.5, 2 ** -0.5])
    assert rocchio([3.0, 4.0], [], 0.5) == [3.0, 4.0]


async def test_expand_finds_what_the_best_hit_leads_to() -> None:
    m, conv = Memory(), uuid.uuid4()
    cooked = await m.say("ana", "I love to cook, made a lentil curry", conv, days_ago=10)
    spicy = await m.say("ana", "the lentil curry was too spicy for Ben", conv, days_ago=9)
    for i in range(6):
        await m.say("ana", f"a walk in the park number {i}", uuid.uuid4(), days_ago=i)
    question = "what did I cook?"
    plain = await m.ids(question, Stages.parse("fts", "none"), k=5)
    assert plain == [cooked.message_id]
    assert await m.ids(question, Stages.parse("fts", "expand"), k=5) == [cooked.message_id, spicy.message_id]


async def test_a_scrub_and_the_sweep_make_a_units_vector_again_from_what_is_left() -> None:
    from convmem.memory.units import refresh_units
    from services.retention.scrubbing import scrub_one
    from services.retention.sweep import RetentionPolicy, purge_expired
    from tests.fakes.ledgers import FakeEmbeddingLedger

    m, conv = Memory(), uuid.uuid4()
    turns = [await m.say("ana", text, conv, days_ago=5) for text in ("call me", "on 020 7946 0958", "after six")]
    [unit] = [p for p in m.index.points.values() if p.payload.get("kind") == "unit"]
    assert await scrub_one(turns[1], "GB", m.store.retention, m.index, FakeEmbedder(), m.store.embeddings)
    assert isinstance(m.store.embeddings, FakeEmbeddingLedger)
    [now] = m.store.embeddings.db.units()
    assert "7946" not in now.text and now.text.startswith("call me\non ")
    assert m.index.points[unit.id].vector == (await FakeEmbedder().embed([now.text]))[0]
    # Retention purges them: the unit's point goes at the sweep's refresh.
    await purge_expired(m.store.retention, m.index, RetentionPolicy(message_days=1), NOW)
    await refresh_units(m.store.embeddings, FakeEmbedder(), m.index)
    assert unit.id not in m.index.points and m.index.points == {}
