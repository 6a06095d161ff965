"""The HTTP edge (FastAPI). Thin: authenticate, validate, publish, answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import orjson
import structlog
from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import DeliveryStatusChanged, ErasureRequested, MessageReceived, TurnRecorded, identity
from convmem.errors import RetryableError
from convmem.ports import ConversationFilter, ConversationInfo, ErasureStatus, MemoryScope, Store, TenantPolicy
from convmem.retrieval import Retriever, Stages
from convmem.settings import IngestSettings
from services.ingest import whatsapp
from services.ingest.auth import AuthError, Principal, authenticate
from services.ingest.cursor import CursorError, decode_cursor, encode_cursor
from services.ingest.export import export_stream
from services.ingest.schemas import (
    Accepted,
    ConversationDetail,
    ConversationMessages,
    ConversationPage,
    ConversationView,
    Deleted,
    ErasureView,
    ErrorBody,
    MessageView,
    PatchConversation,
    PostMessage,
    SearchHitView,
    SearchResponse,
    StatsView,
    TenantPolicyView,
    UserSummaryView,
)

log = structlog.get_logger("convmem.ingest")


@dataclass
class EventSink:
    """Where accepted events go; publish returns once Kafka acknowledged (acks=all)."""

    publish_inbound: Callable[[Sequence[MessageReceived]], Awaitable[None]]
    publish_statuses: Callable[[Sequence[DeliveryStatusChanged]], Awaitable[None]]
    kafka_ready: Callable[[], Awaitable[bool]]
    publish_erasure: Callable[[ErasureRequested], Awaitable[None]] | None = None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.fields = status, code, message, headers, fields


def _error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, fields=fields or [])  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 422, 503)
}


def message_view(t: TurnRecorded) -> MessageView:
    return MessageView(message_id=t.message_id, seq=t.seq, role=t.role, content_type=t.content_type, text=t.text,
                       external_id=t.external_id, in_reply_to=t.in_reply_to, occurred_at=t.occurred_at,
                       metadata=t.metadata, language=t.language, intent=t.intent,
                       intent_confidence=t.intent_confidence)


def conversation_view(c: ConversationInfo) -> dict[str, Any]:
    return {"conversation_id": c.conversation_id, "user_id": c.user_id, "channel": c.channel, "title": c.title,
            "title_source": c.title_source, "conversation_type": c.conversation_type, "status": c.status,
            "message_count": c.message_count, "created_at": c.created_at, "updated_at": c.updated_at,
            "last_message_at": c.last_message_at, "metadata": c.metadata}


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ApiError(422, "invalid_request", f"{name} must carry a UTC offset, e.g. 2026-11-23T10:00:00Z",
                       fields=[{"field": name, "message": "timezone offset required"}])


def create_app(settings: IngestSettings, store: Callable[[], Store], sink: Callable[[], EventSink],
               retriever: Callable[[], Retriever] | None = None, lifespan: Any = None) -> FastAPI:
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
        return _error(exc.status, exc.code, exc.message, exc.fields, headers=exc.headers)

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
        if body.role != "user" and not who.roles & {"service", "admin"}:
            raise ApiError(403, "forbidden", "only a service or admin token may post assistant turns")
        tenant = who.tenant_id
        if body.external_id is not None:
            known = await store().message_ref(tenant, body.external_id)
            if known is not None:
                return Accepted(message_id=known[0], conversation_id=known[1], duplicate=True)
        if body.conversation_id is not None:
            owner = await store().conversation(body.conversation_id)
            if owner is not None and ((owner.tenant_id, owner.user_id) != (tenant, body.user_id)
                                      or owner.status == "deleted"):
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
            external_id=body.external_id, channel="http", text=body.text, role=body.role,
            reply_expected=body.reply_expected and body.role == "user",
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
        owner = await readable(principal(authorization), conversation_id)
        turns = await store().conversation_turns(
            MemoryScope(owner.tenant_id, owner.user_id, conversation_id), after_seq, limit + 1)
        if turns is None:
            raise ApiError(404, "conversation_not_found", "no such conversation for this user")
        page = turns[:limit]
        return ConversationMessages(
            conversation_id=conversation_id, messages=[message_view(t) for t in page],
            next_after_seq=page[-1].seq if len(turns) > limit else None,
        )

    async def readable(who: Principal, conversation_id: UUID) -> ConversationInfo:
        info = await store().conversation_info(who.tenant_id, conversation_id)
        # Another user's conversation is indistinguishable from a missing one.
        if info is None or info.status == "deleted" or not who.may_read(info.user_id):
            raise ApiError(404, "conversation_not_found", "no such conversation for this user")
        return info

    def reader_for(who: Principal, user_id: str | None) -> str:
        if user_id is None or user_id == who.subject:
            return who.subject
        if not who.may_read(user_id):
            raise ApiError(403, "forbidden", "a user token may read only its own memory")
        return user_id

    def reader_or_tenant(who: Principal, user_id: str | None) -> str | None:
        """Admins: the named user, or None for the whole tenant; anyone else: themselves."""
        return user_id if "admin" in who.roles else reader_for(who, user_id)

    @app.get("/v1/conversations", response_model=ConversationPage, responses=_ERRORS, tags=["conversations"])
    async def list_conversations(
        authorization: Annotated[str | None, Header()] = None,
        user_id: Annotated[str | None, Query(min_length=1, max_length=256,
                                             description="admins: one user; omit for the whole tenant")] = None,
        status: Annotated[Literal["active", "archived"] | None, Query()] = None,
        conversation_type: Annotated[str | None, Query(alias="type", min_length=1, max_length=64)] = None,
        since: Annotated[datetime | None, Query(description="created at or after")] = None,
        until: Annotated[datetime | None, Query(description="created before")] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> ConversationPage:
        who = principal(authorization)
        _aware("since", since)
        _aware("until", until)
        owner = reader_or_tenant(who, user_id)
        try:
            after = decode_cursor(cursor) if cursor else None
        except CursorError as exc:
            raise ApiError(400, "invalid_cursor", str(exc), fields=[{"field": "cursor", "message": str(exc)}]) from None
        rows = await store().list_conversations(
            ConversationFilter(who.tenant_id, owner, status, conversation_type, since, until, after), limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return ConversationPage(
            conversations=[ConversationView(**conversation_view(c)) for c in page],
            next_cursor=encode_cursor(page[-1].created_at, page[-1].conversation_id) if more else None)

    @app.get("/v1/conversations/{conversation_id}", response_model=ConversationDetail, responses=_ERRORS,
             tags=["conversations"])
    async def get_conversation(
        conversation_id: UUID,
        authorization: Annotated[str | None, Header()] = None,
        after_seq: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> ConversationDetail:
        info = await readable(principal(authorization), conversation_id)
        turns = await store().conversation_turns(
            MemoryScope(info.tenant_id, info.user_id, conversation_id), after_seq, limit + 1) or []
        page = turns[:limit]
        return ConversationDetail(**conversation_view(info), messages=[message_view(t) for t in page],
                                  next_after_seq=page[-1].seq if len(turns) > limit else None)

    @app.patch("/v1/conversations/{conversation_id}", response_model=ConversationView, responses=_ERRORS,
               tags=["conversations"])
    async def patch_conversation(conversation_id: UUID, body: PatchConversation,
                                 authorization: Annotated[str | None, Header()] = None) -> ConversationView:
        info = await readable(principal(authorization), conversation_id)
        if body.title is None and body.status is None:
            raise ApiError(422, "invalid_request", "nothing to change: give title, status or both",
                           fields=[{"field": "body", "message": "title or status required"}])
        updated = await store().update_conversation(info.tenant_id, conversation_id, title=body.title,
                                                    status=body.status)
        if updated is None:
            raise ApiError(404, "conversation_not_found", "no such conversation for this user")
        return ConversationView(**conversation_view(updated))

    @app.delete("/v1/conversations/{conversation_id}", response_model=Deleted, responses=_ERRORS,
                tags=["conversations"])
    async def delete_conversation(conversation_id: UUID,
                                  authorization: Annotated[str | None, Header()] = None) -> Deleted:
        info = await readable(principal(authorization), conversation_id)
        ids = await store().delete_conversation(info.tenant_id, conversation_id)
        # Reads already skip deleted turns (Postgres decides); dropping the vectors is cleanup.
        if retriever is not None:
            await retriever().index.delete(ids)
        log.info("conversation_deleted", conversation_id=str(conversation_id), messages=len(ids))
        return Deleted(conversation_id=conversation_id, messages=len(ids))

    @app.get("/v1/search", response_model=SearchResponse, responses=_ERRORS, tags=["memory"])
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=2000, description="what to look for, in plain words")],
        authorization: Annotated[str | None, Header()] = None,
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        conversation_id: Annotated[UUID | None, Query()] = None,
        since: Annotated[datetime | None, Query(description="turns at or after (RFC 3339)")] = None,
        until: Annotated[datetime | None, Query(description="turns before (RFC 3339)")] = None,
        user_id: Annotated[str | None, Query(min_length=1, max_length=256, description="admins only")] = None,
        mode: Annotated[Literal["hybrid", "fts", "vector"], Query()] = "hybrid",
        stages: Annotated[str | None, Query(
            max_length=100, description="comma list of temporal, neighbours, rerank, or none; default per server")
        ] = None,
    ) -> SearchResponse:
        who = principal(authorization)
        _aware("since", since)
        _aware("until", until)
        if since is not None and until is not None and since >= until:
            raise ApiError(422, "invalid_request", "since must be before until",
                           fields=[{"field": "since", "message": "must be before until"}])
        if retriever is None:
            raise ApiError(503, "unavailable", "search is not configured on this node")
        memory = retriever()
        try:
            chosen = Stages.parse(mode, stages, memory.default)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", str(exc), fields=[{"field": "stages", "message": str(exc)}]) from None
        owner = reader_for(who, user_id)
        if conversation_id is not None:
            info = await readable(who, conversation_id)
            if info.user_id != owner:
                raise ApiError(404, "conversation_not_found", "no such conversation for this user")
        scope = MemoryScope(who.tenant_id, owner, conversation_id, since, until)
        result = await memory.search(q, scope, k, now=datetime.now(UTC), stages=chosen)
        return SearchResponse(
            query=q, mode=chosen.mode, stages=[s for s in ("temporal", "neighbours", "rerank") if getattr(chosen, s)],
            timeframe=None if result.timeframe is None else {"since": result.timeframe.since,
                                                              "until": result.timeframe.until},
            hits=[SearchHitView(message_id=h.turn.message_id, external_id=h.turn.external_id,
                                conversation_id=h.turn.conversation_id, seq=h.turn.seq, role=h.turn.role,
                                text=h.turn.text, occurred_at=h.turn.occurred_at, score=h.score,
                                matched_by=dict(h.ranks), context=[message_view(c) for c in h.context])
                  for h in result.hits])

    @app.get("/v1/stats", response_model=StatsView, responses=_ERRORS, tags=["memory"])
    async def stats(
        authorization: Annotated[str | None, Header()] = None,
        user_id: Annotated[str | None, Query(min_length=1, max_length=256,
                                             description="admins: one user; omit for the whole tenant")] = None,
    ) -> StatsView:
        who = principal(authorization)
        owner = reader_or_tenant(who, user_id)
        st = await store().stats(who.tenant_id, owner)
        return StatsView(scope="tenant" if owner is None else "user", tenant_id=who.tenant_id, user_id=owner,
                         users=st.users, conversations=st.conversations, messages=st.messages, by_role=st.by_role,
                         reply_expected=st.reply_expected, replied=st.replied, success_rate=st.success_rate,
                         first_interaction=st.first_interaction, last_interaction=st.last_interaction)

    def subject(who: Principal, user_id: str) -> str:
        """The user itself, or an admin of its tenant, may act on a user's data as a whole."""
        if not who.may_read(user_id):
            raise ApiError(403, "forbidden", "only the user itself or an admin of its tenant may do this")
        return user_id

    def erasure_view(e: ErasureStatus) -> ErasureView:
        return ErasureView(request_id=e.request_id, user_id=e.user_id, status=e.status, requested_at=e.requested_at,
                           completed_at=e.completed_at, counts=e.counts)

    @app.delete("/v1/users/{user_id}", status_code=202, response_model=ErasureView, responses=_ERRORS,
                tags=["privacy"])
    async def erase_user(user_id: Annotated[str, Path(min_length=1, max_length=256)],
                         authorization: Annotated[str | None, Header()] = None) -> ErasureView:
        who = principal(authorization)
        subject(who, user_id)
        send = sink().publish_erasure
        if send is None:
            raise ApiError(503, "unavailable", "erasure is not configured on this node")
        status = await store().request_erasure(uuid4(), who.tenant_id, user_id, who.subject, datetime.now(UTC))
        if status.status == "requested":  # a pending request is published again: harmless, idempotent
            await publish(send(ErasureRequested(
                request_id=status.request_id, tenant_id=who.tenant_id, user_id=user_id,
                requested_by=who.subject, requested_at=status.requested_at)))
        log.info("erasure_requested", request_id=str(status.request_id))
        return erasure_view(status)

    @app.get("/v1/users/{user_id}/erasure", response_model=ErasureView, responses=_ERRORS, tags=["privacy"])
    async def erasure_status(user_id: Annotated[str, Path(min_length=1, max_length=256)],
                             authorization: Annotated[str | None, Header()] = None) -> ErasureView:
        who = principal(authorization)
        found = await store().erasure_status(who.tenant_id, subject(who, user_id))
        if found is None:
            raise ApiError(404, "no_erasure_request", "no erasure was requested for this user")
        return erasure_view(found)

    @app.get("/v1/users/{user_id}/summary", response_model=UserSummaryView, responses=_ERRORS, tags=["privacy"])
    async def user_summary(user_id: Annotated[str, Path(min_length=1, max_length=256)],
                           authorization: Annotated[str | None, Header()] = None) -> UserSummaryView:
        who = principal(authorization)
        found = await store().user_summary(who.tenant_id, subject(who, user_id))
        if found is None:
            raise ApiError(404, "no_summary", "nothing is stored about this user")
        return UserSummaryView(user_id=user_id, conversations=found.conversations, messages=found.messages,
                               user_messages=found.user_messages, first_interaction=found.first_at,
                               last_interaction=found.last_at, preferred_language=found.preferred_language,
                               languages=found.languages,
                               common_intents=[{"intent": i, "count": n} for i, n in found.common_intents()],
                               updated_at=found.updated_at)

    @app.get("/v1/users/{user_id}/export", responses={**_ERRORS, 200: {"content": {
        "application/json": {}, "text/csv": {}}, "description": "everything stored about the user, streamed"}},
             response_class=StreamingResponse, tags=["privacy"])
    async def export_user(user_id: Annotated[str, Path(min_length=1, max_length=256)],
                          authorization: Annotated[str | None, Header()] = None,
                          format: Annotated[Literal["json", "csv"], Query()] = "json") -> StreamingResponse:
        who = principal(authorization)
        subject(who, user_id)
        media = "application/json" if format == "json" else "text/csv; charset=utf-8"
        log.info("export_started", format=format)
        return StreamingResponse(export_stream(store(), who.tenant_id, user_id, format), media_type=media,
                                 headers={"Content-Disposition": f'attachment; filename="convmem-export.{format}"'})

    @app.get("/v1/tenant/policy", response_model=TenantPolicyView, responses=_ERRORS, tags=["privacy"])
    async def get_policy(authorization: Annotated[str | None, Header()] = None) -> TenantPolicyView:
        who = admin(authorization)
        own = await store().tenant_policy(who.tenant_id)
        return TenantPolicyView.of(own or TenantPolicy(who.tenant_id))

    @app.put("/v1/tenant/policy", response_model=TenantPolicyView, responses=_ERRORS, tags=["privacy"])
    async def put_policy(body: TenantPolicyView, authorization: Annotated[str | None, Header()] = None
                         ) -> TenantPolicyView:
        who = admin(authorization)
        saved = await store().set_tenant_policy(TenantPolicy(
            who.tenant_id, body.pii_mode, body.pii_delay_hours, body.phone_region, body.message_retention_days,
            body.summary_retention_days))
        log.info("tenant_policy_set")
        return TenantPolicyView.of(saved)

    def admin(authorization: str | None) -> Principal:
        who = principal(authorization)
        if "admin" not in who.roles:
            raise ApiError(403, "forbidden", "only an admin of the tenant may read or change its policy")
        return who

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
