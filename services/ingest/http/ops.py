"""Liveness, readiness and metrics, for the process supervisor, the load balancer and
Prometheus. The answers are the process's (every role it runs, convmem.ops.probes), the same as
a worker-only process gives on its ops listener."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from convmem.ops.probes import Check, live_answer, ready_answer
from convmem.telemetry import metrics
from services.ingest.edge import EdgePorts
from services.ingest.http.deps import Edge, EdgeOf, PortsProvider

router = APIRouter(tags=["ops"])
# Probes and the scrape answer anyone who reaches the port (keep it off the public network).
PUBLIC: dict[str, Any] = {"security": []}


@router.get("/healthz", responses={503: {"model": dict}}, openapi_extra=PUBLIC)
async def healthz(edge: EdgeOf) -> JSONResponse:
    status, body = await live_answer(edge.probes)
    return JSONResponse(body, status_code=status)


@router.get("/readyz", responses={503: {"model": dict}}, openapi_extra=PUBLIC)
async def readyz(edge: EdgeOf, ports: PortsProvider) -> JSONResponse:
    status, body = await ready_answer(readiness_checks(edge, ports))
    return JSONResponse(body, status_code=status)


def readiness_checks(edge: Edge, ports: Callable[[], EdgePorts]) -> Mapping[str, Check]:
    """The process's checks (every role it runs), or the edge's own when it has no probes."""
    checks: Mapping[str, Check]
    if edge.probes is not None:
        checks = edge.probes.checks
    else:
        # An edge without the process's probes (its own tests) checks what it uses itself. The
        # provider is called inside each check: ports that cannot be built mean "not ready".
        async def kafka() -> bool:
            return await ports().sink.kafka_ready()

        async def postgres() -> None:
            await ports().health.ping()

        checks = {"kafka": kafka, "postgres": postgres}
    return checks


@router.get("/metrics", response_class=Response, openapi_extra=PUBLIC,
            responses={200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text format"}})
async def scrape(edge: EdgeOf) -> Response:
    body = await edge.probes.scrape() if edge.probes is not None else metrics.render()
    return Response(body, media_type=metrics.CONTENT_TYPE)
