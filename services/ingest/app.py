"""The HTTP edge (FastAPI). Thin: authenticate, validate, publish, answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import orjson
import structlog
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import DeliveryStatusChanged, MessageReceived, identity
from convmem.errors import RetryableError
from convmem.ports import MemoryScope, Store
from convmem.settings import IngestSettings
from services.ingest import whatsapp
from services.ingest.auth import AuthError, Principal, authenticate
from services.ingest.schemas import Accepted, ConversationMessages, ErrorBody, MessageView, PostMessage

log = structlog.get_logger("convmem.ingest")


@dataclass
class EventSink:
    """Where accepted events go; publish returns once Kafka acknowledged (acks=all)."""

    publish_inbound: Callable[[Sequence[MessageReceived]], Awaitable[None]]
    publish_statuses: Callable[[Sequence[DeliveryStatusChanged]], Awaitable[None]]
    kafka_ready: Callable[[], Awaitable[bool]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def _error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, fields=fields or [])  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 422, 503)
}


def create_app(settings: IngestSettings, store: Callable[[], Store], sink: Callable[[], EventSink],
               lifespan: Any = None) -> FastAPI:
    app = FastAPI(title="convmem", version="1.0.0", lifespan=lifespan,
                  description="Conversational memory for chatbots: ingest, history and memory over Kafka.")
    jwt_secret = settings.jwt_secret.get_secret_value()
    app_secret = settings.whatsapp_app_secret.get_secret_value().encode()
    verify_token = settings.whatsapp_verify_token.get_secret_value()

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "message": e["msg"]}
                  for e in exc.errors()]
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return _error(400, "malformed_json", "request body is not valid JSON", fields)
        return _error(422, "invalid_request", "request failed validation", fields)

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RetryableError)
    async def _unavailable(_: Request, exc: RetryableError) -> JSONResponse:
        log.warning("dependency_unavailable", error=str(exc))
        return _error(503, "unavailable", "a backing service is unavailable; retry later",
                      headers={"Retry-After": "2"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return _error(413, "body_too_large", f"request body exceeds {settings.max_body_bytes} bytes")
        return await call_next(request)

    def principal(authorization: str | None) -> Principal:
        return authenticate(authorization, jwt_secret)

    async def publish(coro: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(coro, timeout=15)
        except RetryableError:
            raise
        except Exception as exc:  # aiokafka/FastStream errors: the event log did not take it
            log.warning("publish_failed", error=type(exc).__name__)
            raise ApiError(503, "unavailable", "the event log is unavailable; retry later",
                           {"Retry-After": "2"}) from exc

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": dict}})
    async def readyz() -> JSONResponse:
        checks = {"kafka": False, "postgres": False}
        try:
            await asyncio.wait_for(store().ping(), timeout=3)
            checks["postgres"] = True
        except Exception:  # noqa: S110 - readiness reports, it does not raise
            pass
        try:
            checks["kafka"] = await asyncio.wait_for(sink().kafka_ready(), timeout=3)
        except Exception:  # noqa: S110
            pass
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks},
                            status_code=200 if ok else 503)

    @app.post("/v1/messages", status_code=202, response_model=Accepted, responses=_ERRORS, tags=["messages"])
    async def post_message(body: PostMessage,
                           authorization: Annotated[str | None, Header()] = None) -> Accepted:
        who = principal(authorization)
        if not who.may_act_for(body.user_id):
            raise ApiError(403, "forbidden", "a user token may post only as its own user_id")
        tenant = who.tenant_id
        if body.external_id is not None:
            known = await store().message_ref(tenant, body.external_id)
            if known is not None:
                return Accepted(message_id=known[0], conversation_id=known[1], duplicate=True)
        if body.conversation_id is not None:
            owner = await store().conversation(body.conversation_id)
            if owner is not None and (owner.tenant_id, owner.user_id) != (tenant, body.user_id):
                raise ApiError(404, "conversation_not_found", "no such conversation for this user")
            conversation_id = body.conversation_id
        elif body.external_id is not None:
            conversation_id = identity.conversation_id_for_external(tenant, body.external_id)
        else:
            conversation_id = uuid4()
        message_id = (identity.message_id_for_external(tenant, body.external_id)
                      if body.external_id is not None else uuid4())
        event = MessageReceived(
            tenant_id=tenant, user_id=body.user_id, conversation_id=conversation_id, message_id=message_id,
            external_id=body.external_id, channel="http", text=body.text,
            occurred_at=body.occurred_at or datetime.now(UTC), metadata=body.metadata,
        )
        await publish(sink().publish_inbound([event]))
        log.info("message_accepted", message_id=str(message_id), conversation_id=str(conversation_id),
                 event_id=str(event.event_id), channel="http")
        return Accepted(message_id=message_id, conversation_id=conversation_id, duplicate=False)

    @app.get("/v1/conversations/{conversation_id}/messages", response_model=ConversationMessages,
             responses=_ERRORS, tags=["history"])
    async def conversation_messages(
        conversation_id: UUID,
        authorization: Annotated[str | None, Header()] = None,
        after_seq: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> ConversationMessages:
        who = principal(authorization)
        owner = await store().conversation(conversation_id)
        # Another user's conversation is indistinguishable from a missing one.
        if owner is None or owner.tenant_id != who.tenant_id or not who.may_read(owner.user_id):
            raise ApiError(404, "conversation_not_found", "no such conversation for this user")
        turns = await store().conversation_turns(
            MemoryScope(owner.tenant_id, owner.user_id, conversation_id), after_seq, limit + 1)
        if turns is None:
            raise ApiError(404, "conversation_not_found", "no such conversation for this user")
        page = turns[:limit]
        return ConversationMessages(
            conversation_id=conversation_id,
            messages=[MessageView(message_id=t.message_id, seq=t.seq, role=t.role, content_type=t.content_type,
                                  text=t.text, external_id=t.external_id, in_reply_to=t.in_reply_to,
                                  occurred_at=t.occurred_at, metadata=t.metadata) for t in page],
            next_after_seq=page[-1].seq if len(turns) > limit else None,
        )

    @app.get("/webhooks/whatsapp", response_class=PlainTextResponse, tags=["whatsapp"],
             responses={403: {"model": ErrorBody}})
    async def whatsapp_verify(
        mode: Annotated[str | None, Query(alias="hub.mode")] = None,
        token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
        challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
    ) -> PlainTextResponse:
        import hmac

        if mode == "subscribe" and token is not None and challenge is not None \
                and hmac.compare_digest(token.encode(), verify_token.encode()):
            return PlainTextResponse(challenge)
        raise ApiError(403, "verification_failed", "hub.mode or hub.verify_token does not match")

    @app.post("/webhooks/whatsapp", tags=["whatsapp"], responses=_ERRORS,
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}})
    async def whatsapp_webhook(request: Request) -> dict[str, Any]:
        raw = await request.body()
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
        # Meta redelivers for days: skip what is already stored (the recorder dedupes the rest).
        fresh = [m for m in messages if m.external_id is None
                 or await store().message_ref(m.tenant_id, m.external_id) is None]
        if fresh:
            await publish(sink().publish_inbound(fresh))
        if statuses:
            await publish(sink().publish_statuses(statuses))
        log.info("whatsapp_webhook", messages=len(messages), new=len(fresh), statuses=len(statuses))
        return {"status": "accepted", "messages": len(fresh), "duplicates": len(messages) - len(fresh),
                "statuses": len(statuses)}

    return app
