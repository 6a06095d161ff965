"""WhatsApp (Meta Cloud API): the subscription handshake and signed webhook deliveries."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from services.ingest import whatsapp
from services.ingest.accepting import not_yet_stored
from services.ingest.http.deps import Ports, Settings
from services.ingest.http.errors import ERRORS, ApiError, publish
from services.ingest.schemas import ErrorBody

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["whatsapp"])

# Meta signs the raw body, so the route reads bytes itself; the document still shows a body.
_RAW_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


@router.get("/webhooks/whatsapp", response_class=PlainTextResponse, responses={403: {"model": ErrorBody}})
async def whatsapp_verify(
    settings: Settings,
    mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
) -> PlainTextResponse:
    expected = settings.whatsapp_verify_token.get_secret_value()
    if mode == "subscribe" and token is not None and challenge is not None \
            and hmac.compare_digest(token.encode(), expected.encode()):
        return PlainTextResponse(challenge)
    raise ApiError(403, "verification_failed", "hub.mode or hub.verify_token does not match")


@router.post("/webhooks/whatsapp", responses=ERRORS, openapi_extra=_RAW_JSON_BODY)
async def whatsapp_webhook(request: Request, ports: Ports, settings: Settings) -> dict[str, Any]:
    raw = await request.body()
    app_secret = settings.whatsapp_app_secret.get_secret_value().encode()
    if not whatsapp.signature_valid(app_secret, raw, request.headers.get(whatsapp.SIGNATURE_HEADER)):
        raise ApiError(401, "bad_signature", f"{whatsapp.SIGNATURE_HEADER} is missing or does not match the body")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "webhook body is not valid JSON") from None
    try:
        messages, statuses = whatsapp.parse_webhook(payload, settings.whatsapp_tenants)
    except (whatsapp.WebhookError, ValueError) as exc:
        raise ApiError(400, "invalid_webhook", str(exc)[:500]) from None
    fresh = await not_yet_stored(ports.lookup, messages)
    if fresh:
        await publish(ports.sink.publish_inbound(fresh))
    if statuses:
        await publish(ports.sink.publish_statuses(statuses))
    log.info("whatsapp_webhook", messages=len(messages), new=len(fresh), statuses=len(statuses))
    return {"status": "accepted", "messages": len(fresh), "duplicates": len(messages) - len(fresh),
            "statuses": len(statuses)}
