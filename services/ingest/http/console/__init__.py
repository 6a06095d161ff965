"""The console: convmem in the browser, served by the ingest app under /console. Pages are
rendered on the server from the same domain functions and access rules as the API
(services.ingest.memory, .principal, .export); a little plain script adds live turns. Sign-in
and sessions: session.py. Nothing is built or fetched from elsewhere at run time."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from convmem.errors import RetryableError
from services.ingest.http.console import analytics, memory, people, pipeline, privacy, session, signing
from services.ingest.http.console.render import STATIC, page
from services.ingest.http.errors import ApiError
from services.ingest.principal import AuthError, Refused

PREFIX = "/console"
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ApiError | Refused | AuthError):
        return exc.status, exc.message
    if isinstance(exc, RetryableError):
        return 503, "a backing service is unavailable; try again in a moment"
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        return 422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    return 500, "unexpected error"


def _html_errors(app: FastAPI) -> None:
    """Errors on console paths answer a page, with the API's status; elsewhere the API's JSON."""
    for kind in (ApiError, Refused, AuthError, RetryableError, RequestValidationError, StarletteHTTPException):
        api_handler: Handler = app.exception_handlers[kind]

        async def handler(request: Request, exc: Exception, api_handler: Handler = api_handler) -> Response:
            if not request.url.path.startswith(PREFIX):
                answer = api_handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
            status, message = _status_of(exc)
            return page(request, None, "error.html", status=status, status_code=status, message=message)

        app.exception_handler(kind)(handler)


async def _sign_in_first(request: Request, _: session.SignInNeeded) -> Response:
    return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)


def install(app: FastAPI) -> None:
    for module in (signing, pipeline, analytics, people, memory, privacy):
        app.include_router(module.router, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    app.exception_handler(session.SignInNeeded)(_sign_in_first)
    _html_errors(app)
