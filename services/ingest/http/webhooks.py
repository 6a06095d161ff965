"""WhatsApp (Meta Cloud API): the subscription handshake and signed webhook deliveries."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import PlainTextResponse

from convmem.telemetry import metrics
from services.ingest import whatsapp
from services.ingest.accepting import not_yet_stored
from services.ingest.edge import EdgePorts
from services.ingest.http.deps import EdgeOf, Ports, client_address, whatsapp_signature
from services.ingest.http.errors import ERRORS, ApiError, publish
from services.ingest.schemas import ErrorBody, WebhookAccepted

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["whatsapp"])

# Meta signs the raw body, so the route reads bytes itself; the document still shows a body.
_RAW_JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


@router.get("/webhooks/whatsapp", response_class=PlainTextResponse, openapi_extra={"security": []},
            responses={s: {"model": ErrorBody, "content": {"application/json": {}}} for s in (403, 429)})
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


@router.post("/webhooks/whatsapp", response_model=WebhookAccepted, responses=ERRORS, openapi_extra=_RAW_JSON_BODY,
             dependencies=[Security(whatsapp_signature)])
async def whatsapp_webhook(request: Request, ports: Ports, edge: EdgeOf) -> WebhookAccepted:
    """A delivery is answered 200 only once every event in it is in the log; otherwise 503, so
    Meta delivers it again and the part already published is deduplicated (by wamid). What
    it does not know (a change field, status, message type) is counted and logged, never
    refused; only a bad signature (401) or a body that is not a webhook (400) is."""
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
        delivery = await _read(payload, ports, edge.settings.whatsapp_tenants)
    except whatsapp.WebhookError as exc:
        raise ApiError(400, "invalid_webhook", str(exc)[:500],
                       fields=[{"field": exc.path[:300], "message": exc.reason[:300]}]) from None
    for unknown in delivery.unknown:
        metrics.whatsapp_unknown(unknown.kind)
        log.info("whatsapp_unknown_part", kind=unknown.kind, value=unknown.value, path=unknown.path[:200])
    if delivery.errors:
        # Meta's errors about the change itself: codes and titles, never personal data.
        log.warning("whatsapp_errors_reported", codes=[e.get("code") for e in delivery.errors][:20])
    fresh = await not_yet_stored(ports.lookup, delivery.messages)
    sending = [ports.sink.publish_inbound(fresh)] if fresh else []
    if delivery.statuses:
        sending.append(ports.sink.publish_statuses(delivery.statuses))
    if delivery.amendments and ports.sink.publish_amendments is not None:
        sending.append(ports.sink.publish_amendments(delivery.amendments))
    await publish(_all(sending))
    log.info("whatsapp_webhook", messages=len(delivery.messages), new=len(fresh), statuses=len(delivery.statuses),
             amendments=len(delivery.amendments), unknown=len(delivery.unknown))
    return WebhookAccepted(messages=len(delivery.messages), already_recorded=len(delivery.messages) - len(fresh),
                           statuses=len(delivery.statuses), amendments=len(delivery.amendments),
                           number_changes=len(delivery.number_changes), unknown=len(delivery.unknown))


async def _read(payload: Any, ports: EdgePorts, tenants: dict[str, str]) -> whatsapp.Delivery:
    """The delivery's events, with each WhatsApp user under the id their history is kept by:
    number changes in it are stored first, then every id it names is looked up once."""
    delivery = whatsapp.parse_webhook(payload, tenants)
    if ports.aliases is None:
        return delivery
    for change in delivery.number_changes:
        await ports.aliases.add_aliases(change.tenant_id, change.user_id, change.new_ids, change.occurred_at)
    by_tenant: dict[str, list[str]] = {}
    for tenant, user in delivery.senders:
        by_tenant.setdefault(tenant, []).append(user)
    known = {(tenant, alias): user for tenant, ids in by_tenant.items()
             for alias, user in (await ports.aliases.resolve_aliases(tenant, ids)).items()}
    return whatsapp.parse_webhook(payload, tenants, aliases=known) if known else delivery


async def _all(sending: list[Awaitable[None]]) -> None:
    """Messages and statuses go out together; the first failure is raised once all settled."""
    failures = [r for r in await asyncio.gather(*sending, return_exceptions=True) if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
