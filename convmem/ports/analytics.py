"""The analytics read model: counts per UTC day of a tenant or one of its users (turns by role
and channel, intents, languages, reply latency buckets, replies, tokens, new conversations,
active users, the WhatsApp delivery funnel), and the pipeline's recent throughput. Counts
only: no text, no ids of turns. Grouping days into weeks and months, and percentiles, are
the domain's (services/ingest/analytics.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

Period = Literal["day", "week", "month"]

# The dimensions of a day's facts, each a map key -> count:
#   messages       "role/channel" (user/whatsapp, assistant/http, ...)
#   intent         the intents of user turns       language  the languages of user turns
#   latency        latency bucket (see latency_bucket) -> replies by a model
#   replies        expected (user turns asking for one), answered (published), offline
#   tokens         prompt, completion (model tokens of replies)
#   conversations  new (conversations begun that day)
#   active         "" -> users who sent a turn that day
#   whatsapp       sent, delivered, read, failed (reply parts, by the day of their reply)
DIMENSIONS = ("messages", "intent", "language", "latency", "replies", "tokens", "conversations", "active",
              "whatsapp")

Facts = dict[str, dict[str, int]]  # dimension -> key -> count


def period_start(day: date, period: Period) -> date:
    """The UTC day, the Monday of its ISO week, or the first of its month."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1) if period == "month" else day


def period_end(start: date, period: Period) -> date:
    """The start of the next period (periods end before it)."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_starts(since: date, until: date, period: Period) -> list[date]:
    """The starts of the periods that hold a day of [since, until)."""
    out, start = [], period_start(since, period)
    while start < until:
        out.append(start)
        start = period_end(start, period)
    return out


@dataclass(frozen=True)
class AnalyticsScope:
    """A tenant, or one user of it (user_id). Every analytics read takes one."""

    tenant_id: str
    user_id: str | None

    def __post_init__(self) -> None:
        if not self.tenant_id:
            raise ValueError("an analytics scope needs a tenant_id")


@dataclass(frozen=True)
class PeriodFacts:
    """The facts of one period (a day, week or month starting at `start`), summed over its
    days; `active` is the distinct users of the whole period, not a sum of days. Latency
    percentiles are percentile_cont over the period's latency buckets."""

    start: date
    facts: Facts  # every dimension but latency
    latency_ms: dict[str, float | None] = field(default_factory=dict)  # p50, p95, count (timed replies)


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime  # UTC, at the start of the minute
    role: str
    turns: int


class Analytics(Protocol):
    async def refresh(self, tenant_id: str) -> datetime:
        """Bring the tenant's rollups up to date with everything committed before this call;
        returns when the refresh started (what the rollups are as of)."""
        ...

    async def period_facts(self, scope: AnalyticsScope, period: Period, since: date, until: date
                           ) -> list[PeriodFacts]:
        """Facts per period of the days in [since, until), periods with nothing left out."""
        ...

    async def turns_per_minute(self, scope: AnalyticsScope, since: datetime, until: datetime) -> list[MinuteCount]:
        """Turns recorded per minute and role in [since, until) (the pipeline's throughput,
        read from the turns, not the rollups)."""
        ...
