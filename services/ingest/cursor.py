"""Keyset cursors for list endpoints: the sort key of the last row returned. Keyset, not
offset, so a page never repeats or skips rows when conversations are added meanwhile.

A cursor is `<microseconds since 1970>.<row id as 32 hex digits>`. Opaque to clients, but its
shape is published (CURSOR_PATTERN, in the OpenAPI document) and every string of that shape is
a cursor the API takes: a document that promised a format the server then refused would be
lying to generated clients."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# At most 16 digits: up to 2286, inside the instants the store can hold (contracts.values).
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9a-f]{32}$"
_CURSOR = re.compile(CURSOR_PATTERN)


class CursorError(ValueError):
    pass


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    return f"{(created_at - _EPOCH) // _MICROSECOND}.{row_id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    if not _CURSOR.match(cursor):
        raise CursorError("cursor is not one this API issued")
    micros, row_id = cursor.split(".")
    return _EPOCH + int(micros) * _MICROSECOND, UUID(hex=row_id)
