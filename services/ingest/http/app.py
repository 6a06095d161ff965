"""The HTTP edge's FastAPI app: error contract, abuse limits, and one router per resource.
Thin: authenticate, validate, apply the rules (services.ingest.principal, .accepting),
publish, answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from contracts.values import JSON_VALUE_SCHEMA
from convmem.ops.probes import Probes
from convmem.ports import Pipeline, SigningKeys
from convmem.settings import IngestSettings
from services.ingest.edge import EdgePorts
from services.ingest.http import (
    analytics,
    console,
    conversations,
    events,
    keys,
    messages,
    ops,
    overview,
    search,
    sockets,
    tenant,
    tickets,
    users,
    webhooks,
)
from services.ingest.http.deps import Edge
from services.ingest.http.errors import install_error_handlers
from services.ingest.http.failures import Failures
from services.ingest.http.guards import AddressLimit, BodyLimit, SecurityHeaders
from services.ingest.http.limiting import EdgeLimits
from services.ingest.http.mcp import MCP_PATH, build_mcp, mcp_operations, mcp_route
from services.ingest.http.metering import RequestMetrics
from services.ingest.tokens import TokenPolicy, TokenVerifier

# What browsers may send from an allowed origin: a reconnecting event stream sends
# Last-Event-ID (a fetch-based one sets it itself, so it is preflighted), posts carry
# Idempotency-Key. And what their scripts may read of an answer.
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key"]
CORS_EXPOSED_HEADERS = ["Retry-After", "WWW-Authenticate", "Location", "Idempotency-Key"]


def token_verifier(settings: IngestSettings, keys: SigningKeys | None) -> TokenVerifier:
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret is not None else None
    return TokenVerifier(TokenPolicy(secret=secret, issuer=settings.jwt_issuer, audience=settings.jwt_audience,
                                     max_lifetime_s=settings.jwt_max_lifetime_s, leeway_s=settings.jwt_leeway_s),
                         keys)


def create_app(settings: IngestSettings, ports: Callable[[], EdgePorts], lifespan: Any = None,
               signing_keys: SigningKeys | None = None, probes: Probes | None = None,
               pipeline: Pipeline | None = None) -> FastAPI:
    """`ports` is called per request, never here: the app is declared before the lifespan
    builds the adapters (and convmem.docs builds it only to print the OpenAPI document).
    `signing_keys`: the identity provider's keys, when RS256/ES256 tokens are accepted.
    The app's lifespan runs the MCP server's session manager (around `lifespan`, if given).
    `probes`: the process's readiness, liveness and metrics (all its roles), when it has them.
    `pipeline`: consumer lag and dead letters, for the console's pages."""
    server = build_mcp(settings, ports)

    @asynccontextmanager
    async def serving(app: FastAPI) -> AsyncIterator[None]:
        async with server.session_manager.run():
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield

    app = FastAPI(title="convmem", version="1.0.0", lifespan=serving,
                  description="Conversational memory for chatbots: ingest, history and memory over Kafka; "
                              f"an MCP server (Streamable HTTP) at {MCP_PATH}.",
                  servers=[{"url": "/", "description": "the convmem ingest node serving this document"}])
    limits = EdgeLimits(settings)
    app.state.edge = Edge(settings, ports, token_verifier(settings, signing_keys), limits, probes, pipeline)
    install_error_handlers(app)
    # Outermost last: security headers on every answer, CORS (preflights are never limited),
    # the per-address limit, then the body limit, before any route reads a byte; innermost,
    # what no handler mapped becomes a JSON 503 (a backing service) or 500.
    app.add_middleware(Failures)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(AddressLimit, limits=limits)
    if settings.cors_allow_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_allow_origins,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=CORS_REQUEST_HEADERS, expose_headers=CORS_EXPOSED_HEADERS,
                           allow_credentials=False, max_age=600)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)  # outermost: requests refused by the limits are counted too
    for module in (ops, messages, conversations, search, users, tenant, webhooks, events, tickets, sockets, keys,
                   analytics, overview):
        app.include_router(module.router)
    app.router.routes.append(mcp_route(server))
    console.install(app)
    document_extras(app)
    return app


def document_extras(app: FastAPI) -> None:
    """What FastAPI cannot see from the routes: the MCP endpoint (a plain ASGI route), and the
    recursive schema of JSON values that metadata fields refer to."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = made()
            document["paths"][MCP_PATH] = mcp_operations()
            document["components"]["schemas"]["JsonValue"] = JSON_VALUE_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
