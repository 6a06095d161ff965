"""Time expressions in questions ("last month", "two weeks ago", "in March", "on May 3rd",
"on 14.02.2024", "2/14", "in summer 2023", "between 3 and 10 March 2024"), read into a
half-open interval relative to the moment the question is asked. Retrieval uses the interval
as a soft preference, so a loose reading costs ranking, never a lost turn.

Named dates in any of the configured languages are read by `dateparser` (its search_dates,
with the granularity its DateDataParser reports: a day, a month, a year). Numbers are read
with a date order (day-first, month-first, or by the separator: dots and dashes day-first,
slashes month-first), the one a value cannot have yielding to the other. Seasons, ranges and
the common English relative phrases are read here first: they are cheap, and dateparser reads
neither seasons nor ranges. A date said without its year is marked so (`anchored`): the
retriever may move it to the latest such date of the user's history."""

from __future__ import annotations

import re
import threading
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dateparser.date import DateDataParser

DateOrder = Literal["auto", "DMY", "MDY", "YMD"]

MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], 1)}
MONTHS |= {m[:3]: i for m, i in list(MONTHS.items())} | {"sept": 9}
WEEKDAYS = {d: i for i, d in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a couple of": 2, "a few": 3,
           "couple of": 2, "few": 3, "several": 4}
_NUM = r"(\d{1,3}|a couple of|couple of|a few|few|several|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_UNIT = r"(day|week|month|year)s?"
_MONTH = r"(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_WEEKDAY = r"(" + "|".join(WEEKDAYS) + r")"


SEASONS = {"spring": (3, 3), "summer": (6, 3), "autumn": (9, 3), "fall": (9, 3), "winter": (12, 3)}  # (first month, months)
_SEASON = r"\b(spring|summer|autumn|fall|winter)\b(?:\s+(?:of\s+)?((?:19|20)\d{2})\b)?"
# A date in numbers: 14.02.2024, 2/14, 2/14/24, 2023-11-30, "on 14.2." (a dotted date without
# its year only after "on" or the like, so "version 2.1" is not a date).
_NUMERIC = re.compile(r"(?<![\d./-])(?:(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})([./-])(\d{1,2})(?:\5(\d{4}|\d{2}))?\.?)(?![\d/-]|\.\d)")
_BEFORE_DAY = re.compile(r"\b(on|am|le|el|il|em|op|na|dnia|since|until|till|by|before|after|from|to|and)\s*$")


@dataclass(frozen=True)
class TimeFrame:
    since: datetime
    until: datetime
    phrase: str  # the words it was read from
    anchored: bool = True  # False: no year was said, the latest such date before now was taken


@dataclass(frozen=True)
class DateReading:
    """How a tenant's users write dates: the order of numeric dates and the languages of named
    ones (dateparser's language codes)."""

    order: DateOrder = "auto"
    languages: tuple[str, ...] = ("en",)


def _day(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=UTC)


def _span(start: date, end_exclusive: date, phrase: str) -> TimeFrame:
    return TimeFrame(_day(start), _day(end_exclusive), phrase)


def _month_span(year: int, month: int, phrase: str) -> TimeFrame:
    last = monthrange(year, month)[1]
    return _span(date(year, month, 1), date(year, month, last) + timedelta(days=1), phrase)


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    return date(year, month + 1, min(d.day, monthrange(year, month + 1)[1]))


def _ago(n: int, unit: str, today: date, phrase: str) -> TimeFrame:
    """"N units ago" is approximate in speech: the window is centred and widens with the unit."""
    if unit == "day":
        centre, slack = today - timedelta(days=n), timedelta(days=1)
    elif unit == "week":
        centre, slack = today - timedelta(weeks=n), timedelta(days=4)
    elif unit == "month":
        centre, slack = _add_months(today, -n), timedelta(days=16)
    else:
        centre, slack = date(today.year - n, today.month, min(today.day, 28)), timedelta(days=183)
    return _span(centre - slack, min(centre + slack + timedelta(days=1), today + timedelta(days=1)), phrase)


def _latest_month_before(month: int, today: date) -> int:
    return today.year if month <= today.month else today.year - 1


def within_history(frame: TimeFrame, last: datetime) -> TimeFrame:
    """A frame read without its year, moved back by whole years to the latest one that begins
    by the user's newest turn: "on 2/14" in a history that ends in 2024 is 14 February 2024."""
    if frame.anchored or frame.since <= last:
        return frame
    years = frame.since.year - last.year + (1 if frame.since.replace(year=last.year) > last else 0)
    since, until = _years_back(frame.since, years), _years_back(frame.until, years)
    return TimeFrame(since, until, frame.phrase, anchored=False) if since < until else frame


def _years_back(d: datetime, years: int) -> datetime:
    return d.replace(year=d.year - years, day=min(d.day, monthrange(d.year - years, d.month)[1]))


def parse_timeframe(text: str, now: datetime, reading: DateReading | None = None) -> TimeFrame | None:
    """The first time expression in `text`, or None."""
    reading = reading or DateReading()
    s = text.lower()
    today = now.astimezone(UTC).date()
    return (_range(s, today, reading) or _season(s, today) or _relative(s, today)
            or _numeric_date(s, today, reading) or _named(s, now, reading) or _vague(s, today))


def _relative(s: str, today: date) -> TimeFrame | None:
    """The common English relative phrases ("yesterday", "two weeks ago", "last month"), each
    with the width a person means by it."""
    if m := re.search(r"\bthe day before yesterday\b", s):
        return _span(today - timedelta(days=2), today - timedelta(days=1), m.group(0))
    if m := re.search(r"\byesterday\b", s):
        return _span(today - timedelta(days=1), today, m.group(0))
    if m := re.search(r"\b(today|this morning|tonight|this evening)\b", s):
        return _span(today, today + timedelta(days=1), m.group(0))
    if m := re.search(rf"\b{_NUM}\s+{_UNIT}\s+ago\b", s):
        n = int(m.group(1)) if m.group(1).isdigit() else NUMBERS[m.group(1)]
        return _ago(n, m.group(2), today, m.group(0))
    if m := re.search(rf"\b(?:in the |over the |during the )?(?:last|past)\s+{_NUM}\s+{_UNIT}\b", s):
        n = int(m.group(1)) if m.group(1).isdigit() else NUMBERS[m.group(1)]
        starts = {"day": today - timedelta(days=n), "week": today - timedelta(weeks=n),
                 "month": _add_months(today, -n), "year": date(today.year - n, today.month, min(today.day, 28))}
        return _span(starts[m.group(2)], today + timedelta(days=1), m.group(0))
    if m := re.search(r"\b(last|this|past)\s+(weekend|week|month|year)\b", s):
        which, unit = m.groups()
        monday = today - timedelta(days=today.weekday())
        if unit == "weekend":
            saturday = monday - timedelta(days=2) if which == "last" or today.weekday() < 5 else monday + timedelta(days=5)
            return _span(saturday, saturday + timedelta(days=2), m.group(0))
        if unit == "week":
            start = monday - timedelta(weeks=1) if which == "last" else monday
            return _span(start, start + timedelta(weeks=1), m.group(0))
        if unit == "month":
            first = today.replace(day=1)
            if which == "last":
                prev = _add_months(first, -1)
                return _month_span(prev.year, prev.month, m.group(0))
            return _span(first, today + timedelta(days=1), m.group(0))
        year = today.year - 1 if which == "last" else today.year
        return _span(date(year, 1, 1), date(year + 1, 1, 1), m.group(0))
    if m := re.search(rf"\b(?:last|on|this past)\s+{_WEEKDAY}\b", s):
        back = (today.weekday() - WEEKDAYS[m.group(1)]) % 7 or 7
        day = today - timedelta(days=back)
        return _span(day, day + timedelta(days=1), m.group(0))
    return None


def _season(s: str, today: date) -> TimeFrame | None:
    """"in summer 2023", "last winter": northern seasons; winter 2024 runs from December 2023."""
    if not (m := re.search(_SEASON, s)):
        return None
    first, months = SEASONS[m.group(1)]
    if m.group(2):
        year = int(m.group(2)) - (1 if first == 12 else 0)
    else:  # the latest such season begun by today
        year = today.year if today.month >= first else today.year - 1
    start = date(year, first, 1)
    return TimeFrame(_day(start), _day(_add_months(start, months)), m.group(0), anchored=bool(m.group(2)))


def _range(s: str, today: date, reading: DateReading) -> TimeFrame | None:
    """"between 3 and 10 March 2024", "from 03.03.2024 to 10.03.2024": both ends read as
    dates, the first borrowing what it leaves out (month, year) from the second."""
    m = re.search(r"\b(?:between|from)\s+(.{1,30}?)\s+(?:and|to|until|till|-)\s+(.{1,30}?)(?=[?!]|,(?!\s*\d{4})|\s*$|\.(?:\s|$))", s)
    if not m:
        return None
    end = _one_day(m.group(2), today, reading)
    if end is None:
        return None
    left = m.group(1).strip()
    start = (date(end.year, end.month, int(left)) if left.isdigit() and 1 <= int(left) <= monthrange(end.year, end.month)[1]
             else _one_day(f"{left} {end.year}" if not re.search(r"\d{4}", left) and not _NUMERIC.search(left) else left,
                           today, reading))
    if start is None or start > end:
        return None
    return _span(start, end + timedelta(days=1), m.group(0))


def _one_day(words: str, today: date, reading: DateReading) -> date | None:
    frame = _numeric_date(words, today, reading) or _named(words, datetime.combine(today, time.min, tzinfo=UTC),
                                                           reading, day_only=True)
    return frame.since.date() if frame is not None and frame.until - frame.since == timedelta(days=1) else None


def _numeric_date(s: str, today: date, reading: DateReading) -> TimeFrame | None:
    for m in _NUMERIC.finditer(s):
        iso_y, iso_m, iso_d, a, sep, b, y = m.groups()
        if iso_y:
            found = _valid(int(iso_y), int(iso_m), int(iso_d))
        else:
            if not y and sep == "." and not _BEFORE_DAY.search(s[: m.start()]):
                continue
            order = reading.order if reading.order != "auto" else ("MDY" if sep == "/" else "DMY")
            first, second = int(a), int(b)
            day_no, month = (first, second) if order == "DMY" else (second, first)
            if month > 12:  # the order this value cannot have yields to the other
                day_no, month = month, day_no
            year = (2000 + int(y) if len(y) == 2 else int(y)) if y else _latest_year(month, day_no, today)
            found = _valid(year, month, day_no) if year else None
        if found is not None:
            return TimeFrame(_day(found), _day(found + timedelta(days=1)), m.group(0), anchored=bool(iso_y or y))
    return None


def _valid(year: int, month: int, day_no: int) -> date | None:
    try:
        return date(year, month, day_no)
    except ValueError:
        return None


def _latest_year(month: int, day_no: int, today: date) -> int | None:
    for year in (today.year, today.year - 1, today.year - 2, today.year - 3, today.year - 4):
        if (d := _valid(year, month, day_no)) is not None and d <= today:
            return year
    return None


_MONTH_WORD = re.compile(rf"\b{_MONTH}(?!\w)")


def _named(s: str, now: datetime, reading: DateReading, day_only: bool = False) -> TimeFrame | None:
    """Dates with named months or years ("May 3rd", "in March", "march 2025", "in 2024", "el 3 de
    mayo" with Spanish configured), read by dateparser, as wide as what they name."""
    if reading.languages == ("en",) and not (_MONTH_WORD.search(s) or re.search(r"\b(?:19|20)\d{2}\b", s)):
        return None  # nothing dateparser could read in English: spare it the search
    base = now.astimezone(UTC).replace(tzinfo=None)
    for phrase, when in _search(s, base, reading) or []:
        words = phrase.strip()
        # "may" alone is usually the verb, and a bare short word ("mo", "wo") a name: only with
        # a number, a preposition or a month name of some length.
        if not re.search(r"\d", words) and (len(words) < 4 or re.fullmatch(r"may", words)):
            continue
        if re.fullmatch(r"may", words.split()[-1]) and not re.search(r"\d|\b(in|during|last|since|early|late|mid)\b", words):
            continue
        period = _period(words, base, reading)
        day0 = when.date()
        if period == "year" and not day_only:
            return _span(date(day0.year, 1, 1), date(day0.year + 1, 1, 1), words)
        if period == "month" and not day_only:
            month = _month_span(day0.year, day0.month, words)
            return TimeFrame(month.since, month.until, words, anchored=bool(re.search(r"\d{4}", words)))
        if period == "day":
            return TimeFrame(_day(day0), _day(day0 + timedelta(days=1)), words, anchored=bool(re.search(r"\d{4}", words)))
    return None


def _search(s: str, base: datetime, reading: DateReading) -> list[tuple[str, datetime]] | None:
    from dateparser.search import search_dates  # imported on first use: loading it takes seconds

    return search_dates(s, languages=list(reading.languages), settings=_settings(base, reading))


def _period(words: str, base: datetime, reading: DateReading) -> str:
    return str(_parser(reading.languages).get_date_data(words).period or "day")


@lru_cache(maxsize=8)
def _parser(languages: tuple[str, ...]) -> DateDataParser:
    from dateparser.date import DateDataParser

    return DateDataParser(languages=list(languages), settings={"PREFER_DATES_FROM": "past"})


def _settings(base: datetime, reading: DateReading) -> dict[str, object]:
    order = "MDY" if reading.order == "auto" else reading.order
    return {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "DATE_ORDER": order, "RETURN_AS_TIMEZONE_AWARE": False}


def _vague(s: str, today: date) -> TimeFrame | None:
    if m := re.search(r"\b(recently|lately|the other day)\b", s):
        return _span(today - timedelta(days=30), today + timedelta(days=1), m.group(0))
    return None


_warming: threading.Thread | None = None


def warm_up(reading: DateReading | None = None) -> None:
    """dateparser loads its language data on first use (seconds): a process that will read
    dates starts that once, in the background, instead of in its first search."""
    global _warming
    if _warming is None:
        _warming = threading.Thread(target=parse_timeframe, args=("on 3 May 2024", datetime.now(UTC), reading),
                                    name="dateparser-warm-up", daemon=True)
        _warming.start()
