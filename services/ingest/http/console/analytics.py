"""Analytics: GET /v1/analytics's series as charts, per day, week or month, for the tenant
or one user (an admin), or for oneself (a user). The same report function and access rule as
the API (services.ingest.analytics), drawn as SVG on the server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.ingest.analytics import RangeError, analytics_report
from services.ingest.edge import EdgePorts
from services.ingest.http.analytics import analytics_view
from services.ingest.http.console.charts import Series, bars, lines
from services.ingest.http.console.render import page
from services.ingest.http.console.session import Signed
from services.ingest.principal import Refused

router = APIRouter(prefix="/console")
TOP = 5  # intents and languages drawn one by one; the rest as "other"


def _top(rows: list[dict[str, int]], label: str) -> list[Series]:
    totals: dict[str, int] = {}
    for row in rows:
        for k, n in row.items():
            totals[k] = totals.get(k, 0) + n
    names = [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]
    out = [Series(n, [float(r.get(n, 0)) for r in rows]) for n in names]
    rest = [float(sum(v for k, v in r.items() if k not in names)) for r in rows]
    if any(rest):
        out.append(Series(f"other {label}", rest))
    return out


@router.get("/analytics")
async def analytics(request: Request, viewer: Signed,
                    period: Annotated[Literal["day", "week", "month"], Query()] = "day",
                    user_id: Annotated[str, Query(max_length=200)] = "") -> Response:
    ports: EdgePorts = request.app.state.edge.ports()
    if ports.analytics is None:
        raise Refused(503, "unavailable", "analytics are not served by this node")
    try:
        report = await analytics_report(ports.analytics, viewer.who, period=period, user_id=user_id.strip() or None,
                                        now=datetime.now(UTC))
    except RangeError as exc:
        raise Refused(422, "invalid_request", f"{exc.field}: {exc}") from None
    view = analytics_view(report)
    s = view.series
    fmt = {"day": "%b %d", "week": "wk of %b %d", "month": "%b %Y"}[period]
    labels = [p.start.strftime(fmt) for p in s]
    roles = sorted({r for p in s for r in p.messages.by_role})
    channels = sorted({c for p in s for c in p.messages.by_channel})
    charts = [
        bars("Messages by role", labels, [Series(r, [float(p.messages.by_role.get(r, 0)) for p in s]) for r in roles]),
        bars("Messages by channel", labels,
             [Series(c, [float(p.messages.by_channel.get(c, 0)) for p in s]) for c in channels]),
        lines("Active users and new conversations", labels,
              [Series("active users", [float(p.active_users) for p in s]),
               Series("new conversations", [float(p.new_conversations) for p in s])]),
        lines("Reply latency", labels, [Series("p50", [p.replies.latency_ms.p50 for p in s]),
                                        Series("p95", [p.replies.latency_ms.p95 for p in s])], unit=" ms"),
        lines("Reply success", labels, [Series("answered / expected",
                                               [None if p.replies.success_rate is None else p.replies.success_rate * 100
                                                for p in s])], unit="%"),
        bars("Intents of user turns", labels, _top([p.intents for p in s], "intents")),
        bars("Languages of user turns", labels, _top([p.languages for p in s], "languages")),
        bars("Model tokens", labels, [Series("prompt", [float(p.tokens.prompt) for p in s]),
                                      Series("completion", [float(p.tokens.completion) for p in s])]),
        lines("WhatsApp replies", labels, [Series(k, [float(getattr(p.whatsapp, k)) for p in s])
                                           for k in ("sent", "delivered", "read", "failed")]),
    ]
    totals = {"messages": sum(p.messages.total for p in s), "active": max((p.active_users for p in s), default=0),
              "conversations": sum(p.new_conversations for p in s),
              "tokens": sum(p.tokens.total for p in s)}
    return page(request, viewer, "analytics.html", view=view, charts=charts, period=period, totals=totals,
                user_id=user_id.strip())
