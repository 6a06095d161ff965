"""Names as people write them: a question's "Katya", "Mohammed" or "Sasha" finds the speaker
a chat shows as "katia", "muhamad" or "aleksandr"."""

from __future__ import annotations

import uuid

import pytest

from convmem.memory.retrieval import Stages
from convmem.memory.speakers import likeness, match_people, named_speakers
from convmem.ports import MemoryScope
from tests.unit.test_retrieval import NOW, Memory


@pytest.mark.parametrize(("word", "name"), [
    ("Katia", "katia"), ("Katya", "katia"), ("Kat", "katia"), ("Mohammed", "muhamad"), ("Alexander", "aleksandr"),
    ("Kathryn", "catherine"), ("Jacob", "jakub"), ("Layla", "leila ✨"), ("Jurgen", "jürgen"), ("Sophia", "sofía 🌻"),
    ("Malgorzata", "Małgorzata"), ("Kiara", "chiara"), ("Thuy", "thuy nguyen"), ("Dmitry", "dmitri"),
])
def test_a_name_matches_across_case_accents_spelling_and_sound(word: str, name: str) -> None:
    assert likeness(word, name, loose=True) > 0


@pytest.mark.parametrize(("word", "name"), [("Dana", "dima"), ("Lisbon", "leila"), ("Monet", "mo"), ("Tom", "thuy")])
def test_other_names_and_words_do_not_match(word: str, name: str) -> None:
    assert likeness(word, name, loose=True) == 0


def test_lowercase_words_match_only_exactly_and_each_word_takes_its_best_person() -> None:
    assert likeness("kat", "katia", loose=False) == 0  # "kat" in lowercase may be any word
    assert likeness("katia", "katia", loose=False) == 1.0
    assert match_people(["When", "did", "Katya", "cook"], ["Katya"], ["katia", "catherine"]) == {"Katya": "katia"}


async def test_a_chat_line_names_its_speaker_and_a_misspelt_name_finds_them() -> None:
    m, conv = Memory(), uuid.uuid4()
    hers = await m.say("ana", "katia: made banana bread tonight", conv)
    await m.say("ana", "zoë: kat banana bread?? send pics", conv)
    await m.say("ana", "zoë: my sister made banana bread too", conv)
    result = await m.retriever.search("When did Katya make banana bread?", MemoryScope("t", "ana"), 5, NOW,
                                      Stages.parse("hybrid", "speakers"))
    assert result.speakers == ["katia"]
    assert result.hits[0].turn.message_id == hers.message_id


async def test_a_nickname_the_friend_calls_someone_names_them() -> None:
    m, conv = Memory(), uuid.uuid4()
    for text in ("sasha u up?", "morning sasha", "happy birthday sasha!!", "lunch w dana today"):
        await m.say("ana", text, conv, speaker="zoë")
    for text in ("got the tattoo today", "dana says hi"):
        await m.say("ana", text, conv, speaker="aleksandr")
    found = await named_speakers(m.store.memory, MemoryScope("t", "ana"), "When did Sasha get the tattoo?")
    assert [(s.name, s.called) for s in found] == [("aleksandr", "Sasha")]
    # A third person mentioned in passing is nobody's nickname.
    assert await named_speakers(m.store.memory, MemoryScope("t", "ana"), "When did Dana visit?") == []
