"""Liveness and readiness, for the process supervisor and the load balancer."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.ingest.http.deps import PortsProvider

router = APIRouter(tags=["ops"])

CHECK_TIMEOUT_S = 3


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"model": dict}})
async def readyz(ports: PortsProvider) -> JSONResponse:
    # The provider is called inside each check: ports that cannot be built mean "not ready".
    checks = {"kafka": False, "postgres": False}
    try:
        await asyncio.wait_for(ports().health.ping(), timeout=CHECK_TIMEOUT_S)
        checks["postgres"] = True
    except Exception:  # noqa: S110 - readiness reports, it does not raise
        pass
    try:
        checks["kafka"] = await asyncio.wait_for(ports().sink.kafka_ready(), timeout=CHECK_TIMEOUT_S)
    except Exception:  # noqa: S110
        pass
    ok = all(checks.values())
    body: dict[str, Any] = {"status": "ready" if ok else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)
