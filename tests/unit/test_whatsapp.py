from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from contracts import identity
from services.ingest.whatsapp import WebhookError, parse_webhook, signature_valid
from tests import whatsapp_fixtures as wf
from tests.whatsapp_fixtures import ECHO, FIXTURES, STATUSES, Fixture, change


def envelope(value: dict[str, Any]) -> dict[str, Any]:
    base = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "PN1", "display_phone_number": "1555"}}
    return {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages",
                                                                                       "value": base | value}]}]}


def msg(kind: str, body: dict[str, Any], **extra: object) -> dict[str, Any]:
    return {"from": "351911", "id": f"wamid.{kind}", "timestamp": "1763900000", "type": kind, kind: body, **extra}


def test_signature_is_checked_on_raw_bytes() -> None:
    raw = b'{"a": 1}'
    good = "sha256=" + hmac.new(b"secret", raw, hashlib.sha256).hexdigest()
    assert signature_valid(b"secret", raw, good)
    assert not signature_valid(b"secret", raw + b" ", good)
    assert not signature_valid(b"other", raw, good)
    assert not signature_valid(b"secret", raw, None)
    assert not signature_valid(b"secret", raw, good.removeprefix("sha256="))


def test_every_message_type_maps_to_an_inbound_event() -> None:
    payload = envelope({"contacts": [{"wa_id": "351911", "profile": {"name": "Ana"}}], "messages": [
        msg("text", {"body": "hello"}),
        msg("image", {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "my receipt"}),
        msg("location", {"latitude": 38.7, "longitude": -9.1, "name": "Office", "address": "Rua Augusta 10"}),
        msg("interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}),
        msg("button", {"text": "Track order", "payload": "TRACK"}),
        msg("reaction", {"message_id": "wamid.text", "emoji": "👍"}),
        {"from": "351911", "id": "wamid.c", "timestamp": "1763900000", "type": "contacts",
         "contacts": [{"name": {"formatted_name": "Rui"}}]},
        {"from": "351911", "id": "wamid.x", "timestamp": "1763900000", "type": "ephemeral"},
    ]})
    found = parse_webhook(payload, {"PN1": "acme"})
    messages = found.messages
    assert found.statuses == []
    by_type = {m.content_type: m for m in messages}
    assert by_type["text"].text == "hello" and by_type["text"].tenant_id == "acme"
    assert by_type["image"].metadata["media"] == {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "my receipt"}
    assert found.unknown[0].kind == "message_type" and found.unknown[0].value == "ephemeral"
    assert "my receipt" in by_type["image"].text
    assert "Rua Augusta 10" in by_type["location"].text
    assert by_type["interactive"].text == "Yes please"
    assert by_type["button"].text == "Track order"
    assert by_type["reaction"].reply_expected is False
    assert "Rui" in by_type["contacts"].text
    assert by_type["unsupported"].reply_expected is False
    m = by_type["text"]
    assert m.external_id == "wamid.text" and m.message_id == identity.message_id_for_external("acme", "351911", "wamid.text")
    assert m.conversation_id == identity.whatsapp_conversation_id("acme", "PN1", "351911")


def test_business_scoped_user_id_is_preferred_over_phone() -> None:
    payload = envelope({"contacts": [{"wa_id": "351911", "user_id": "PT.123"}], "messages": [msg("text", {"body": "x"})]})
    [m] = parse_webhook(payload, {}).messages
    assert m.user_id == "PT.123" and m.tenant_id == "default"


def test_status_callbacks_become_delivery_events_in_any_order() -> None:
    payload = envelope({"statuses": [
        {"id": "wamid.out", "status": "read", "timestamp": "1763900100", "recipient_id": "351911"},
        {"id": "wamid.out", "status": "delivered", "timestamp": "1763900050", "recipient_id": "351911"},
    ]})
    statuses = parse_webhook(payload, {}).statuses
    assert [s.status for s in statuses] == ["read", "delivered"]
    assert statuses[0].conversation_id == identity.whatsapp_conversation_id("default", "PN1", "351911")


@pytest.mark.parametrize("payload", [
    {"object": "page"}, [], envelope({"messages": [{"id": "w", "type": "text"}]}),
    envelope({"messages": [msg("text", {"body": "x"}, timestamp="soon")]}),
])
def test_unreadable_payloads_are_rejected_with_a_reason(payload: object) -> None:
    with pytest.raises(WebhookError):
        parse_webhook(payload, {})


# ------------------------------------------------ the fixture suite (tests/whatsapp_fixtures.py)

ALL = FIXTURES + STATUSES + [ECHO]


@pytest.mark.parametrize("fx", ALL, ids=[f.name for f in ALL])
def test_each_fixture_is_read_as_the_table_says(fx: Fixture) -> None:
    found = parse_webhook(wf.envelope(change(fx.value)), {wf.PHONE_ID: "fx"})
    turns = [m for m in found.messages]
    if fx.content_type is None:
        assert turns == []
    else:
        [turn] = turns
        assert turn.content_type == fx.content_type and turn.tenant_id == "fx"
        assert turn.reply_expected is fx.reply_expected
        for words in fx.searchable:
            assert words in turn.text, (fx.name, turn.text)
        for path, expected in fx.metadata.items():
            assert wf.dig(turn.metadata, path) == expected, (fx.name, path)
    assert len(found.statuses) == fx.statuses
    assert len(found.amendments) == fx.amendments
    assert len(found.number_changes) == fx.number_changes
    assert [u.kind for u in found.unknown] == ([fx.unknown] if fx.unknown else [])


# What Meta may send that we do not know, or that is not a turn: each mixed with a text.
MIXED = [f for f in ALL if f.unknown or f.content_type is None or f.name == "status played"]


@pytest.mark.parametrize("fx", MIXED, ids=[f.name for f in MIXED])
def test_a_text_beside_each_unknown_or_non_turn_part_is_still_recorded(fx: Fixture) -> None:
    text = {"contacts": wf.contacts(), "messages": [wf.message("text", {"body": "still here"}, wamid="wamid.fx-mix")]}
    found = parse_webhook(wf.envelope(change(fx.value), change(text)), {})
    assert [m.text for m in found.messages if m.external_id == "wamid.fx-mix"] == ["still here"]


@pytest.mark.parametrize("other", wf.CHANGES, ids=[c.name for c in wf.CHANGES])
def test_other_change_fields_are_skipped_and_reported_beside_a_recorded_text(other: wf.OtherChange) -> None:
    text = change({"contacts": wf.contacts(), "messages": [wf.message("text", {"body": "still here"})]})
    found = parse_webhook(wf.envelope(other.change, text), {})
    assert [m.text for m in found.messages] == ["still here"]
    assert found.statuses == []  # a call's RINGING is not a message's delivery state
    assert [(u.kind, u.value) for u in found.unknown] == [("change_field", other.change["field"])]


def test_edits_and_revokes_name_the_original_message() -> None:
    edit, revoke = (next(f for f in FIXTURES if f.name == n) for n in ("edit", "revoke"))
    [e] = parse_webhook(wf.envelope(change(edit.value)), {}).amendments
    [r] = parse_webhook(wf.envelope(change(revoke.value)), {}).amendments
    original = identity.message_id_for_external("default", wf.USER, "wamid.fx-text")
    assert (e.kind, e.text, e.message_id, e.target_external_id) == ("edited", "red kettle", original, "wamid.fx-text")
    assert (r.kind, r.text, r.message_id) == ("revoked", "", original)
    assert e.conversation_id == identity.whatsapp_conversation_id("default", wf.PHONE_ID, wf.USER)
    assert e.amendment_id == identity.amendment_id_for("default", wf.USER, "wamid.fx-edit") != r.amendment_id
    caption = wf.message("edit", {"original_message_id": "wamid.fx-image", "message": {
        "type": "image", "image": {"caption": "new caption"}}})
    [c] = parse_webhook(wf.envelope(change({"messages": [caption]})), {}).amendments
    assert c.text == "new caption"


def test_an_edit_without_its_original_is_reported_not_refused() -> None:
    found = parse_webhook(wf.envelope(change({"messages": [wf.message("edit", {"message": {}})]})), {})
    assert found.amendments == [] and [u.kind for u in found.unknown] == ["amendment"]


def test_a_changed_number_keeps_the_user_through_aliases() -> None:
    system = next(f for f in FIXTURES if f.name.startswith("system"))
    [change_] = parse_webhook(wf.envelope(change(system.value)), {}).number_changes
    assert (change_.user_id, change_.new_ids) == (wf.USER, ("447700900999",))
    later = {"contacts": wf.contacts(wa_id="447700900999"),
             "messages": [wf.message("text", {"body": "new phone"}, sender="447700900999")]}
    plain = parse_webhook(wf.envelope(change(later)), {})
    assert plain.senders == {("default", "447700900999")}
    [m] = parse_webhook(wf.envelope(change(later)), {}, aliases={("default", "447700900999"): wf.USER}).messages
    assert m.user_id == wf.USER and m.metadata["whatsapp"]["wa_id"] == "447700900999"  # replies go to the new number
    assert m.conversation_id == identity.whatsapp_conversation_id("default", wf.PHONE_ID, wf.USER)


def test_echoes_are_assistant_turns_of_the_recipient() -> None:
    [m] = parse_webhook(wf.envelope(change(ECHO.value, "smb_message_echoes")), {}).messages
    assert (m.role, m.user_id, m.reply_expected) == ("assistant", wf.USER, False)
    assert m.conversation_id == identity.whatsapp_conversation_id("default", wf.PHONE_ID, wf.USER)


def test_unstorable_raw_parts_are_left_out_not_refused() -> None:
    odd = wf.message("hologram", {"label": "a\x00b", "big": "x" * 20_000})
    [m] = parse_webhook(wf.envelope(change({"messages": [odd]})), {}).messages
    assert m.metadata["raw"] is None and m.content_type == "unsupported"
