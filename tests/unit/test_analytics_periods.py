"""The analytics domain without a database: periods and their boundaries, the range a report
may span (and the field a refusal names), CSV rows, and who a report is about."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from convmem.ports.analytics import Period, period_end, period_start, period_starts
from services.ingest.analytics import PeriodReport, RangeError, Report, csv_rows, resolve_range
from services.ingest.principal import Principal, Refused, memory_owner_or_tenant

TODAY = date(2026, 12, 7)  # a Monday


def test_periods_are_utc_days_iso_weeks_and_months() -> None:
    assert period_start(date(2026, 12, 10), "week") == date(2026, 12, 7)
    assert period_start(date(2026, 12, 10), "month") == date(2026, 12, 1)
    assert period_end(date(2026, 12, 1), "month") == date(2027, 1, 1)
    assert period_end(date(2026, 2, 1), "month") == date(2026, 3, 1)
    assert period_starts(date(2026, 11, 30), date(2026, 12, 9), "week") == [date(2026, 11, 30), date(2026, 12, 7)]
    assert period_starts(date(2026, 11, 15), date(2026, 12, 2), "month") == [date(2026, 11, 1), date(2026, 12, 1)]
    assert len(period_starts(date(2026, 1, 1), date(2027, 1, 1), "day")) == 365


def test_the_range_defaults_to_recent_periods_and_is_bounded() -> None:
    assert resolve_range("day", None, None, TODAY) == (date(2026, 11, 8), date(2026, 12, 8))  # 30 days, today in
    assert resolve_range("week", None, None, TODAY) == (date(2026, 9, 21), date(2026, 12, 8))  # 12 weeks
    assert resolve_range("month", None, None, TODAY) == (date(2026, 1, 1), date(2026, 12, 8))  # 12 months
    assert resolve_range("day", date(2026, 1, 1), date(2027, 1, 1), TODAY) == (date(2026, 1, 1), date(2027, 1, 1))
    assert resolve_range("day", date(2026, 3, 1), date(2026, 3, 1), TODAY) == (date(2026, 3, 1), date(2026, 3, 1))
    assert resolve_range("day", date(2026, 3, 9), date(2026, 3, 1), TODAY) == (date(2026, 3, 9), date(2026, 3, 9))
    assert resolve_range("day", date(1, 1, 1), date(1970, 1, 5), TODAY) == (date(1970, 1, 1), date(1970, 1, 5))
    assert resolve_range("month", date(9999, 1, 1), date(9999, 12, 31), TODAY) == (date(9999, 1, 1), date(9999, 12, 1))
    assert resolve_range("day", None, date(1, 1, 1), TODAY) == (date(1970, 1, 1), date(1970, 1, 1))
    cases: list[tuple[Period, date | None, date | None]] = [
        ("day", date(2025, 1, 1), date(2026, 3, 1)), ("month", date(2000, 1, 1), date(2026, 3, 1)),
        ("day", date(1, 1, 1), None), ("week", date(2000, 1, 3), None)]
    for period, since, until in cases:
        with pytest.raises(RangeError) as refused:
            resolve_range(period, since, until, TODAY)
        assert refused.value.field == "query.until"


def test_csv_is_long_form_with_every_figure_and_no_formulas() -> None:
    facts = {"messages": {"user/whatsapp": 3, "assistant/whatsapp": 2}, "intent": {"=HYPERLINK()": 1, "order": 2},
             "replies": {"expected": 3, "answered": 2}, "tokens": {"prompt": 10, "completion": 5},
             "active": {"": 2}, "whatsapp": {"sent": 2, "read": 1}}
    period = PeriodReport(date(2026, 12, 7), date(2026, 12, 8), facts, {"p50": 812.5, "p95": 1500.0, "count": 2})
    rows = list(csv_rows(Report("t", None, "day", date(2026, 12, 7), date(2026, 12, 8), datetime.now(UTC), [period])))
    assert rows[0] == ["period_start", "metric", "key", "value"]
    figures = {(m, k): v for _, m, k, v in rows[1:]}
    assert figures[("messages", "total")] == 5 and figures[("messages_by_role", "user")] == 3
    assert figures[("messages_by_channel", "whatsapp")] == 5 and figures[("active_users", "")] == 2
    assert figures[("intent", "'=HYPERLINK()")] == 1 and ("intent", "=HYPERLINK()") not in figures
    assert figures[("replies", "success_rate")] == round(2 / 3, 4)
    assert figures[("latency_ms", "p50")] == 812.5 and figures[("tokens", "total")] == 15
    assert figures[("whatsapp", "delivered")] == 0 and not any(m == "language" for m, _ in figures)
    assert PeriodReport(date(2026, 12, 7), date(2026, 12, 8), {}, {}).latency() == {"p50": None, "p95": None,
                                                                                     "count": 0}


def test_a_report_covers_the_tenant_for_an_admin_and_only_itself_for_anyone_else() -> None:
    admin = Principal("boss", "t", frozenset({"admin"}))
    ana = Principal("ana", "t", frozenset({"user"}))
    backend = Principal("backend", "t", frozenset({"service"}))
    assert memory_owner_or_tenant(admin, None) is None and memory_owner_or_tenant(admin, "ben") == "ben"
    assert memory_owner_or_tenant(ana, None) == "ana" and memory_owner_or_tenant(backend, None) == "backend"
    for who in (ana, backend):
        with pytest.raises(Refused):
            memory_owner_or_tenant(who, "ben")
