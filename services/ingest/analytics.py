"""Analytics over time for a caller: which tenant or user a report covers (the read API's
rule, services.ingest.principal), the range it may span, the series per day, week or month
with latency percentiles computed in Postgres from the rollups' buckets, the same series as CSV rows, and
the turns per minute of the last hour (the console's overview). No HTTP here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from convmem.ports.analytics import (
    Analytics,
    AnalyticsScope,
    Facts,
    MinuteCount,
    Period,
    period_end,
    period_start,
    period_starts,
)
from services.ingest.principal import Principal, memory_owner_or_tenant

DEFAULT_SPAN = {"day": 30, "week": 12, "month": 12}  # periods shown when `since` is not given
MAX_PERIODS = {"day": 366, "week": 260, "month": 120}  # a year by day, five by week, ten by month
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 1)


class RangeError(ValueError):
    """A range of more periods than a report may hold (409: each bound is valid alone, as
    the document states them; together they ask for too much). Names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def resolve_range(period: Period, since: date | None, until: date | None, today: date) -> tuple[date, date]:
    """[since, until) in UTC days: until defaults to tomorrow (today included), since to
    DEFAULT_SPAN periods before until; days outside FIRST_DAY..LAST_DAY (where no turn can
    be) are left out. since at or after until is an empty range, answered with no periods;
    more than MAX_PERIODS periods is a RangeError."""
    end = min(max(until if until is not None else today + timedelta(days=1), FIRST_DAY), LAST_DAY)
    start = since
    if start is None:
        start = period_start(end - timedelta(days=1), period) if end > FIRST_DAY else FIRST_DAY
        for _ in range(DEFAULT_SPAN[period] - 1):
            start = max(period_start(start - timedelta(days=1), period), FIRST_DAY)
    start = min(max(start, FIRST_DAY), LAST_DAY)
    if start < end and len(period_starts(start, end, period)) > MAX_PERIODS[period]:
        raise RangeError("query.until", f"the range may hold at most {MAX_PERIODS[period]} periods of a {period}")
    return start, max(start, end)


# ----------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class PeriodReport:
    start: date
    end: date  # exclusive
    facts: Facts
    latency_ms: dict[str, float | None]  # p50, p95, count

    def count(self, dim: str, key: str = "") -> int:
        return self.facts.get(dim, {}).get(key, 0)

    def by(self, dim: str) -> dict[str, int]:
        return dict(sorted(self.facts.get(dim, {}).items(), key=lambda kv: (-kv[1], kv[0])))

    def messages_by(self, part: int) -> dict[str, int]:
        """Turns by role (part 0) or channel (part 1) from the role/channel keys."""
        out: dict[str, int] = {}
        for key, n in self.facts.get("messages", {}).items():
            name = key.split("/", 1)[part]
            out[name] = out.get(name, 0) + n
        return dict(sorted(out.items()))

    def latency(self) -> dict[str, float | None]:
        return {"p50": self.latency_ms.get("p50"), "p95": self.latency_ms.get("p95"),
                "count": self.latency_ms.get("count", 0)}

    def success_rate(self) -> float | None:
        expected = self.count("replies", "expected")
        return None if not expected else round(self.count("replies", "answered") / expected, 4)


@dataclass(frozen=True)
class Report:
    tenant_id: str
    user_id: str | None
    period: Period
    since: date
    until: date
    as_of: datetime
    series: list[PeriodReport]


async def analytics_report(analytics: Analytics, who: Principal, *, period: Period, since: date | None = None,
                           until: date | None = None, user_id: str | None = None,
                           now: datetime | None = None) -> Report:
    """The series an admin sees for the tenant or one user, a user (or service) for itself;
    every period of the range is there, empty ones with nothing counted."""
    owner = memory_owner_or_tenant(who, user_id)
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    start, end = resolve_range(period, since, until, today)
    as_of = await analytics.refresh(who.tenant_id)
    found = {p.start: p for p in await analytics.period_facts(AnalyticsScope(who.tenant_id, owner), period, start, end)}
    series = [PeriodReport(p, period_end(p, period), found[p].facts if p in found else {},
                           found[p].latency_ms if p in found else {})
              for p in (period_starts(start, end, period) if start < end else [])]
    return Report(who.tenant_id, owner, period, start, end, as_of, series)


def csv_rows(report: Report) -> Iterator[list[str | int | float]]:
    """The report in long form, one figure per row: period_start, metric, key, value."""
    yield ["period_start", "metric", "key", "value"]
    for p in report.series:
        start = p.start.isoformat()
        rows: list[tuple[str, str, int | float | None]] = [
            ("messages", "total", sum(p.facts.get("messages", {}).values()))]
        rows += [("messages_by_role", k, n) for k, n in p.messages_by(0).items()]
        rows += [("messages_by_channel", k, n) for k, n in p.messages_by(1).items()]
        rows += [("messages_by_role_channel", k, n) for k, n in sorted(p.facts.get("messages", {}).items())]
        rows += [("active_users", "", p.count("active", "")), ("new_conversations", "", p.count("conversations", "new"))]
        rows += [("intent", k, n) for k, n in p.by("intent").items()]
        rows += [("language", k, n) for k, n in p.by("language").items()]
        rows += [("replies", k, p.count("replies", k)) for k in ("expected", "answered", "offline")]
        rows += [("replies", "success_rate", p.success_rate())]
        rows += [("latency_ms", k, v) for k, v in p.latency().items()]
        prompt, completion = p.count("tokens", "prompt"), p.count("tokens", "completion")
        rows += [("tokens", "prompt", prompt), ("tokens", "completion", completion),
                 ("tokens", "total", prompt + completion)]
        rows += [("whatsapp", k, p.count("whatsapp", k)) for k in ("sent", "delivered", "read", "failed")]
        for metric, key, value in rows:
            yield [start, metric, _cell(key), "" if value is None else value]


def _cell(text: str) -> str:
    """A key as a spreadsheet shows it, never as a formula (intent names are configurable)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# ----------------------------------------------------------------------------- the overview


async def turns_per_minute(analytics: Analytics, who: Principal, *, now: datetime, minutes: int = 60,
                           user_id: str | None = None) -> list[dict[str, object]]:
    """Turns recorded per minute over the last `minutes` (every minute present, zeros
    included), by role: {"minute", "total", "by_role"}. Same scoping as the report."""
    owner = memory_owner_or_tenant(who, user_id)
    end = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    counts: list[MinuteCount] = await analytics.turns_per_minute(AnalyticsScope(who.tenant_id, owner), start, end)
    by_minute: dict[datetime, dict[str, int]] = {}
    for c in counts:
        by_minute.setdefault(c.minute.astimezone(UTC), {})[c.role] = c.turns
    out: list[dict[str, object]] = []
    for i in range(minutes):
        minute = start + timedelta(minutes=i)
        roles = by_minute.get(minute, {})
        out.append({"minute": minute, "total": sum(roles.values()), "by_role": roles})
    return out
