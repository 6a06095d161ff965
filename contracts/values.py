"""What a value must be for every stage after the edge to carry it: the one set of rules the
HTTP edge, the webhook parser, the importer and the event contracts all apply, so that a value
accepted at the edge (202) can always be sealed (orjson), published and recorded (Postgres
text, jsonb and timestamptz) rather than dead-lettered later.

- Text and ids: no NUL character (Postgres text cannot hold one) and no lone UTF-16 surrogate
  (not encodable as UTF-8, so neither orjson nor Postgres takes it).
- JSON objects (metadata, webhook error details): at most MAX_JSON_DEPTH levels of nesting and
  MAX_JSON_BYTES serialized; keys and strings follow the text rule; integers within 64 bits
  (orjson's range), and other numbers within the same span (so one stated bound holds for
  every number); no NaN or Infinity (JSON has no such numbers and jsonb refuses them).
- Instants: an explicit UTC offset, and between EARLIEST and LATEST once in UTC, a range that
  Python, asyncpg (which reads its own minimum and maximum as -infinity and infinity) and
  Postgres all represent, whatever the offset.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

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
            if not _INT_MIN <= node <= _INT_MAX:
                raise ValueError(f"number at {_where(path)} lies outside what 64-bit integers span")
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


# JSON as the HTTP API documents it (components/schemas/JsonValue, recursive): the rule above
# except depth and size, which a JSON Schema cannot state and which the server still enforces.
JSON_VALUE_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "null"}, {"type": "boolean"},
    {"type": "number", "minimum": _INT_MIN, "maximum": _INT_MAX},
    {"type": "string", "pattern": r"^[^\x00]*$"},
    {"type": "array", "items": {"$ref": "#/components/schemas/JsonValue"}},
    {"type": "object", "propertyNames": {"pattern": r"^[^\x00]*$"},
     "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}]}

# The types the contracts and the edge declare their fields with.
# The document states the NUL ban as a pattern (a lone surrogate cannot be written in a JSON
# Schema pattern; it is refused the same way, with the same message).
NO_NUL_PATTERN = r"^[^\x00]*$"
StoredText = Annotated[str, AfterValidator(storable_text), Field(json_schema_extra={"pattern": NO_NUL_PATTERN})]
JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
# A JsonObject sent to the HTTP API: the same rule, documented with JSON_VALUE_SCHEMA.
WrittenJsonObject = Annotated[dict[str, Any], AfterValidator(storable_json), WithJsonSchema(
    {"type": "object", "propertyNames": {"pattern": r"^[^\x00]*$"},
     "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}})]
Instant = Annotated[datetime, AfterValidator(representable_instant)]
# An instant as a client writes it to the HTTP API: RFC 3339 with an offset, years 1971-9998 as
# written. Stricter than what the store holds (1970-01-01 to 9999-12-30 in UTC) by a year at
# each end, so that whatever the offset, every string of this shape is an instant the API
# takes, and the published document states exactly what the server enforces. Numbers (Unix
# times) are refused here: the document says date-time. The importer keeps taking them.
WRITTEN_INSTANT_PATTERN = (
    r"^(19(7[1-9]|[89][0-9])|[2-8][0-9]{3}|9([0-8][0-9]{2}|9([0-8][0-9]|9[0-8])))"
    r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
def written_as(pattern: str, made: type, rule: str) -> Callable[[Any], Any]:
    """A shape rule applied before parsing: a string matching `pattern` (or a value of type
    `made`, built in code) passes; anything else, numbers included, is refused with `rule`."""
    shape = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, made) or (isinstance(value, str) and shape.match(value)):
            return value
        raise ValueError(rule)

    return check


WrittenInstant = Annotated[
    datetime,
    BeforeValidator(written_as(WRITTEN_INSTANT_PATTERN, datetime, "must be an RFC 3339 date-time with an offset, "
                                                                  "years 1971-9998, e.g. 2026-11-23T10:00:00Z")),
    AfterValidator(representable_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": WRITTEN_INSTANT_PATTERN})]
# A calendar day as a client writes it (YYYY-MM-DD): never a number, which pydantic would
# otherwise read as a Unix time.
WRITTEN_DATE_PATTERN = r"^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
WrittenDate = Annotated[date, BeforeValidator(written_as(WRITTEN_DATE_PATTERN, date, "must be a day as YYYY-MM-DD")),
                        WithJsonSchema({"type": "string", "format": "date", "pattern": WRITTEN_DATE_PATTERN})]
TENANT_PATTERN = r"^[A-Za-z0-9._:@+-]+$"
TenantId = Annotated[str, Field(min_length=1, max_length=128, pattern=TENANT_PATTERN)]
UserId = Annotated[StoredText, Field(min_length=1, max_length=256)]
ExternalId = Annotated[StoredText, Field(min_length=1, max_length=256)]
