"""The edge's error contract: every 4xx/5xx answers an ErrorBody (`error` code, `message`,
`fields`), whatever raised it: FastAPI validation, an authorization rule, a dependency
outage or an unknown path."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from convmem.errors import PublishUnconfirmed, RetryableError
from services.ingest.accepting import Unacceptable
from services.ingest.principal import AuthError, Refused
from services.ingest.schemas import ErrorBody, ErrorField

log = structlog.get_logger("convmem.ingest")

# The error statuses the API operations document (each answers an ErrorBody).
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody}
                                           for s in (400, 401, 403, 404, 409, 413, 422, 429, 503)}

# A last bound around publishers that do not bound themselves (the Kafka outlets give up
# within CONVMEM_PUBLISH_TIMEOUT_S, at most 60 s, knowing what they handed over).
_PUBLISH_BOUND_S = 65.0


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 fields: list[dict[str, str]] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.fields = status, code, message, headers, fields
        self.extra = extra  # more members of the body, beside the ErrorBody ones


class PublishUnknown(Exception):
    """The event log took the events and did not confirm them: they may be published, now or
    later. The route that published says which ids they carry."""


def error_response(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None,
                   headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, fields=[ErrorField(**f) for f in fields or []])
    return JSONResponse(body.model_dump() | (extra or {}), status_code=status, headers=headers)


def unavailable(what: str) -> ApiError:
    return ApiError(503, "unavailable", f"{what} is not configured on this node")


async def publish(sending: Awaitable[None]) -> None:
    """Wait for Kafka's acknowledgement; an event log that did not take the event is a 503,
    never a 500, so producers retry (their external id makes the retry harmless). PublishUnknown
    when the producer holds events it could not get acknowledged: they may still go out."""
    try:
        await asyncio.wait_for(sending, timeout=_PUBLISH_BOUND_S)
    except (PublishUnconfirmed, TimeoutError) as exc:
        log.warning("publish_unconfirmed", error=type(exc).__name__)
        raise PublishUnknown() from exc
    except RetryableError:
        raise
    except Exception as exc:  # aiokafka/FastStream errors before the hand-off: the event log did not take it
        log.warning("publish_failed", error=type(exc).__name__)
        raise ApiError(503, "unavailable", "the event log is unavailable; retry later",
                       {"Retry-After": "2"}) from exc


def unknown_outcome(what: str, extra: dict[str, Any]) -> ApiError:
    """The 503 for PublishUnknown, naming the ids the events carry (`extra`)."""
    return ApiError(503, "outcome_unknown", f"the event log did not confirm {what} in time: it may still be "
                    "recorded. Retry with the same Idempotency-Key (or external_id): it is then recorded once, "
                    "with the ids given here", {"Retry-After": "2"}, extra={"outcome": "unknown", **extra})


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "message": e["msg"]}
              for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return error_response(400, "malformed_json", "request body is not valid JSON", fields)
    return error_response(422, "invalid_request", "request failed validation", fields)


async def _api(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.fields, headers=exc.headers, extra=exc.extra)


async def _unknown(_: Request, exc: PublishUnknown) -> JSONResponse:
    return error_response(503, "outcome_unknown", "the event log did not confirm these events in time: they may "
                          "still be recorded; a retry is deduplicated by the ids they carry",
                          headers={"Retry-After": "2"}, extra={"outcome": "unknown"})


async def _unauthenticated(_: Request, exc: AuthError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})


async def _refused(_: Request, exc: Refused) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message)


async def _unacceptable(_: Request, exc: Unacceptable) -> JSONResponse:
    return error_response(409, "outside_retention", exc.message, [{"field": exc.field, "message": exc.message}])


async def _unavailable(_: Request, exc: RetryableError) -> JSONResponse:
    log.warning("dependency_unavailable", error=str(exc))
    return error_response(503, "unavailable", "a backing service is unavailable; retry later",
                          headers={"Retry-After": "2"})


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (RFC 9110: a 405 names them all). The
    router's own header names only the first route it matched, and a path's methods are
    often spread over several routes (GET and POST /v1/conversations)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        served = getattr(route, "methods", None)
        regex = getattr(route, "path_regex", None)
        if served and regex is not None and regex.match(request.url.path):
            methods |= served
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    # The decorator form types each handler by the exception it takes.
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(ApiError)(_api)
    app.exception_handler(PublishUnknown)(_unknown)
    app.exception_handler(AuthError)(_unauthenticated)
    app.exception_handler(Refused)(_refused)
    app.exception_handler(Unacceptable)(_unacceptable)
    app.exception_handler(RetryableError)(_unavailable)
    app.exception_handler(StarletteHTTPException)(_http)
