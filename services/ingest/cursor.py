"""Opaque keyset cursors for list endpoints: the sort key of the last row returned. Keyset,
not offset, so a page never repeats or skips rows when conversations are added meanwhile."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID

import orjson

from contracts.values import representable_instant


class CursorError(ValueError):
    pass


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at.isoformat(), str(row_id)])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = orjson.loads(raw)
        when = representable_instant(datetime.fromisoformat(created_at))
        return when, UUID(row_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise CursorError("cursor is not one this API issued") from None
