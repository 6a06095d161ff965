"""Overview (readiness, lag, dead letters, messages per minute) and the dead letters (list,
one, replay after a dry run): the pipeline as `convmem status` and `convmem dlq` see it,
through the Pipeline port the composition root hands the app. Admins only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from convmem.ports import LetterFilter, Pipeline, Position
from convmem.ports.console import ConsoleAction
from services.ingest.http.console.charts import Series, bars
from services.ingest.http.console.render import number, page
from services.ingest.http.console.session import Admin, changing, ledger_of
from services.ingest.http.deps import Edge, edge_of
from services.ingest.principal import Refused

router = APIRouter(prefix="/console")
MINUTES = 60


def pipeline_of(edge: Edge) -> Pipeline:
    if edge.pipeline is None:
        raise Refused(503, "unavailable", "lag and dead letters are not served by this node")
    return edge.pipeline


async def _ready(edge: Edge) -> dict[str, bool]:
    if edge.probes is not None:
        return await edge.probes.ready()
    ports = edge.ports()
    out = {"kafka": await ports.sink.kafka_ready()}
    try:
        await ports.health.ping()
        out["postgres"] = True
    except Exception:
        out["postgres"] = False
    return out


def per_minute(counts: list[tuple[datetime, int]], now: datetime) -> tuple[list[str], list[float]]:
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=MINUTES - 1)
    by_minute = {at.astimezone(UTC).replace(second=0, microsecond=0): n for at, n in counts}
    minutes = [start + timedelta(minutes=i) for i in range(MINUTES)]
    return [m.strftime("%H:%M") for m in minutes], [float(by_minute.get(m, 0)) for m in minutes]


@router.get("")
async def overview(request: Request, viewer: Admin) -> Response:
    edge = edge_of(request)
    now = datetime.now(UTC)
    status = await pipeline_of(edge).status(viewer.who.tenant_id)
    counts = await ledger_of(request).messages_per_minute(viewer.who.tenant_id, now - timedelta(minutes=MINUTES))
    labels, values = per_minute(counts, now)
    chart = bars("Messages per minute, last hour (UTC)", labels, [Series("messages", values)])
    groups = sorted(status.get("consumer_groups", []), key=lambda g: (-g["lag"], g["group"]))
    prefix = f"{status.get('group_prefix', '')}."
    for g in groups:
        g["name"] = g["group"].removeprefix(prefix)
        stamps = [p["oldest_pending_at"] for p in g["partitions"] if p["oldest_pending_at"] and p["lag"]]
        g["oldest"] = min(stamps) if stamps else None
    return page(request, viewer, "overview.html", ready=await _ready(edge), state=status, groups=groups,
                dead=status.get("dead_letters", {}), chart=chart, total_last_hour=int(sum(values)), now=now)


def _filter(tenant: str, topic: str | None, group: str | None, reason: str | None, hours: float | None,
            position: str | None = None) -> LetterFilter:
    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    try:
        positions = (Position.parse(position),) if position else ()
    except ValueError as exc:
        raise Refused(422, "invalid_request", str(exc)) from None
    return LetterFilter(topic=topic or None, group=group or None, reason=reason or None, since=since,
                        positions=positions, tenant=tenant)


Text = Annotated[str | None, Query(max_length=200)]


@router.get("/dead-letters")
async def dead_letters(request: Request, viewer: Admin, topic: Text = None, group: Text = None,
                       reason: Text = None, hours: Annotated[str, Query(max_length=20)] = "",
                       limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    pipe = pipeline_of(edge_of(request))
    which = _filter(viewer.who.tenant_id, topic, group, reason, number(hours, "last hours", 0, 24 * 30))
    found = await pipe.dead_letters(which, limit)
    status = await pipe.status(viewer.who.tenant_id)
    return page(request, viewer, "dead_letters.html", found=found, sizes=status.get("dead_letters", {}),
                chosen={"topic": topic or "", "group": group or "", "reason": reason or "", "hours": hours})


@router.get("/dead-letters/{position}")
async def dead_letter(request: Request, viewer: Admin, position: str) -> Response:
    try:
        where = Position.parse(position)
    except ValueError as exc:
        raise Refused(422, "invalid_request", str(exc)) from None
    found = await pipeline_of(edge_of(request)).dead_letter(where, viewer.who.tenant_id)
    if found is None:
        raise Refused(404, "not_found", f"no dead letter at {where}")
    return page(request, viewer, "dead_letter.html", letter=found, event=json.dumps(found["event"], indent=2))


@router.post("/dead-letters/replay")
async def replay(request: Request, viewer: Admin) -> Response:
    """A dry run first (the form's default); the page it answers offers the real replay of
    the same selection."""
    fields = await changing(request, viewer)
    hours = number(fields.get("hours", ""), "last hours", 0, 24 * 30)
    which = _filter(viewer.who.tenant_id, fields.get("topic"), fields.get("group"), fields.get("reason"), hours,
                    fields.get("position"))
    dry_run = fields.get("dry_run", "1") != "0"
    report: dict[str, Any] = await pipeline_of(edge_of(request)).replay(which, dry_run)
    if not dry_run:
        await ledger_of(request).record_action(ConsoleAction(
            viewer.who.tenant_id, viewer.who.subject, "dlq_replay", None, datetime.now(UTC),
            {"replayed": report["replayed"], "already_replayed": report["already_replayed"],
             "positions": [r["position"] for r in report["records"]][:100]}))
    return page(request, viewer, "replay.html", report=report, selection=fields)
