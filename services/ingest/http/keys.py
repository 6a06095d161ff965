"""Data keys for downstream consumers: what opens the `sealed` text of events.

Only `service` tokens of the key's tenant get one, every disclosure is recorded (key, who,
when), and an erased user's key answers 410: what a consumer has not opened by then stays
shut. Consumers may cache a key for as long as Cache-Control says (the same 30 s the
workers cache keys for), which bounds how long an erasure takes to reach them."""

from __future__ import annotations

import base64
from uuid import UUID

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from services.ingest.http.deps import Caller, Ports
from services.ingest.http.errors import ERRORS, ApiError, unavailable
from services.ingest.principal import key_reader
from services.ingest.schemas import ErrorBody, KeyView

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["keys"])

CACHE_S = 30


@router.get("/v1/keys/{key_id}", response_model=KeyView,
            responses={**ERRORS, 410: {"model": ErrorBody, "description": "the user was erased: the key is gone"}})
async def data_key(key_id: UUID, ports: Ports, caller: Caller) -> JSONResponse:
    """The data key `sealed.key_id` names, for a `service` token of its tenant."""
    who = key_reader(await caller.principal())
    if ports.keys is None:
        raise unavailable("data keys")
    found = await ports.keys.disclose_key(key_id, who.tenant_id, who.subject)
    if found is None:
        raise ApiError(404, "key_not_found", "no such key in this tenant")
    if found.secret is None:
        log.info("data_key_refused_erased", key_id=str(key_id), served_to=who.subject)
        raise ApiError(410, "key_destroyed", "the user was erased; events sealed with this key cannot be opened",
                       headers={"Cache-Control": f"private, max-age={CACHE_S}"})
    log.info("data_key_disclosed", key_id=str(key_id), served_to=who.subject)
    view = KeyView(key_id=key_id, tenant_id=found.tenant_id, user_id=found.user_id,
                   key=base64.b64encode(found.secret).decode())
    return JSONResponse(view.model_dump(mode="json"), headers={"Cache-Control": f"private, max-age={CACHE_S}"})
