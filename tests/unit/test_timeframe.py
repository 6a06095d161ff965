from __future__ import annotations

from datetime import UTC, datetime

import pytest

from convmem.memory.timeframe import parse_timeframe

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday


def day(m: int, d: int, y: int = 2026) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(("question", "since", "until"), [
    ("what did I say yesterday?", day(11, 22), day(11, 23)),
    ("what did we talk about last week", day(11, 16), day(11, 23)),
    ("where did I go last month?", day(10, 1), day(11, 1)),
    ("what did I buy in March?", day(3, 1), day(4, 1)),
    ("what happened in march 2025", day(3, 1, 2025), day(4, 1, 2025)),
    ("what did I do on May 3rd?", day(5, 3), day(5, 4)),
    ("who did I meet on the 3rd of May 2025", day(5, 3, 2025), day(5, 4, 2025)),
    ("what did I cook last Friday", day(11, 20), day(11, 21)),
    ("what did I mention two weeks ago", day(11, 5), day(11, 14)),
    ("anything in the past 3 days?", day(11, 20), day(11, 24)),
    ("what did I do in 2024?", day(1, 1, 2024), day(1, 1, 2025)),
    ("in December I went skiing, right?", day(12, 1, 2025), day(1, 1, 2026)),
])
def test_time_expressions_become_half_open_windows(question: str, since: datetime, until: datetime) -> None:
    frame = parse_timeframe(question, NOW)
    assert frame is not None, question
    assert (frame.since, frame.until) == (since, until)


@pytest.mark.parametrize("question", [
    "what is my sister's name?", "may I ask where I left my keys?", "how many dogs do I have", "",
])
def test_questions_without_time_have_no_window(question: str) -> None:
    assert parse_timeframe(question, NOW) is None
