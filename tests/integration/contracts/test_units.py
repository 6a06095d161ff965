"""Units (bursts): consecutive turns of one speaker a short gap apart are one searchable text
(migration 010), kept in step with their turns: grown as the burst grows, rewritten when a
member is scrubbed or deleted, and stale for the indexer after every change. EmbeddingLedger
and MemoryReader, against the fake and Postgres."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from convmem.ports import MemoryScope, Storage
from tests.integration.support import answer, said, unique

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


async def test_a_burst_is_one_unit_that_grows_and_goes_stale_with_each_turn(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    first = said(tenant, ana, conv, "Baked banana bread today", when=T0)
    lol = said(tenant, ana, conv, "lol", when=T0 + timedelta(seconds=4))
    for event in (first, lol, lol):  # a redelivered turn grows nothing
        await storage.turns.record_turn(event)
    [unit] = await storage.embeddings.stale_units([conv], 10)
    assert unit.members == (first.message_id, lol.message_id)
    assert unit.text == "Baked banana bread today\nlol" and unit.occurred_at == T0
    await storage.embeddings.units_embedded([unit])
    assert await storage.embeddings.stale_units([conv], 10) == []

    good = said(tenant, ana, conv, "it came out so good", when=T0 + timedelta(seconds=9))
    await storage.turns.record_turn(good)
    [grown] = await storage.embeddings.stale_units([conv], 10)
    assert grown.unit_id == unit.unit_id and grown.members[-1] == good.message_id
    assert grown.text.endswith("\nit came out so good")
    await storage.embeddings.units_embedded([unit])  # an older version marks nothing
    assert [u.unit_id for u in await storage.embeddings.stale_units([conv], 10)] == [unit.unit_id]


async def test_another_speaker_or_a_long_pause_starts_a_new_unit(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    q = said(tenant, ana, conv, "what did you bake?", when=T0)
    a1 = answer(q, "banana bread", when=T0 + timedelta(seconds=20))
    a2 = answer(q, "with walnuts", when=T0 + timedelta(seconds=25))
    later = answer(q, "and a lentil curry", when=T0 + timedelta(hours=2))
    for event in (q, a1, a2, later):
        await storage.turns.record_turn(event)
    units = await storage.embeddings.stale_units([conv], 10)
    assert [(u.members, u.text) for u in units] == [((a1.message_id, a2.message_id), "banana bread\nwith walnuts")]


async def test_a_scrubbed_or_deleted_member_rewrites_its_unit(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    turns = [said(tenant, ana, conv, text, when=T0 + timedelta(seconds=i))
             for i, text in enumerate(("call me", "020 7946 0958", "after six"))]
    for event in turns:
        await storage.turns.record_turn(event)
    await storage.embeddings.units_embedded(await storage.embeddings.stale_units([conv], 10))

    await storage.retention.record_scrub(turns[1].message_id, "<PHONE>", {"PHONE": 1})
    [scrubbed] = await storage.embeddings.stale_units([conv], 10)
    assert scrubbed.text == "call me\n<PHONE>\nafter six"
    await storage.embeddings.units_embedded([scrubbed])

    await storage.conversations.delete_conversation(tenant, conv)
    [emptied] = await storage.embeddings.stale_units([conv], 10)
    assert emptied.unit_id == scrubbed.unit_id and emptied.text == ""  # its point must go
    await storage.embeddings.units_embedded([emptied])
    assert await storage.embeddings.stale_units([conv], 10) == []  # and the unit is forgotten


async def test_full_text_finds_a_burst_by_words_spread_over_its_turns(storage: Storage) -> None:
    tenant, ana, ben, conv = unique("t"), unique("ana"), unique("ben"), uuid.uuid4()
    burst = [said(tenant, ana, conv, text, when=T0 + timedelta(seconds=i))
             for i, text in enumerate(("Baked banana bread today", "lol", "walnuts inside"))]
    alone = said(tenant, ana, conv, "banana smoothie", when=T0 + timedelta(hours=3))
    for event in (*burst, alone, said(tenant, ben, uuid.uuid4(), "banana bread with walnuts", when=T0)):
        await storage.turns.record_turn(event)
    found = await storage.memory.search_units(MemoryScope(tenant, ana), "banana bread walnuts", 10)
    assert [members for members, _ in found] == [[t.message_id for t in burst]]  # not ben's, not a lone turn
    assert 0.99 < found[0][1] <= 1.0
    assert await storage.memory.search_units(MemoryScope(tenant, ana, since=T0 + timedelta(hours=1)),
                                             "banana bread walnuts", 10) == []
