"""The context block: one builder for the responder, GET /v1/context and the MCP tool."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts import MessageReceived, TurnRecorded
from convmem.adapters.tokenizer import FileTokenCounter
from convmem.memory.context import ContextBuilder, Recalled, RecallPolicy, fit
from convmem.memory.retrieval import Retriever
from convmem.ports import MemoryScope, Summary
from services.indexer.embedding import embed_turns
from tests.fakes import FakeEmbedder, FakeIndex, FakeTokenCounter, fake_storage

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def turn(seq: int, text: str, role: str = "user", **metadata: Any) -> TurnRecorded:
    return TurnRecorded(tenant_id="t", user_id="ana", conversation_id=uuid.UUID(int=1), message_id=uuid.uuid4(),
                        seq=seq, role=role, channel="http", text=text, occurred_at=T0 + timedelta(minutes=seq),  # type: ignore[arg-type]
                        recorded_at=T0, metadata=metadata)


def test_context_fits_the_budget_keeping_the_question_memory_and_newest_turns() -> None:
    tokens = FakeTokenCounter()
    recent = [turn(i, f"turn number {i} " + "words " * 40) for i in range(80, 100)]
    memory = [Recalled(turn(3, "my sister Lucia lives in Porto"), 0.03, [turn(2, "tell me about your family")])]
    summary = Summary(uuid.UUID(int=1), "2026-01-05: the user planned a trip", 60, "extractive")
    ctx = fit("and what about my sister?", recent, memory, summary, 600, tokens)
    assert ctx.tokens <= 600 and ctx.budget == 600
    assert sum(tokens.count(m.content) + 4 for m in ctx.messages()) == ctx.tokens
    assert ctx.summary == summary and [r.turn.text for r in ctx.recalled] == ["my sister Lucia lives in Porto"]
    assert ctx.recent and ctx.recent[-1].seq == 99 and len(ctx.recent) < len(recent)
    assert [t.seq for t in ctx.recent] == sorted(t.seq for t in ctx.recent)
    system = ctx.messages()[0].content
    assert "Lucia" in system and "tell me about your family" in system and "planned a trip" in system
    assert ctx.messages()[-1].content == "and what about my sister?"
    assert ctx.sources == [memory[0].turn.message_id]


def test_block_lines_carry_dates_and_speakers() -> None:
    named = Recalled(turn(3, "I went to the support group yesterday", speaker="Caroline"), 1.0)
    ctx = fit("when?", [turn(9, "and you?", "assistant")], [named], None, 1000, FakeTokenCounter())
    block = ctx.block()
    assert "[1] 2026-01-05 Caroline: I went to the support group yesterday" in block
    assert "Recent turns of this conversation:\n2026-01-05 you: and you?" in block


def test_tokens_are_counted_by_a_real_tokenizer_even_for_scripts_without_spaces() -> None:
    counter = FileTokenCounter()
    english = "Where do I live now? My sister moved to Porto last week."
    assert 12 <= counter.count(english) <= 18
    # Characters / 4 would say 9 or 10; every character is at least a token in real tokenizers.
    assert counter.count("我的妹妹上周搬到了波尔图\uff0c她很喜欢那里的海\u3002") >= 22
    assert counter.count("わたしのいもうとはせんしゅうポルトにひっこしました") >= 25
    assert counter.count("") == 0


async def test_the_builder_recalls_beyond_the_window_and_serves_the_conversation_as_it_stands() -> None:
    store, index = fake_storage(), FakeIndex()
    builder = ContextBuilder(store.memory, Retriever(store.memory, index, FakeEmbedder()), FakeTokenCounter(),
                             RecallPolicy(recent_turns=2))
    old, conv = uuid.uuid4(), uuid.uuid4()

    async def say(text: str, conversation: uuid.UUID, minute: int) -> TurnRecorded:
        event = MessageReceived(tenant_id="t", user_id="ana", conversation_id=conversation, message_id=uuid.uuid4(),
                                text=text, occurred_at=T0 + timedelta(minutes=minute))
        recorded = (await store.turns.record_turn(event)).turn
        await embed_turns([recorded], FakeEmbedder(), index, store.embeddings)
        return recorded

    fact = await say("my cat is called Miso", old, 1)
    await say("hello again", conv, 10)
    await say("how are you", conv, 11)
    last = await say("fine thanks", conv, 12)
    ctx = await builder.build(MemoryScope("t", "ana", conv), "what is my cat called", T0 + timedelta(hours=1))
    assert [t.text for t in ctx.recent] == ["how are you", "fine thanks"]
    assert ctx.sources == [fact.message_id]
    answering = await builder.for_turn(last)  # the responder: the window ends before the turn
    assert [t.text for t in answering.recent] == ["hello again", "how are you"]
    small = await builder.build(MemoryScope("t", "ana", conv), "what is my cat called", T0, budget=120)
    assert small.tokens <= 120
    assert (await builder.build(MemoryScope("t", "ana"), "cat", T0)).recent == []  # no conversation, no window
