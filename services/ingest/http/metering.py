"""Counts and times every HTTP request by route template, method and status
(convmem_http_requests_total, convmem_http_request_seconds). Plain ASGI, outermost, so the
requests the limits refuse are counted as well.

The route label is the template the request matched (/v1/conversations/{conversation_id}),
never the path: ids in paths would make a series per conversation. A request the limits
refused before routing is matched here against the same routes; one that matches none is
`unmatched`. Methods outside the standard set count as `other`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convmem.telemetry import metrics

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not metrics.enabled():
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raised before answering

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            metrics.http_request(route_template(scope), method, status, time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The template of the route that served (or would have served) this request."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    app: Any = scope.get("app")
    router = getattr(app, "router", None)
    if router is None:
        return UNMATCHED
    partial = None
    for route in _flat(router.routes):
        match, _ = route.matches(scope)
        template = getattr(route, "path", None)
        if match is Match.FULL and isinstance(template, str):
            return template
        if match is Match.PARTIAL and partial is None and isinstance(template, str):
            partial = template  # the path matched, the method did not (405): still this route
    return partial or UNMATCHED


def _flat(routes: Sequence[Any]) -> Iterable[Any]:
    """Every route with its full path: recent FastAPI keeps included routers nested."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before nested routers: the app's routes are flat already
        return routes
    return iter_route_contexts(routes)
