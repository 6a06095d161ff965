"""The HTTP edge's FastAPI app: error contract, body-size limit, and one router per resource.
Thin: authenticate, validate, apply the rules (services.ingest.principal, .accepting),
publish, answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response

from convmem.settings import IngestSettings
from services.ingest.edge import EdgePorts
from services.ingest.http import conversations, messages, ops, search, tenant, users, webhooks
from services.ingest.http.deps import Edge
from services.ingest.http.errors import error_response, install_error_handlers
from services.ingest.http.mcp import MCP_PATH, build_mcp, mcp_route


def create_app(settings: IngestSettings, ports: Callable[[], EdgePorts]) -> FastAPI:
    """`ports` is called per request, never here: the app is declared before the lifespan
    builds the adapters (and convmem.docs builds it only to print the OpenAPI document).
    The app's own lifespan runs the MCP server's session manager."""
    server = build_mcp(settings, ports)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    app = FastAPI(title="convmem", version="1.0.0", lifespan=lifespan,
                  description="Conversational memory for chatbots: ingest, history and memory over Kafka; "
                              f"an MCP server (Streamable HTTP) at {MCP_PATH}.")
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

    for module in (ops, messages, conversations, search, users, tenant, webhooks):
        app.include_router(module.router)
    app.router.routes.append(mcp_route(server, settings.jwt_secret.get_secret_value()))
    return app
