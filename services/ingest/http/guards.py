"""ASGI middleware in front of every route: the body-size limit, the per-address rate limit and
security headers. Plain ASGI (not Starlette's BaseHTTPMiddleware), so the body limit sees the
bytes as they arrive, chunked or not."""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.http.errors import ApiError, error_response
from services.ingest.http.limiting import EdgeLimits

# Liveness and readiness probes and metric scrapes come from the platform, often many times a
# second from one address.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# The interactive API pages load their scripts and styles; everything else is JSON or a file.
_DOC_PATHS = ("/docs", "/redoc")


class _TooLarge(Exception):
    pass


class _Gone(Exception):
    pass


class BodyLimit:
    """Reads the whole body before the app runs, refusing it (413) the moment it passes
    `max_bytes` and answering 408 when it does not arrive within `timeout_s`; then hands the app
    the bytes read. So the app (and the webhook's signature check) never sees more than
    `max_bytes`, and memory per request stays under it however the client sends."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is None and "chunked" not in headers.get("transfer-encoding", "").lower():
            await self.app(scope, receive, send)  # no body
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(413, "body_too_large", f"request body exceeds {self.max_bytes} bytes", scope, send)
            return
        try:
            body = await asyncio.wait_for(self._read(receive), self.timeout_s)
        except _TooLarge:
            await self._refuse(413, "body_too_large", f"request body exceeds {self.max_bytes} bytes", scope, send)
            return
        except TimeoutError:
            await self._refuse(408, "body_timeout", f"request body not received within {self.timeout_s:g} s",
                               scope, send)
            return
        except _Gone:
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only a disconnect can follow

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _refuse(status: int, code: str, message: str, scope: Scope, send: Send) -> None:
        # The rest of the body is never read, so this connection cannot carry another request.
        response = error_response(status, code, message, headers={"Connection": "close"})
        await response(scope, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


class AddressLimit:
    """The per-address rate limit, before anything else is done for the request."""

    def __init__(self, app: ASGIApp, limits: EdgeLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.limits.per_ip and scope["path"] not in UNLIMITED_PATHS:
            client = scope.get("client")
            try:
                await self.limits.request_from(client[0] if client else "unknown")
            except ApiError as exc:
                await error_response(exc.status, exc.code, exc.message, headers=exc.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",  # an echoed challenge or a CSV is never run as HTML
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000",  # honoured when served over TLS
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


class SecurityHeaders:
    """Headers every answer carries; answers are personal data, so none is cached either."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope["path"]).startswith(_DOC_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    if not (docs and name == "Content-Security-Policy") and name not in headers:
                        headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)

