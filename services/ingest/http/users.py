"""A user's data as a whole (GDPR): erasure and its status, the interaction summary, export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import uuid4

import structlog
from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from contracts import ErasureRequested
from contracts.values import UserId as UserIdValue
from convmem.ports import ErasureStatus
from services.ingest.edge import EdgePorts
from services.ingest.export import export_stream
from services.ingest.http.deps import Caller, Ports
from services.ingest.http.errors import ERRORS, ApiError, publish, unavailable
from services.ingest.http.views import erasure_view, user_summary_view
from services.ingest.principal import Principal, data_subject
from services.ingest.schemas import ErasureView, UserSummaryView

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["privacy"])

UserId = Annotated[UserIdValue, Path()]


@router.delete("/v1/users/{user_id}", status_code=202, response_model=ErasureView, responses=ERRORS)
async def erase_user(user_id: UserId, ports: Ports, caller: Caller) -> ErasureView:
    return erasure_view(await request_erasure(ports, await caller.principal(), user_id))


async def request_erasure(ports: EdgePorts, who: Principal, user_id: str) -> ErasureStatus:
    """Record and publish an erasure of `user_id` (the API's DELETE and the console's)."""
    data_subject(who, user_id)
    send = ports.sink.publish_erasure
    if send is None:
        raise unavailable("erasure")
    status = await ports.privacy.request_erasure(uuid4(), who.tenant_id, user_id, who.subject, datetime.now(UTC))
    if status.status == "requested":  # a pending request is published again: harmless, idempotent
        await publish(send(ErasureRequested(
            request_id=status.request_id, tenant_id=who.tenant_id, user_id=user_id,
            requested_by=who.subject, requested_at=status.requested_at)))
    log.info("erasure_requested", request_id=str(status.request_id))
    return status


@router.get("/v1/users/{user_id}/erasure", response_model=ErasureView, responses=ERRORS)
async def erasure_status(user_id: UserId, ports: Ports, caller: Caller) -> ErasureView:
    who = await caller.principal()
    found = await ports.privacy.erasure_status(who.tenant_id, data_subject(who, user_id))
    if found is None:
        raise ApiError(404, "no_erasure_request", "no erasure was requested for this user")
    return erasure_view(found)


@router.get("/v1/users/{user_id}/summary", response_model=UserSummaryView, responses=ERRORS)
async def user_summary(user_id: UserId, ports: Ports, caller: Caller) -> UserSummaryView:
    who = await caller.principal()
    found = await ports.privacy.user_summary(who.tenant_id, data_subject(who, user_id))
    if found is None:
        raise ApiError(404, "no_summary", "nothing is stored about this user")
    return user_summary_view(user_id, found)


_EXPORT_200 = {"content": {"application/json": {}, "text/csv": {}},
               "description": "everything stored about the user, streamed"}


@router.get("/v1/users/{user_id}/export", responses={**ERRORS, 200: _EXPORT_200}, response_class=StreamingResponse)
async def export_user(user_id: UserId, ports: Ports, caller: Caller,
                      format: Annotated[Literal["json", "csv"], Query()] = "json") -> StreamingResponse:
    who = await caller.principal()
    data_subject(who, user_id)
    media = "application/json" if format == "json" else "text/csv; charset=utf-8"
    log.info("export_started", format=format)
    return StreamingResponse(export_stream(ports.privacy, who.tenant_id, user_id, format), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="convmem-export.{format}"'})
