"""What escapes a route: every exception the error handlers did not map still answers the
error contract in JSON, never Starlette's plain-text `500 Internal Server Error`. A failure of
a backing service (Postgres, Kafka, the vector index, a model; whichever library raised it,
translated by an adapter or not) is a 503 the client may retry; anything else is a bug, a
JSON 500 logged with its traceback."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convmem.errors import RetryableError
from services.ingest.http.errors import error_response

log = structlog.get_logger("convmem.ingest")

# The client libraries of the services behind the edge: an exception of theirs that an adapter
# did not translate (asyncpg's InternalClientError during a Postgres restart, say) still means
# that service failed, not that the request was wrong.
BACKING_LIBRARIES = frozenset({"asyncpg", "aiokafka", "kafka", "faststream", "httpx", "httpcore", "openai",
                               "qdrant_client", "qdrant_edge", "grpc", "onnxruntime"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def backing_service_failure(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) is a backing service failing."""
    for e in _chain(exc):
        if isinstance(e, RetryableError | OSError | TimeoutError):
            return True
        if any(cls.__module__.split(".")[0] in BACKING_LIBRARIES for cls in type(e).__mro__):
            return True
    return False


class Failures:
    """Innermost middleware: every other one (headers, metrics) sees the JSON answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:  # a stream that broke after its first bytes: nothing else can be said
                raise
            if backing_service_failure(exc):
                log.warning("dependency_unavailable", error=type(exc).__name__,
                            causes=[type(e).__name__ for e in _chain(exc)][1:])
                response = error_response(503, "unavailable", "a backing service is unavailable; retry later",
                                          headers={"Retry-After": "2"})
            else:
                log.error("request_failed", error=type(exc).__name__, exc_info=exc)
                response = error_response(500, "internal_error", "the server failed to handle this request")
            await response(scope, receive, send)
