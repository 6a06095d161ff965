"""What one WhatsApp message says: its content type, the text people search for, the metadata
kept beside it. Read leniently, because Meta adds fields, types and values without notice:
a part of the wrong type is left out, an unknown type is kept raw, nothing here refuses a
delivery. Pure functions; services.ingest.whatsapp reads the envelope around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from contracts.events import ContentType
from contracts.values import storable_json

MEDIA: dict[str, ContentType] = {"image": "image", "audio": "audio", "video": "video", "document": "document",
                                 "sticker": "sticker"}
_MEDIA_FIELDS = ("id", "url", "mime_type", "sha256", "caption", "filename", "animated", "voice")
# What is kept of a part we cannot read (an unknown type's body, a click-to-WhatsApp referral):
# enough to look at later, never enough to crowd out the turn's metadata (64 KiB in all).
RAW_LIMIT = 8 * 1024
# The types services.ingest.whatsapp reads itself instead of as a turn.
AMENDMENTS = ("edit", "revoke")


def d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def s(value: Any) -> str:
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def raw(value: Any, limit: int = RAW_LIMIT) -> Any:
    """`value` when it can be stored as it is (JSON a turn's metadata may carry) and is small,
    else None: kept raw, or not at all, never a reason to refuse the rest."""
    try:
        encoded = orjson.dumps(value)
        if len(encoded) > limit:
            return None
        storable_json({"v": value})
    except (TypeError, ValueError, orjson.JSONEncodeError):
        return None
    return value


@dataclass
class Content:
    content_type: ContentType
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    reply_expected: bool = True
    known: bool = True  # False: a type this code does not know, kept raw


def _flow_answers(reply: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """A WhatsApp Flows answer: `response_json` is a JSON string of the form's fields (and the
    flow_token, which is ours, not the person's). The answers are what the person wrote."""
    answers: Any = None
    text = reply.get("response_json")
    if isinstance(text, str):
        try:
            answers = orjson.loads(text)
        except orjson.JSONDecodeError:
            answers = None
    if not isinstance(answers, dict):
        return "", None
    kept = raw(answers)
    parts = []
    for key, value in answers.items():
        if key == "flow_token":
            continue
        shown = ", ".join(s(v) for v in value if s(v)) if isinstance(value, list) else s(value)
        if shown:
            parts.append(f"{key}: {shown}")
    return "; ".join(parts), kept


def _interactive(body: dict[str, Any]) -> Content:
    kind = s(body.get("type")) or "interactive"
    reply = d(body.get("button_reply")) or d(body.get("list_reply")) or d(body.get("nfm_reply"))
    meta: dict[str, Any] = {"type": kind, "id": s(reply.get("id")) or None}
    text = " - ".join(s(reply.get(k)) for k in ("title", "description") if s(reply.get(k)))
    if "nfm_reply" in body:
        answers, kept = _flow_answers(reply)
        meta |= {"name": s(reply.get("name")) or None, "body": s(reply.get("body")) or None,
                 "response": kept}
        text = f"[form] {answers}".strip() if answers else (s(reply.get("body")) or text)
    return Content("interactive", text or f"[{kind}]", {"interactive": meta})


def render(msg: dict[str, Any], kind: str) -> Content:
    """The content of one message of type `kind` (amendments and system messages are read by
    the envelope's reader; here they are whatever their body says)."""
    body = d(msg.get(kind))
    if kind == "text":
        return Content("text", s(body.get("body")))
    if kind in MEDIA:
        media = {k: body[k] for k in _MEDIA_FIELDS if k in body and raw(body[k], 2048) is not None}
        caption = s(body.get("caption")) or s(body.get("filename"))
        return Content(MEDIA[kind], f"[{kind}] {caption}".strip(), {"media": media})
    if kind == "location":
        where = ", ".join(p for p in (s(body.get("name")), s(body.get("address"))) if p)
        text = f"[location] {where} ({s(body.get('latitude'))}, {s(body.get('longitude'))})".replace("  ", " ")
        return Content("location", text, {"location": raw(body)})
    if kind == "contacts":
        cards: list[Any] = msg["contacts"] if isinstance(msg.get("contacts"), list) else []
        names = [s(d(d(c).get("name")).get("formatted_name")) for c in cards]
        return Content("contacts", "[contacts] " + ", ".join(n for n in names if n), {"contacts": raw(cards)})
    if kind == "interactive":
        return _interactive(body)
    if kind == "button":
        return Content("button", s(body.get("text")), {"button": {"payload": s(body.get("payload")) or None}})
    if kind == "reaction":
        # A reaction annotates an earlier message; it does not ask for an answer.
        emoji = s(body.get("emoji"))
        return Content("reaction", f"[reaction] {emoji}".strip(), {
            "reaction": {"message_id": s(body.get("message_id")) or None, "emoji": emoji}}, reply_expected=False)
    if kind == "order":
        items = [d(i) for i in body.get("product_items", [])] if isinstance(body.get("product_items"), list) else []
        note = s(body.get("text"))
        return Content("order", f"[order] {len(items)} item(s) {note}".strip(), {"order": raw(body)})
    if kind == "request_welcome":
        # The user opened the chat for the first time (no text): worth a greeting.
        return Content("system", "[request_welcome]", {"raw_type": kind})
    if kind == "unsupported":
        # Meta could not render it (a poll, a view-once message, ...): the kind is in `unsupported.type`.
        what = s(body.get("type"))[:64] or "unknown"
        return Content("unsupported", f"[unsupported message type: {what}]", {"raw_type": "unsupported",
                       "unsupported": {"type": what}}, reply_expected=False)
    name = kind[:64]
    return Content("unsupported", f"[unsupported message type: {name}]", {"raw_type": name, "raw": raw(body)},
                   reply_expected=False, known=False)


def edit_text(edit: dict[str, Any]) -> str:
    """The new text of an edit: `edit.message` is the message as it now reads (a text's body or
    a media message's caption)."""
    message = d(edit.get("message"))
    kind = s(message.get("type"))
    inner = d(message.get(kind)) if kind else {}
    return s(inner.get("body")) or s(inner.get("caption")) or s(d(message.get("text")).get("body"))


def referral(msg: dict[str, Any]) -> dict[str, Any] | None:
    """Click-to-WhatsApp ads: where the person came from (source_url, headline, ctwa_clid, ...)."""
    found = d(msg.get("referral"))
    return raw(found) if found else None
