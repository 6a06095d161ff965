"""GET /v1/analytics: volume, intents, languages, reply latency and success, tokens and the
WhatsApp delivery funnel per day, week or month, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from contracts.values import WrittenDate
from services.ingest.analytics import PeriodReport, RangeError, Report, analytics_report, csv_rows
from services.ingest.http.deps import Caller, Ports, TenantUser
from services.ingest.http.errors import ERRORS, ApiError, unavailable

router = APIRouter(tags=["analytics"])


class MessagesView(BaseModel):
    total: int
    by_role: dict[str, int]
    by_channel: dict[str, int]
    by_role_channel: dict[str, int] = Field(description='"role/channel" -> turns')


class LatencyView(BaseModel):
    p50: float | None
    p95: float | None
    count: int = Field(description="replies written by a model (offline notices are not timed)")


class RepliesView(BaseModel):
    expected: int = Field(description="user turns that asked for a reply")
    answered: int = Field(description="... whose reply was published")
    offline: int = Field(description="replies assembled without a model (offline mode)")
    success_rate: float | None = Field(description="answered / expected; null with nothing expected")
    latency_ms: LatencyView = Field(
        description="the responder's time per reply (context and model), percentiles as percentile_cont over "
                    "values kept exact below 100 ms and in 1% buckets above (within 0.5%)")


class TokensView(BaseModel):
    prompt: int
    completion: int
    total: int


class WhatsAppView(BaseModel):
    sent: int = Field(description="reply parts the Cloud API accepted")
    delivered: int = Field(description="... reported delivered (or read)")
    read: int
    failed: int = Field(description="refused by the Cloud API or reported failed")


class PeriodView(BaseModel):
    start: date
    end: date = Field(description="exclusive")
    messages: MessagesView
    active_users: int = Field(description="distinct users who sent a turn in the period")
    new_conversations: int
    intents: dict[str, int] = Field(description="intents of user turns, most frequent first")
    languages: dict[str, int] = Field(description="languages of user turns, most frequent first")
    replies: RepliesView
    tokens: TokensView
    whatsapp: WhatsAppView


class AnalyticsView(BaseModel):
    scope: Literal["tenant", "user"]
    tenant_id: str
    user_id: str | None
    period: Literal["day", "week", "month"]
    since: date
    until: date = Field(description="exclusive")
    timezone: Literal["UTC"] = "UTC"
    as_of: datetime = Field(description="the figures include everything recorded before this instant")
    series: list[PeriodView]


def _period_view(p: PeriodReport) -> PeriodView:
    prompt, completion = p.count("tokens", "prompt"), p.count("tokens", "completion")
    latency = p.latency()
    return PeriodView(
        start=p.start, end=p.end,
        messages=MessagesView(total=sum(p.facts.get("messages", {}).values()), by_role=p.messages_by(0),
                              by_channel=p.messages_by(1), by_role_channel=dict(sorted(p.facts.get("messages", {}).items()))),
        active_users=p.count("active", ""), new_conversations=p.count("conversations", "new"),
        intents=p.by("intent"), languages=p.by("language"),
        replies=RepliesView(expected=p.count("replies", "expected"), answered=p.count("replies", "answered"),
                            offline=p.count("replies", "offline"), success_rate=p.success_rate(),
                            latency_ms=LatencyView(p50=latency["p50"], p95=latency["p95"], count=int(latency["count"] or 0))),
        tokens=TokensView(prompt=prompt, completion=completion, total=prompt + completion),
        whatsapp=WhatsAppView(**{k: p.count("whatsapp", k) for k in ("sent", "delivered", "read", "failed")}),
    )


def analytics_view(r: Report) -> AnalyticsView:
    return AnalyticsView(scope="tenant" if r.user_id is None else "user", tenant_id=r.tenant_id, user_id=r.user_id,
                         period=r.period, since=r.since, until=r.until, as_of=r.as_of,
                         series=[_period_view(p) for p in r.series])


def _csv(r: Report) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(csv_rows(r))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="convmem-analytics-{r.period}.csv"'})


def _wants_csv(format: str | None, accept: str | None) -> bool:
    if format is not None:
        return format == "csv"
    types = [part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")]
    return "text/csv" in types and "application/json" not in types


_200 = {"content": {"application/json": {}, "text/csv": {
    "schema": {"type": "string"},
    "example": "period_start,metric,key,value\r\n2026-12-01,messages,total,42\r\n"}},
    "description": "one entry per period; CSV in long form, one figure per row"}


@router.get("/v1/analytics", response_model=AnalyticsView, responses={**ERRORS, 200: _200})
async def analytics(
    ports: Ports,
    caller: Caller,
    period: Annotated[Literal["day", "week", "month"], Query(description="UTC days; weeks start on Monday")] = "day",
    since: Annotated[WrittenDate | None, Query(
        description="first day (YYYY-MM-DD, UTC); default: 30 days, 12 weeks or 12 months before until; "
                    "at or after until: no periods")] = None,
    until: Annotated[WrittenDate | None, Query(
        description="day after the last (exclusive); default: tomorrow. At most 366 days, 260 weeks or 120 "
                    "months (more: 409 range_too_long)")
    ] = None,
    user_id: TenantUser = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="default: from Accept (text/csv), else json")
                      ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> AnalyticsView | Response:
    """Per period: turns by role and channel, active users, new conversations, intents and
    languages of user turns, reply latency p50/p95 and success, model tokens, and the
    WhatsApp delivery funnel. An admin reads the tenant or one `user_id`; anyone else only
    itself. Computed from per-day rollups brought up to date on each request."""
    who = await caller.principal()
    if ports.analytics is None:
        raise unavailable("analytics")
    try:
        report = await analytics_report(ports.analytics, who, period=period, since=since, until=until, user_id=user_id)
    except RangeError as exc:
        raise ApiError(409, "range_too_long", str(exc), fields=[{"field": exc.field, "message": str(exc)}]) from None
    return _csv(report) if _wants_csv(format, accept) else analytics_view(report)
