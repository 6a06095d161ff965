"""WhatsApp Cloud API webhook fixtures, written for convmem from Meta's webhook reference
(messages, statuses, message echoes and other change fields). One per message type, status
and change kind; each says what convmem must store and what must be searchable. Names,
numbers and ids are made up.

`FIXTURES` are parts of a `messages` change value; `CHANGES` are whole changes of another
field. `envelope` and `change` put them in a delivery."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PHONE_ID = "fx-phone-1"
DISPLAY = "15550001111"
USER = "447700900123"
BSUID = "GB.1234567890"
TS = "1767225600"  # 2026-01-01T00:00:00Z


def change(value: dict[str, Any], field_name: str = "messages") -> dict[str, Any]:
    meta = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_ID}}
    return {"field": field_name, "value": meta | value}


def envelope(*changes: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account", "entry": [{"id": "fx-waba-1", "changes": list(changes)}]}


def message(kind: str, body: Any = None, *, wamid: str | None = None, sender: str = USER,
            **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"from": sender, "id": wamid or f"wamid.fx-{kind}", "timestamp": TS, "type": kind}
    if body is not None:
        found[kind] = body
    return found | extra


def contacts(name: str = "Priya Shah", wa_id: str = USER) -> list[dict[str, Any]]:
    return [{"profile": {"name": name}, "wa_id": wa_id}]


@dataclass(frozen=True)
class Fixture:
    """A part of a `messages` change value and what convmem makes of it."""

    name: str
    value: dict[str, Any]
    stored: str  # for the table: what is kept
    content_type: str | None = None  # the turn's content type; None: no turn
    searchable: tuple[str, ...] = ()  # words the turn's text must contain
    metadata: dict[str, Any] = field(default_factory=dict)  # paths (a.b.c) -> value the turn's metadata holds
    statuses: int = 0
    amendments: int = 0
    number_changes: int = 0
    unknown: str | None = None  # the kind reported as unknown, if any
    reply_expected: bool = True


_FLOW = json.dumps({"flow_token": "fx-token-7", "delivery_date": "2026-01-09", "size": "large",
                    "notes": "leave it with the neighbour"})

FIXTURES: list[Fixture] = [
    Fixture("text", {"contacts": contacts(), "messages": [message("text", {"body": "Is the blue kettle in stock?"})]},
            "text", "text", ("blue kettle",)),
    Fixture("text reply with context", {"contacts": contacts(), "messages": [message(
        "text", {"body": "yes that one"}, context={"from": DISPLAY, "id": "wamid.fx-earlier"})]},
            "text; context (quoted message) in metadata", "text", ("that one",),
            {"whatsapp.context.id": "wamid.fx-earlier"}),
    Fixture("image", {"contacts": contacts(), "messages": [message("image", {
        "caption": "receipt from tuesday", "mime_type": "image/jpeg", "sha256": "fx-sha-image", "id": "fx-media-1",
        "url": "https://lookaside.example/fx-media-1"})]},
            "[image] caption; media id, url, mime type, sha256, caption in metadata", "image",
            ("receipt from tuesday",), {"media.url": "https://lookaside.example/fx-media-1", "media.id": "fx-media-1"}),
    Fixture("audio (voice)", {"contacts": contacts(), "messages": [message("audio", {
        "mime_type": "audio/ogg; codecs=opus", "sha256": "fx-sha-audio", "id": "fx-media-2", "voice": True,
        "url": "https://lookaside.example/fx-media-2"})]},
            "[audio]; media metadata incl. voice flag", "audio", ("[audio]",), {"media.voice": True}),
    Fixture("video", {"contacts": contacts(), "messages": [message("video", {
        "caption": "the leak under the sink", "mime_type": "video/mp4", "sha256": "fx-sha-video", "id": "fx-media-3"})]},
            "[video] caption; media metadata", "video", ("leak under the sink",), {"media.mime_type": "video/mp4"}),
    Fixture("document", {"contacts": contacts(), "messages": [message("document", {
        "filename": "invoice-0042.pdf", "mime_type": "application/pdf", "sha256": "fx-sha-doc", "id": "fx-media-4"})]},
            "[document] file name (or caption); media metadata", "document", ("invoice-0042.pdf",),
            {"media.filename": "invoice-0042.pdf"}),
    Fixture("sticker", {"contacts": contacts(), "messages": [message("sticker", {
        "mime_type": "image/webp", "sha256": "fx-sha-sticker", "id": "fx-media-5", "animated": False})]},
            "[sticker]; media metadata", "sticker", ("[sticker]",), {"media.animated": False}),
    Fixture("location", {"contacts": contacts(), "messages": [message("location", {
        "latitude": 51.5034, "longitude": -0.1276, "name": "Corner Cafe", "address": "12 Example Row, London"})]},
            "[location] name, address (lat, long); the location in metadata", "location",
            ("Corner Cafe", "Example Row"), {"location.name": "Corner Cafe"}),
    Fixture("contacts", {"contacts": contacts(), "messages": [message("contacts", wamid="wamid.fx-contacts") | {
        "contacts": [{"name": {"formatted_name": "Tomasz Nowak", "first_name": "Tomasz"},
                      "phones": [{"phone": "+48 600 000 000", "type": "CELL"}]}]}]},
            "[contacts] names; the cards in metadata", "contacts", ("Tomasz Nowak",)),
    Fixture("interactive button_reply", {"contacts": contacts(), "messages": [message("interactive", {
        "type": "button_reply", "button_reply": {"id": "fx-confirm", "title": "Confirm booking"}})]},
            "the button's title; its id in metadata", "interactive", ("Confirm booking",),
            {"interactive.id": "fx-confirm"}),
    Fixture("interactive list_reply", {"contacts": contacts(), "messages": [message("interactive", {
        "type": "list_reply", "list_reply": {"id": "fx-slot-3", "title": "Thursday 10:00",
                                             "description": "with Dr. Okafor"}})]},
            "title - description; the row id in metadata", "interactive", ("Thursday 10:00", "Okafor"),
            {"interactive.id": "fx-slot-3"}),
    Fixture("interactive nfm_reply (Flows)", {"contacts": contacts(), "messages": [message("interactive", {
        "type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": _FLOW}})]},
            "[form] the answers (not the flow_token); the parsed answers in metadata", "interactive",
            ("delivery_date: 2026-01-09", "leave it with the neighbour"),
            {"interactive.response.size": "large", "interactive.type": "nfm_reply"}),
    Fixture("button (template quick reply)", {"contacts": contacts(), "messages": [message(
        "button", {"text": "Stop promotions", "payload": "fx-optout"})]},
            "the button text; payload in metadata", "button", ("Stop promotions",), {"button.payload": "fx-optout"}),
    Fixture("reaction", {"contacts": contacts(), "messages": [message("reaction", {
        "message_id": "wamid.fx-out-1", "emoji": "\U0001F44D"})]},
            "[reaction] emoji; the message reacted to in metadata; no reply", "reaction", ("[reaction]",),
            {"reaction.message_id": "wamid.fx-out-1"}, reply_expected=False),
    Fixture("order", {"contacts": contacts(), "messages": [message("order", {
        "catalog_id": "fx-catalog", "text": "please gift wrap", "product_items": [
            {"product_retailer_id": "fx-sku-1", "quantity": 2, "item_price": 9.5, "currency": "EUR"}]})]},
            "[order] n item(s) + note; the order in metadata", "order", ("1 item", "gift wrap"),
            {"order.catalog_id": "fx-catalog"}),
    Fixture("referral (click-to-WhatsApp ad)", {"contacts": contacts(), "messages": [message(
        "text", {"body": "Hi, I saw your ad"}, referral={
            "source_url": "https://ads.example/fx-ad", "source_id": "fx-ad-9", "source_type": "ad",
            "headline": "Winter sale", "body": "Half price kettles", "media_type": "image",
            "image_url": "https://ads.example/fx-ad.jpg", "ctwa_clid": "fx-clid-42"})]},
            "the text; referral (source_url, headline, ctwa_clid, ...) in metadata", "text", ("saw your ad",),
            {"whatsapp.referral.ctwa_clid": "fx-clid-42", "whatsapp.referral.headline": "Winter sale"}),
    Fixture("unsupported (with errors)", {"contacts": contacts(), "messages": [message(
        "unsupported", {"type": "poll"}, errors=[{
            "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}}])]},
            "[unsupported message type: poll]; unsupported.type and the errors in metadata; no reply",
            "unsupported", ("poll",), {"unsupported.type": "poll", "whatsapp.errors.0.code": 131051},
            reply_expected=False),
    Fixture("unknown message type", {"contacts": contacts(), "messages": [message(
        "hologram", {"frames": 12, "label": "fx"})]},
            "[unsupported message type: hologram]; its body raw in metadata; counted as unknown", "unsupported",
            ("hologram",), {"raw.frames": 12}, unknown="message_type", reply_expected=False),
    Fixture("edit", {"contacts": contacts(), "messages": [message("edit", {
        "original_message_id": "wamid.fx-text", "message": {"type": "text", "text": {"body": "red kettle"}}})]},
            "no turn: an amendment of the original (new text, full text and vector), recorded as edited",
            amendments=1),
    Fixture("revoke", {"contacts": contacts(), "messages": [message("revoke", {
        "original_message_id": "wamid.fx-text"})]},
            "no turn: the original leaves history and search", amendments=1),
    Fixture("system (user changed number)", {"messages": [message("system", {
        "body": "User Priya changed from 447700900123 to 447700900999", "wa_id": "447700900999",
        "type": "user_changed_number"})]},
            "no turn: the new number becomes an alias of the same user", number_changes=1),
    Fixture("value errors", {"contacts": contacts(), "errors": [{
        "code": 131000, "title": "Something went wrong", "message": "Something went wrong"}],
        "messages": [message("text", {"body": "are you there"})]},
            "the text; the change's errors in metadata (value_errors) and logged", "text", ("are you there",),
            {"whatsapp.value_errors.0.code": 131000}),
    Fixture("business_scoped user id", {"contacts": [{"profile": {"name": "Priya"}, "wa_id": USER, "user_id": BSUID}],
                                        "messages": [message("text", {"body": "hello from the id"})]},
            "the text under the business-scoped user id", "text", ("hello from the id",)),
    Fixture("unknown message fields", {"contacts": contacts(), "messages": [message(
        "text", {"body": "new fields everywhere", "future_flag": True}, future_top_level={"x": 1})]},
            "the text; unknown fields ignored", "text", ("new fields everywhere",)),
]


def status(value: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"wamid.fx-out-{value}", "status": value, "timestamp": TS, "recipient_id": USER} | extra


STATUSES: list[Fixture] = [
    Fixture("status sent", {"statuses": [status("sent", conversation={"id": "fx-conv", "origin": {
        "type": "service"}}, pricing={"billable": True, "pricing_model": "PMP", "category": "service"})]},
            "a delivery state", statuses=1),
    Fixture("status delivered", {"statuses": [status("delivered")]}, "a delivery state", statuses=1),
    Fixture("status read", {"statuses": [status("read")]}, "a delivery state", statuses=1),
    Fixture("status failed", {"statuses": [status("failed", errors=[{
        "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
        "error_data": {"details": "More than 24 hours have passed"}}])]},
            "a delivery state with Meta's errors", statuses=1),
    Fixture("status played", {"statuses": [status("played")]}, "a delivery state (voice message played)",
            statuses=1),
    Fixture("status deleted", {"statuses": [status("deleted")]}, "a delivery state", statuses=1),
    Fixture("status unknown", {"statuses": [status("teleported")]}, "skipped, counted as unknown and logged",
            unknown="status"),
]

ECHO = Fixture("smb_message_echoes", {"message_echoes": [{
    "from": DISPLAY, "to": USER, "id": "wamid.fx-echo-1", "timestamp": TS, "type": "text",
    "text": {"body": "Your order ships tomorrow"}}]},
    "an assistant turn of the user's conversation (sent from the Business app); no reply", "text",
    ("ships tomorrow",), {"whatsapp.source": "business_app"}, reply_expected=False)


@dataclass(frozen=True)
class OtherChange:
    name: str
    change: dict[str, Any]
    stored: str


CHANGES: list[OtherChange] = [
    OtherChange("calls (RINGING)", change({"calls": [{"id": "wacid.fx-1", "from": USER, "to": DISPLAY,
                                                      "event": "connect", "timestamp": TS}],
                                           "statuses": [{"id": "wacid.fx-1", "type": "call", "status": "RINGING",
                                                         "timestamp": TS, "recipient_id": USER}]}, "calls"),
                "skipped, counted as unknown change field"),
    OtherChange("message_template_status_update", change({"event": "APPROVED", "message_template_id": 1234,
                                                          "message_template_name": "fx_welcome"},
                                                         "message_template_status_update"),
                "skipped, counted as unknown change field"),
    OtherChange("account_update", change({"phone_number": DISPLAY, "event": "VERIFIED_ACCOUNT"}, "account_update"),
                "skipped, counted as unknown change field"),
    OtherChange("history (coexistence)", change({"history": [{"metadata": {"phase": 0}, "threads": []}]}, "history"),
                "skipped, counted as unknown change field"),
]


def dig(value: Any, path: str) -> Any:
    """value at a dotted path (list items by index)."""
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value
