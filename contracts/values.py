"""What a value must be for every stage after the edge to carry it: the one set of rules the
HTTP edge, the webhook parser, the importer and the event contracts all apply, so that a value
accepted at the edge (202) can always be sealed (orjson), published and recorded (Postgres
text, jsonb and timestamptz) rather than dead-lettered later.

- Text and ids: no NUL character (Postgres text cannot hold one) and no lone UTF-16 surrogate
  (not encodable as UTF-8, so neither orjson nor Postgres takes it).
- JSON objects (metadata, webhook error details): at most MAX_JSON_DEPTH levels of nesting and
  MAX_JSON_BYTES serialized; keys and strings follow the text rule; integers within 64 bits
  (orjson's range); no NaN or Infinity (JSON has no such numbers and jsonb refuses them).
- Instants: an explicit UTC offset, and between EARLIEST and LATEST once in UTC, a range that
  Python, asyncpg (which reads its own minimum and maximum as -infinity and infinity) and
  Postgres all represent, whatever the offset.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, Field

MAX_JSON_DEPTH = 20
MAX_JSON_BYTES = 64 * 1024
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# Turns are numbered in a Postgres integer.
SEQ_MAX = 2**31 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def storable_text(value: str) -> str:
    """The text rule: raises ValueError naming what is wrong."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode (a lone surrogate was found)") from None
    return value


def _where(path: list[str]) -> str:
    return "".join(path) or "(top)"


def storable_json(value: dict[str, Any]) -> dict[str, Any]:
    """The JSON object rule, checked without recursion (a hostile document may be deep)."""
    stack: list[tuple[Any, int, list[str]]] = [(value, 1, [])]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict | list) and depth > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels at {_where(path)}")
        if isinstance(node, dict):
            for key, child in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"object keys must be strings at {_where(path)}")
                try:
                    storable_text(key)
                except ValueError as exc:
                    raise ValueError(f"key {_where([*path, '.', key[:40]])} {exc}") from None
                stack.append((child, depth + 1, [*path, ".", key[:40]]))
        elif isinstance(node, list):
            stack.extend((child, depth + 1, [*path, f"[{i}]"]) for i, child in enumerate(node))
        elif isinstance(node, str):
            try:
                storable_text(node)
            except ValueError as exc:
                raise ValueError(f"string at {_where(path)} {exc}") from None
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not _INT_MIN <= node <= _INT_MAX:
                raise ValueError(f"integer at {_where(path)} does not fit in 64 bits")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"number at {_where(path)} must be finite (no NaN or Infinity)")
        else:
            raise ValueError(f"value at {_where(path)} is not JSON ({type(node).__name__})")
    size = len(orjson.dumps(value))
    if size > MAX_JSON_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_JSON_BYTES} are kept")
    return value


def representable_instant(value: datetime) -> datetime:
    """The instant rule; returns the value unchanged (its offset is kept for the reader)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry a UTC offset, e.g. 2026-11-23T10:00:00Z")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return value


# The types the contracts and the edge declare their fields with.
StoredText = Annotated[str, AfterValidator(storable_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
Instant = Annotated[datetime, AfterValidator(representable_instant)]
TENANT_PATTERN = r"^[A-Za-z0-9._:@+-]+$"
TenantId = Annotated[str, Field(min_length=1, max_length=128, pattern=TENANT_PATTERN)]
UserId = Annotated[StoredText, Field(min_length=1, max_length=256)]
ExternalId = Annotated[StoredText, Field(min_length=1, max_length=256)]
