"""TurnLedger.amend_turn and UserAliases: edits and revokes reach the stored turn whatever
order they arrive in, once each; a user's other ids name them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from contracts import MessageAmended, MessageReceived
from convmem.ports import MemoryScope, Storage
from tests.integration.support import unique

# Recent, so that no retention sweep running beside the tests takes these turns meanwhile.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
LONG_AGO = datetime(1999, 3, 1, tzinfo=UTC)  # before any other test's cutoff


def whatsapp(tenant: str, user: str, conv: uuid.UUID, text: str, content_type: str = "text",
             at: datetime = T0) -> MessageReceived:
    wamid = unique("wamid")
    extra = {"media": {"id": "m1", "caption": text}} if content_type != "text" else {}
    return MessageReceived(tenant_id=tenant, user_id=user, conversation_id=conv, message_id=uuid.uuid4(),
                           external_id=wamid, channel="whatsapp", content_type=content_type,  # type: ignore[arg-type]
                           text=f"[{content_type}] {text}" if content_type != "text" else text, occurred_at=at,
                           metadata=extra)


def amendment(of: MessageReceived, kind: str, text: str = "", after_s: int = 60) -> MessageAmended:
    assert of.external_id is not None
    return MessageAmended(tenant_id=of.tenant_id, user_id=of.user_id, conversation_id=of.conversation_id,
                          message_id=of.message_id, amendment_id=uuid.uuid4(), kind=kind,  # type: ignore[arg-type]
                          external_id=unique("wamid"), target_external_id=of.external_id, text=text,
                          occurred_at=of.occurred_at + timedelta(seconds=after_s))


async def visible(storage: Storage, m: MessageReceived) -> list[str]:
    scope = MemoryScope(m.tenant_id, m.user_id)
    return [t.text for t in await storage.memory.turns_by_ids(scope, [m.message_id])]


async def test_an_edit_replaces_the_text_and_the_latest_edit_wins(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    m = whatsapp(tenant, ana, conv, "the blue kettle")
    await storage.turns.record_turn(m)
    later, earlier = amendment(m, "edited", "the red kettle", 120), amendment(m, "edited", "the green kettle", 60)
    first = await storage.turns.amend_turn(later)
    assert first.turn is not None and first.turn.text == "the red kettle" and not first.revoked
    assert first.turn.metadata["edited"]["external_id"] == later.external_id
    assert (await storage.turns.amend_turn(earlier)).turn is not None  # older, arriving late: kept, not applied
    again = await storage.turns.amend_turn(later)  # a redelivery
    assert again.turn is not None and again.turn.text == "the red kettle"
    assert again.turn.metadata["edited"]["count"] == 1
    assert await visible(storage, m) == ["the red kettle"]
    assert await storage.memory.search_text(MemoryScope(tenant, ana), "blue", 10) == []
    assert [i for i, _ in await storage.memory.search_text(MemoryScope(tenant, ana), "red kettle", 10)] \
        == [m.message_id]


async def test_a_caption_edit_keeps_the_media_marker(storage: Storage) -> None:
    m = whatsapp(unique("t"), unique("ana"), uuid.uuid4(), "old caption", "image")
    await storage.turns.record_turn(m)
    out = await storage.turns.amend_turn(amendment(m, "edited", "new caption"))
    assert out.turn is not None and out.turn.text == "[image] new caption"
    assert out.turn.metadata["media"]["caption"] == "new caption"


async def test_a_revoke_takes_the_turn_out_of_history_and_search(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    m, kept = whatsapp(tenant, ana, conv, "my card number is secret"), whatsapp(tenant, ana, conv, "hello there")
    await storage.turns.record_turn(m)
    await storage.turns.record_turn(kept)
    out = await storage.turns.amend_turn(amendment(m, "revoked"))
    assert out.revoked and out.turn is not None
    assert await visible(storage, m) == []
    assert await storage.embeddings.texts_to_embed([m.message_id]) == {}
    assert await storage.memory.search_text(MemoryScope(tenant, ana), "secret", 10) == []
    scope = MemoryScope(tenant, ana, conv)
    assert [t.text for t in await storage.memory.conversation_turns(scope, 0, 10) or []] == ["hello there"]
    edit_after = await storage.turns.amend_turn(amendment(m, "edited", "resurrected", 300))
    assert edit_after.revoked and await visible(storage, m) == []


async def test_amendments_that_arrive_first_are_applied_when_the_message_is_recorded(storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    edited, revoked = whatsapp(tenant, ana, conv, "typo here"), whatsapp(tenant, ana, conv, "oops wrong chat")
    assert (await storage.turns.amend_turn(amendment(edited, "edited", "no typo here"))).turn is None
    assert (await storage.turns.amend_turn(amendment(revoked, "revoked"))).turn is None
    e = await storage.turns.record_turn(edited)
    assert (e.created, e.published, e.turn.text) == (True, False, "no typo here")
    r = await storage.turns.record_turn(revoked)
    assert (r.created, r.published) == (True, True)  # nothing to announce
    assert await visible(storage, revoked) == [] and await visible(storage, edited) == ["no typo here"]


async def test_another_users_amendment_does_not_touch_the_turn(storage: Storage) -> None:
    tenant, conv = unique("t"), uuid.uuid4()
    m = whatsapp(tenant, unique("ana"), conv, "mine")
    await storage.turns.record_turn(m)
    forged = amendment(m, "revoked").model_copy(update={"user_id": unique("eve")})
    assert (await storage.turns.amend_turn(forged)).turn is None
    assert await visible(storage, m) == ["mine"]


async def test_aliases_name_the_first_id_through_every_change(storage: Storage) -> None:
    tenant, old, new, newer = unique("t"), unique("447"), unique("448"), unique("449")
    assert await storage.aliases.resolve_aliases(tenant, [old, new]) == {}
    assert await storage.aliases.add_aliases(tenant, old, [new], T0) == old
    assert await storage.aliases.add_aliases(tenant, new, [newer, old], T0 + timedelta(days=1)) == old
    assert await storage.aliases.resolve_aliases(tenant, [old, new, newer]) == {new: old, newer: old}
    assert await storage.aliases.resolve_aliases(unique("t"), [new]) == {}


async def test_retention_takes_amendments_with_their_message_and_waiting_ones_past_the_cutoff(
        storage: Storage) -> None:
    tenant, ana, conv = unique("t"), unique("ana"), uuid.uuid4()
    recorded = whatsapp(tenant, ana, conv, "old news", at=LONG_AGO)
    never = whatsapp(tenant, ana, conv, "never arrives", at=LONG_AGO)
    await storage.turns.record_turn(recorded)
    await storage.turns.amend_turn(amendment(recorded, "edited", "older news"))
    await storage.turns.amend_turn(amendment(never, "revoked"))
    await storage.retention.purge_expired(LONG_AGO + timedelta(days=1), 10_000)
    # Nothing of the purged turn is left to apply: recording the same message again starts fresh.
    again = await storage.turns.record_turn(recorded)
    assert again.created and again.turn.text == "old news"
    assert not (await storage.turns.record_turn(never)).published  # its revoke was purged, not applied
