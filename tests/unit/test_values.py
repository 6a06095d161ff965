"""The rules of contracts.values: what every stage after the edge can carry and store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from contracts.values import MAX_JSON_BYTES, MAX_JSON_DEPTH, representable_instant, storable_json, storable_text


def nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for _ in range(depth - 1):
        doc = {"a": doc}
    return doc


def test_text_postgres_and_utf8_can_hold() -> None:
    assert storable_text("héllo 👋 \x01\t") == "héllo 👋 \x01\t"
    for bad in ("a\x00b", "\ud800", "x\udfff"):
        with pytest.raises(ValueError):
            storable_text(bad)


@pytest.mark.parametrize(("doc", "reason"), [
    ({"k\x00": 1}, "key"),
    ({"k": "v\x00"}, "NUL"),
    ({"k": ["\ud800"]}, "surrogate"),
    ({"n": 10**30}, "64 bits"),
    ({"n": -(2**63) - 1}, "64 bits"),
    ({"n": math.nan}, "finite"),
    ({"n": [math.inf]}, "finite"),
    ({"d": datetime.now(UTC)}, "not JSON"),
    (nested(MAX_JSON_DEPTH + 1), "deeper"),
    (nested(300), "deeper"),
    ({"s": "x" * MAX_JSON_BYTES}, "bytes"),
])
def test_json_objects_that_would_not_survive_are_refused_with_their_path(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        storable_json(doc)


def test_json_objects_at_the_limits_pass() -> None:
    doc = {"n": [2**63 - 1, -(2**63), 9.2e18, -0.0, 0.5, True, None], "deep": nested(MAX_JSON_DEPTH - 1), "é": "👋"}
    assert storable_json(doc) is doc
    # One bound for every number, as the OpenAPI document states it (JsonValue).
    with pytest.raises(ValueError, match="64-bit"):
        storable_json({"n": 1e308})
    with pytest.raises(ValueError, match=r"\.deep\.a"):  # the path names where it broke
        storable_json({"deep": {"a": {"b": "\x00"}}})


def test_instants_need_an_offset_and_a_representable_utc_time() -> None:
    assert representable_instant(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=14)))).year == 2026
    assert representable_instant(datetime(1970, 1, 1, tzinfo=UTC)).year == 1970
    for bad in (datetime(2026, 1, 1), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
                datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),
                datetime(1969, 12, 31, 23, 59, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC)):
        with pytest.raises(ValueError):
            representable_instant(bad)
