"""The HTTP edge's FastAPI app: error contract, body-size limit, and one router per resource.
Thin: authenticate, validate, apply the rules (services.ingest.principal, .accepting),
publish, answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from convmem.settings import IngestSettings
from services.ingest.edge import EdgePorts
from services.ingest.http import conversations, events, keys, messages, ops, search, tenant, users, webhooks
from services.ingest.http.deps import Edge
from services.ingest.http.errors import error_response, install_error_handlers


def create_app(settings: IngestSettings, ports: Callable[[], EdgePorts], lifespan: Any = None) -> FastAPI:
    """`ports` is called per request, never here: the app is declared before the lifespan
    builds the adapters (and convmem.docs builds it only to print the OpenAPI document)."""
    app = FastAPI(title="convmem", version="1.0.0", lifespan=lifespan,
                  description="Conversational memory for chatbots: ingest, history and memory over Kafka.")
    app.state.edge = Edge(settings, ports)
    install_error_handlers(app)

    limit = settings.max_body_bytes

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # Decided on the declared length, before any of the body is read.
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return error_response(413, "body_too_large", f"request body exceeds {limit} bytes")
        return await call_next(request)

    for module in (ops, messages, conversations, search, users, tenant, webhooks, events, keys):
        app.include_router(module.router)
    return app
