from __future__ import annotations

from datetime import UTC, datetime

import pytest

from convmem.memory.timeframe import DateOrder, DateReading, parse_timeframe, within_history

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


@pytest.mark.parametrize(("question", "order", "since", "until"), [
    ("Who did she have lunch with on 14.02.2024?", "auto", day(2, 14, 2024), day(2, 15, 2024)),
    ("what did she buy on 2/14?", "auto", day(2, 14), day(2, 15)),
    ("what happened on 03.04.2024", "auto", day(4, 3, 2024), day(4, 4, 2024)),  # dots: day first
    ("what happened on 03/04/2024", "auto", day(3, 4, 2024), day(3, 5, 2024)),  # slashes: month first
    ("what happened on 03/04/2024", "DMY", day(4, 3, 2024), day(4, 4, 2024)),  # ... unless the tenant says
    ("what happened on 14/02/2024", "MDY", day(2, 14, 2024), day(2, 15, 2024)),  # a month past 12 yields
    ("dinner on 2023-11-30?", "auto", day(11, 30, 2023), day(12, 1, 2023)),
    ("where did Mo travel in summer 2023?", "auto", day(6, 1, 2023), day(9, 1, 2023)),
    ("what did we do in the winter of 2024", "auto", day(12, 1, 2023), day(3, 1, 2024)),
    ("what did I buy between 3 and 10 March 2024?", "auto", day(3, 3, 2024), day(3, 11, 2024)),
    ("what did I buy between March 3 and March 10, 2024?", "auto", day(3, 3, 2024), day(3, 11, 2024)),
    ("what did I order from 28.02.2024 to 03.03.2024", "auto", day(2, 28, 2024), day(3, 4, 2024)),
])
def test_numeric_dates_seasons_and_ranges(question: str, order: DateOrder, since: datetime, until: datetime) -> None:
    frame = parse_timeframe(question, NOW, DateReading(order=order))
    assert frame is not None, question
    assert (frame.since, frame.until) == (since, until)


def test_a_date_without_its_year_says_so_and_other_languages_read_when_configured() -> None:
    frame = parse_timeframe("what did she buy on 2/14?", NOW)
    assert frame is not None and not frame.anchored
    dated = parse_timeframe("on 14.02.2024", NOW)
    assert dated is not None and dated.anchored
    spanish = parse_timeframe("¿con quién comió el 3 de mayo de 2024?", NOW, DateReading(languages=("es", "en")))
    assert spanish is not None and (spanish.since, spanish.until) == (day(5, 3, 2024), day(5, 4, 2024))
    assert parse_timeframe("version 2.1 of the app", NOW) is None  # a decimal is not a date
    assert parse_timeframe("When did Mo get the tattoo?", NOW, DateReading(languages=("de", "en"))) is None


def test_a_date_without_its_year_moves_into_the_users_history() -> None:
    frame = parse_timeframe("what did she buy on 2/14?", NOW)
    assert frame is not None
    moved = within_history(frame, datetime(2024, 6, 1, tzinfo=UTC))
    assert (moved.since, moved.until) == (day(2, 14, 2024), day(2, 15, 2024))
    spring = within_history(frame, datetime(2024, 1, 10, tzinfo=UTC))  # before 14 February: the year before
    assert spring.since == day(2, 14, 2023)
    assert within_history(frame, datetime(2026, 11, 1, tzinfo=UTC)) == frame  # already within it
    dated = parse_timeframe("on 14.02.2025", NOW)
    assert dated is not None and within_history(dated, datetime(2024, 6, 1, tzinfo=UTC)) == dated
