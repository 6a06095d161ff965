"""Privacy actions: export a user's data (JSON or CSV, as GET /v1/users/{id}/export) and
erase a user (as DELETE /v1/users/{id}) behind a confirmation that names the user. Every
action, and who took it when, is recorded in Postgres and listed here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from convmem.ports.console import ConsoleAction
from services.ingest.edge import EdgePorts
from services.ingest.export import export_stream
from services.ingest.http.console.render import page
from services.ingest.http.console.session import Admin, Signed, changing, ledger_of
from services.ingest.http.users import UserId, request_erasure
from services.ingest.principal import Refused, data_subject

router = APIRouter(prefix="/console")
SHOWN = 25
# What this page lists; sign-ins are recorded too, and listed on each user's page.
KINDS = ("export", "erase", "delete_conversation", "dlq_replay")


async def _recent(request: Request, tenant_id: str) -> list[ConsoleAction]:
    return await ledger_of(request).actions(tenant_id, SHOWN, kinds=KINDS)


@router.get("/privacy")
async def privacy(request: Request, viewer: Admin, user_id: Annotated[str, Query(max_length=200)] = "") -> Response:
    ports: EdgePorts = request.app.state.edge.ports()
    subject = user_id.strip()
    summary = await ports.privacy.user_summary(viewer.who.tenant_id, subject) if subject else None
    erasure = await ports.privacy.erasure_status(viewer.who.tenant_id, subject) if subject else None
    actions = await _recent(request, viewer.who.tenant_id)
    return page(request, viewer, "privacy.html", user_id=subject, summary=summary, erasure=erasure,
                actions=actions, error=None)


@router.post("/users/{user_id}/export")
async def export(request: Request, viewer: Signed, user_id: UserId) -> Response:
    fields = await changing(request, viewer)
    subject = data_subject(viewer.who, user_id)
    fmt: Literal["json", "csv"] = "csv" if fields.get("format") == "csv" else "json"
    ports: EdgePorts = request.app.state.edge.ports()
    await ledger_of(request).record_action(ConsoleAction(viewer.who.tenant_id, viewer.who.subject, "export", subject,
                                                         datetime.now(UTC), {"format": fmt}))
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    return StreamingResponse(export_stream(ports.privacy, viewer.who.tenant_id, subject, fmt), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="convmem-export.{fmt}"'})


@router.post("/users/{user_id}/erase")
async def erase(request: Request, viewer: Admin, user_id: UserId) -> Response:
    fields = await changing(request, viewer)
    ports: EdgePorts = request.app.state.edge.ports()
    if fields.get("confirm", "") != user_id:
        actions = await _recent(request, viewer.who.tenant_id)
        summary = await ports.privacy.user_summary(viewer.who.tenant_id, user_id)
        erasure = await ports.privacy.erasure_status(viewer.who.tenant_id, user_id)
        return page(request, viewer, "privacy.html", status=422, user_id=user_id, summary=summary,
                    erasure=erasure, actions=actions,
                    error=f"Nothing was erased: type the user id {user_id!r} exactly to confirm.")
    if ports.sink.publish_erasure is None:
        raise Refused(503, "unavailable", "erasure is not served by this node")
    status = await request_erasure(ports, viewer.who, user_id)
    await ledger_of(request).record_action(ConsoleAction(
        viewer.who.tenant_id, viewer.who.subject, "erase", user_id, datetime.now(UTC),
        {"request_id": str(status.request_id), "status": status.status}))
    actions = await _recent(request, viewer.who.tenant_id)
    return page(request, viewer, "privacy.html", user_id=user_id, summary=None, erasure=status, actions=actions,
                error=None)
