"""Time expressions in questions ("last month", "two weeks ago", "in March", "on May 3rd"),
read into a half-open interval relative to the moment the question is asked. Retrieval uses
the interval as a soft preference, so a loose reading costs ranking, never a lost turn."""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

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


@dataclass(frozen=True)
class TimeFrame:
    since: datetime
    until: datetime
    phrase: str  # the words it was read from


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


def parse_timeframe(text: str, now: datetime) -> TimeFrame | None:
    """The first time expression in `text`, or None. English only; other languages fall back
    to undated retrieval."""
    s = text.lower()
    today = now.astimezone(UTC).date()

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
    # "May 3rd", "3 May 2026", "on the 3rd of May"
    if m := re.search(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?", s) or \
            re.search(rf"\b(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(\d{{4}}))?", s):
        a, b, y = m.groups()
        month, day_no = (MONTHS[a], int(b)) if a in MONTHS else (MONTHS[b], int(a))
        year = int(y) if y else _latest_month_before(month, today)
        if 1 <= day_no <= monthrange(year, month)[1]:
            d = date(year, month, day_no)
            return _span(d, d + timedelta(days=1), m.group(0))
    if m := re.search(rf"\b(?:in|during|last|since|back in|early|late|mid)?\s*{_MONTH}(?:\s+(?:of\s+)?(\d{{4}}))?\b", s):
        word, y = m.group(1), m.group(2)
        # "may" alone is usually the verb: accept it only with a year or a leading preposition.
        if word == "may" and not y and not re.match(r"\s*(in|during|last|since|back in|early|late|mid)\b", m.group(0)):
            return None
        month = MONTHS[word]
        year = int(y) if y else _latest_month_before(month, today)
        return _month_span(year, month, m.group(0).strip())
    if m := re.search(r"\b(?:in|during|back in)\s+((?:19|20)\d{2})\b", s):
        year = int(m.group(1))
        return _span(date(year, 1, 1), date(year + 1, 1, 1), m.group(0))
    if m := re.search(r"\b(recently|lately|the other day)\b", s):
        return _span(today - timedelta(days=30), today + timedelta(days=1), m.group(0))
    return None
