from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from composition.policies import intent_rules
from contracts import MessageReceived, TurnRecorded
from convmem.memory.context import RecallPolicy
from convmem.ports import ConversationInfo, MemoryScope, Summary
from convmem.settings import ConfigError, IndexerSettings, load
from services.indexer.enrichment import IntentRules, detect_language, enrich, load_rules
from services.responder.upkeep import extractive_summary, name_conversation, refresh_summary
from tests.fakes import FakeChatModel, FakeDb, fake_storage

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def turn(seq: int, text: str, role: str = "user", conv: uuid.UUID | None = None) -> TurnRecorded:
    return TurnRecorded(tenant_id="t", user_id="ana", conversation_id=conv or uuid.UUID(int=1),
                        message_id=uuid.uuid4(), seq=seq, role=role, channel="http", text=text,  # type: ignore[arg-type]
                        occurred_at=T0 + timedelta(minutes=seq), recorded_at=T0)


@pytest.mark.parametrize(("text", "language"), [
    ("I moved to Lisbon last spring with my family", "en"),
    ("Quiero reservar una mesa para dos personas", "es"),
    ("Ich habe morgen einen Termin beim Arzt", "de"),
    ("Je voudrais annuler ma commande, merci", "fr"),
    ("ok", None),
    ("👍👍", None),
])
def test_language_is_detected_or_left_unknown_for_short_messages(text: str, language: str | None) -> None:
    found = detect_language(text)
    assert (found[0] if found else None) == language


def test_intent_rules_pick_the_first_specific_intent_with_a_confidence() -> None:
    rules = load_rules("default")
    assert rules is not None
    booked = enrich("Can I book a table for Friday?", rules)
    assert booked.intent == "booking" and booked.intent_confidence is not None
    assert 0 < booked.intent_confidence < 1
    assert enrich("What time do you open?", rules).intent == "question"
    assert enrich("My sister lives in Berlin", rules).intent is None
    assert enrich("Can I book a table?", None).intent is None  # rules switched off


def test_intent_rules_from_a_file_are_checked_at_start_up(tmp_path: Path) -> None:
    good = tmp_path / "rules.json"
    good.write_text(json.dumps({"pizza": ["\\bpizza\\b"]}))
    assert IntentRules.from_mapping({"pizza": ["pizza"]}).classify("one pizza please") == ("pizza", 0.6)
    assert load(IndexerSettings, kafka_bootstrap="k:1", database_url="postgresql://x/y",
                intent_rules=str(good)).intent_rules == str(good)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pizza": ["(unclosed"]}))
    with pytest.raises(ConfigError, match="CONVMEM_INTENT_RULES"):
        intent_rules(load(IndexerSettings, kafka_bootstrap="k:1", database_url="postgresql://x/y",
                          intent_rules=str(bad)))


def test_extractive_summary_keeps_dated_facts_and_drops_small_talk() -> None:
    turns = [turn(1, "hi"), turn(2, "ok thanks", "assistant"), turn(3, "My brother Tom starts at Siemens on 3 March."),
             turn(4, "lol"), turn(5, "cool"), turn(6, "nice")]
    text = extractive_summary("2026-01-01: earlier fact", turns, max_chars=500)
    assert text.splitlines() == ["2026-01-01: earlier fact", "2026-01-05: My brother Tom starts at Siemens on 3 March."]
    assert len(extractive_summary("x" * 300, turns * 20, max_chars=200)) <= 200


async def test_summaries_refresh_as_turns_leave_the_window_and_titles_come_from_the_model() -> None:
    db, conv = FakeDb(), uuid.UUID(int=1)
    store = fake_storage(db)
    policy = RecallPolicy(recent_turns=4, summary_every=5)
    for i in range(1, 9):
        db.turns[uuid.uuid4()] = turn(i, f"My note number {i} is about Porto.", conv=conv)
    db.owners[conv] = ("t", "ana")
    db.conversations[conv] = ConversationInfo(conv, "t", "ana", "http", None, "first_message", "general", "active",
                                              8, T0, T0, T0, {})

    async def refresh(current: TurnRecorded, model: FakeChatModel | None) -> Summary | None:
        return await refresh_summary(current, store.memory, store.conversations, model, policy)

    assert await refresh(turn(8, "x", conv=conv), None) is None  # only 4 left the window
    db.turns[uuid.uuid4()] = turn(9, "My note number 9 is about Porto.", conv=conv)
    made = await refresh(turn(10, "x", conv=conv), None)
    assert made is not None and made.through_seq == 6 and made.method == "extractive"
    assert await store.memory.summary(conv) == made
    model = FakeChatModel()
    again = await refresh(turn(16, "x", conv=conv), model)
    assert again is not None and again.method == "model" and "Summary so far" in model.calls[0][1].content
    assert (await store.memory.summary(conv)) == again
    await store.conversations.save_summary(MemoryScope("t", "ana"), made)  # one covering fewer turns does not replace it
    assert (await store.memory.summary(conv)) == again

    await store.turns.record_turn(MessageReceived(
        tenant_id="t", user_id="ana", conversation_id=uuid.UUID(int=2), message_id=uuid.uuid4(),
        text="plan my trip to Porto", occurred_at=T0))
    first = db.turns[next(reversed(db.turns))]
    assert await name_conversation(first, store.conversations, None) is None
    assert await name_conversation(first.model_copy(update={"reply_expected": False}), store.conversations,
                                   model) is None
    assert await name_conversation(first, store.conversations, model) == "answer to: plan my trip to Porto"
    assert db.conversations[uuid.UUID(int=2)].title_source == "model"
