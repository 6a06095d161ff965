"""Files sent with an HTTP message, by reference: kept in the turn's metadata the way WhatsApp
media are (Attachment.as_media: `id`, `url`, `mime_type`, `sha256`, `caption`, `filename`, `size`), and their
captions (else file names) added to the text, so that search finds them as it finds a
WhatsApp image's caption."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts.events import ContentType
from services.ingest.schemas import Attachment

_KINDS: dict[str, ContentType] = {"image": "image", "audio": "audio", "video": "video"}


def kind_of(attachment: Attachment) -> ContentType:
    """What WhatsApp would call it: image, audio or video by its MIME type, else a document."""
    return _KINDS.get(attachment.mime_type.split("/", 1)[0].lower(), "document")


def with_attachments(text: str, metadata: dict[str, Any], attachments: Sequence[Attachment]
                     ) -> tuple[ContentType, str, dict[str, Any]]:
    """(content type, text, metadata) of a message and its attachments. A message that is one
    attachment and no text takes the attachment's kind, as a WhatsApp media message does.
    PostMessage checked that the metadata has room for them."""
    if not attachments:
        return "text", text, metadata
    lines = [f"[{kind_of(a)}] {a.caption or a.file_name or ''}".strip() for a in attachments]
    merged = {**metadata, "attachments": [a.as_media() for a in attachments]}
    content_type = kind_of(attachments[0]) if len(attachments) == 1 and not text else "text"
    return content_type, "\n".join([text, *lines] if text else lines), merged
