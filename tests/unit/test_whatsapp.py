from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from contracts import identity
from services.ingest.whatsapp import WebhookError, parse_webhook, signature_valid


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
    messages, statuses = parse_webhook(payload, {"PN1": "acme"})
    assert statuses == []
    by_type = {m.content_type: m for m in messages}
    assert by_type["text"].text == "hello" and by_type["text"].tenant_id == "acme"
    assert by_type["image"].metadata["media"] == {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "my receipt"}
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
    [m], _ = parse_webhook(payload, {})
    assert m.user_id == "PT.123" and m.tenant_id == "default"


def test_status_callbacks_become_delivery_events_in_any_order() -> None:
    payload = envelope({"statuses": [
        {"id": "wamid.out", "status": "read", "timestamp": "1763900100", "recipient_id": "351911"},
        {"id": "wamid.out", "status": "delivered", "timestamp": "1763900050", "recipient_id": "351911"},
    ]})
    _, statuses = parse_webhook(payload, {})
    assert [s.status for s in statuses] == ["read", "delivered"]
    assert statuses[0].conversation_id == identity.whatsapp_conversation_id("default", "PN1", "351911")


@pytest.mark.parametrize("payload", [
    {"object": "page"}, [], envelope({"messages": [{"id": "w", "type": "text"}]}),
    envelope({"messages": [msg("text", {"body": "x"}, timestamp="soon")]}),
])
def test_unreadable_payloads_are_rejected_with_a_reason(payload: object) -> None:
    with pytest.raises(WebhookError):
        parse_webhook(payload, {})
