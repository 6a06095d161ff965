"""A user's data export (GDPR art. 15 and 20): everything stored about them, as one JSON
document or as CSV of their messages, produced piece by piece so memory stays flat however
long the history is."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from convmem.ports import PrivacyLedger

ExportFormat = Literal["json", "csv"]
CSV_COLUMNS = ["conversation_id", "seq", "message_id", "role", "channel", "content_type", "occurred_at", "text",
               "external_id", "in_reply_to", "language", "intent", "intent_confidence", "pii_scrubbed", "metadata"]


def _json(value: Any) -> bytes:
    # asyncpg returns its own UUID type, which orjson does not know: str() is its canonical form.
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


def _message(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["message_id"] = row.pop("id")
    row["text"] = row.pop("content")
    return row


async def export_json(privacy: PrivacyLedger, tenant_id: str, user_id: str) -> AsyncIterator[bytes]:
    summary = await privacy.user_summary(tenant_id, user_id)
    head = {"tenant_id": tenant_id, "user_id": user_id, "exported_at": datetime.now(UTC),
            "interaction_summary": None if summary is None else asdict(summary)}
    yield _json(head)[:-1]  # the object stays open: the lists follow
    for name in ("conversations", "conversation_summaries", "messages"):
        yield b',"' + name.encode() + b'":['
        first = True
        async for row in privacy.export_rows(tenant_id, user_id, name):
            yield (b"" if first else b",") + _json(_message(row) if name == "messages" else row)
            first = False
        yield b"]"
    yield b"}\n"


async def export_csv(privacy: PrivacyLedger, tenant_id: str, user_id: str) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    async for row in privacy.export_rows(tenant_id, user_id, "messages"):
        message = _message(row)
        message["metadata"] = orjson.dumps(message.get("metadata") or {}).decode()
        writer.writerow(message)
        if buf.tell() > 64 * 1024:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def export_stream(privacy: PrivacyLedger, tenant_id: str, user_id: str, fmt: ExportFormat) -> AsyncIterator[bytes]:
    return export_json(privacy, tenant_id, user_id) if fmt == "json" else export_csv(privacy, tenant_id, user_id)
