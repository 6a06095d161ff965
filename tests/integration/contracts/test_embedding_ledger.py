"""EmbeddingLedger: what to embed is a turn's text as it is now; deleted turns and offline-mode
notices are not."""

from __future__ import annotations

import uuid

from contracts import OFFLINE_MODEL
from convmem.ports import MemoryScope, Storage
from tests.integration.support import answer, said, unique


async def test_texts_to_embed_are_the_current_text_of_live_turns(storage: Storage) -> None:
    tenant, ana, c1, c2 = unique("t"), unique("ana"), uuid.uuid4(), uuid.uuid4()
    a, b, c = said(tenant, ana, c1, "call 020 7946 0958"), said(tenant, ana, c1, "thanks"), said(tenant, ana, c2, "bye")
    for event in (a, b, c):
        await storage.turns.record_turn(event)
    ids = [a.message_id, b.message_id, c.message_id]
    assert await storage.embeddings.texts_to_embed([*ids, uuid.uuid4()]) == {
        a.message_id: "call 020 7946 0958", b.message_id: "thanks", c.message_id: "bye"}

    await storage.retention.record_scrub(a.message_id, "call <PHONE>", {"PHONE": 1})
    await storage.conversations.delete_conversation(tenant, c2)
    assert await storage.embeddings.texts_to_embed(ids) == {a.message_id: "call <PHONE>", b.message_id: "thanks"}
    assert await storage.embeddings.texts_to_embed([]) == {}


async def test_marking_turns_embedded_is_idempotent(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    a = said(tenant, ana, conv, "remember this")
    await storage.turns.record_turn(a)
    await storage.embeddings.mark_embedded([a.message_id])
    await storage.embeddings.mark_embedded([a.message_id, uuid.uuid4()])  # again, and an unknown id
    assert await storage.embeddings.texts_to_embed([a.message_id]) == {a.message_id: "remember this"}


async def test_an_offline_notice_is_not_memory_it_is_neither_embedded_nor_recalled(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    question = said(tenant, ana, conv, "Where is the Porto ferry terminal?")
    notice = answer(question, "[offline mode] You said: Where is the Porto ferry terminal?").model_copy(
        update={"model": OFFLINE_MODEL})
    spoken = answer(question, "The Porto ferry terminal is by the river.")
    for event in (question, notice, spoken):
        await storage.turns.record_turn(event)
    texts = await storage.embeddings.texts_to_embed([question.message_id, notice.message_id, spoken.message_id])
    assert texts[notice.message_id] == "" and texts[spoken.message_id].startswith("The Porto ferry")
    hits = {i for i, _ in await storage.memory.search_text(MemoryScope(tenant, ana), "Porto ferry terminal", 10)}
    assert hits == {question.message_id, spoken.message_id}
