"""WhatsApp (Meta Cloud API): the subscription handshake and signed webhook deliveries."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from services.ingest import whatsapp
from services.ingest.accepting import not_yet_stored
from services.ingest.http.deps import EdgeOf, Ports, client_address
from services.ingest.http.errors import ERRORS, ApiError, publish
from services.ingest.schemas import ErrorBody

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["whatsapp"])

# Meta signs the raw body, so the route reads bytes itself; the document still shows a body.
_RAW_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


@router.get("/webhooks/whatsapp", response_class=PlainTextResponse,
            responses={403: {"model": ErrorBody}, 429: {"model": ErrorBody}})
async def whatsapp_verify(
    request: Request,
    edge: EdgeOf,
    mode: Annotated[str | None, Query(alias="hub.mode", max_length=64)] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token", max_length=1024)] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=1024)] = None,
) -> PlainTextResponse:
    address = client_address(request)
    await edge.limits.before_verify(address)  # guessing the verify token is throttled per address
    expected = edge.settings.whatsapp_verify_token.get_secret_value().encode()
    if mode == "subscribe" and token is not None and challenge is not None \
            and hmac.compare_digest(token.encode("utf-8", "replace"), expected):
        return PlainTextResponse(challenge)
    await edge.limits.verify_failed(address)
    raise ApiError(403, "verification_failed", "hub.mode or hub.verify_token does not match")


@router.post("/webhooks/whatsapp", responses=ERRORS, openapi_extra=_RAW_JSON_BODY)
async def whatsapp_webhook(request: Request, ports: Ports, edge: EdgeOf) -> dict[str, Any]:
    """A delivery is answered 200 only once every event in it is in the log; otherwise 503, so
    Meta delivers it again and the part already published is deduplicated (by wamid)."""
    address = client_address(request)
    await edge.limits.before_verify(address)
    raw = await request.body()  # at most max_body_bytes: the body limit read it first
    app_secret = edge.settings.whatsapp_app_secret.get_secret_value().encode()
    if not whatsapp.signature_valid(app_secret, raw, request.headers.get(whatsapp.SIGNATURE_HEADER)):
        await edge.limits.verify_failed(address)
        raise ApiError(401, "bad_signature", f"{whatsapp.SIGNATURE_HEADER} is missing or does not match the body")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "webhook body is not valid JSON") from None
    try:
        messages, statuses = whatsapp.parse_webhook(payload, edge.settings.whatsapp_tenants)
    except whatsapp.WebhookError as exc:
        raise ApiError(400, "invalid_webhook", str(exc)[:500],
                       fields=[{"field": exc.path[:300], "message": exc.reason[:300]}]) from None
    fresh = await not_yet_stored(ports.lookup, messages)
    sending = [ports.sink.publish_inbound(fresh)] if fresh else []
    if statuses:
        sending.append(ports.sink.publish_statuses(statuses))
    await publish(_all(sending))
    log.info("whatsapp_webhook", messages=len(messages), new=len(fresh), statuses=len(statuses))
    return {"status": "accepted", "messages": len(fresh), "duplicates": len(messages) - len(fresh),
            "statuses": len(statuses)}


async def _all(sending: list[Awaitable[None]]) -> None:
    """Messages and statuses go out together; the first failure is raised once all settled."""
    failures = [r for r in await asyncio.gather(*sending, return_exceptions=True) if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
