"""FastAPI dependencies: what a route needs from outside its arguments (the ports, the
settings, the caller's credentials), read from the app that create_app built. Nothing is
module state: two apps in one process (tests) never share anything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from contracts.values import SEQ_MAX, UserId, WrittenInstant
from convmem.ops.probes import Probes
from convmem.ports import Pipeline, StreamTickets
from convmem.settings import IngestSettings
from services.ingest.edge import EdgePorts
from services.ingest.http.draining import Draining
from services.ingest.http.limiting import EdgeLimits
from services.ingest.principal import AuthError, Principal, require_admin
from services.ingest.stream_tickets import MAX_TICKET_CHARS, StreamRef, redeem_ticket
from services.ingest.tokens import TokenVerifier
from services.ingest.unconfirmed import Unconfirmed


@dataclass(frozen=True)
class Edge:
    """What create_app hands its routes, kept on app.state."""

    settings: IngestSettings
    ports: Callable[[], EdgePorts]  # called per request: the adapters exist only once the lifespan ran
    tokens: TokenVerifier
    limits: EdgeLimits
    probes: Probes | None = None  # the process's probes (composition.ops); None: the edge's own checks
    pipeline: Pipeline | None = None  # lag and dead letters for the console (composition.pipeline)
    draining: Draining = field(default_factory=Draining)  # begun when the process stops: streams end
    # Keyless messages answered 503 outcome_unknown, so a keyless retry lands on the same ids.
    unconfirmed: Unconfirmed = field(default_factory=Unconfirmed)


def edge_of(request: HTTPConnection) -> Edge:
    """(A request's or a WebSocket's.)"""
    edge: Edge = request.app.state.edge
    return edge


def client_address(request: HTTPConnection) -> str:
    """The peer, or the client a trusted proxy names (uvicorn applies forwarded_allow_ips)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Credentials:
    """How the caller authenticated, as sent, checked when a route asks for the principal.
    Routes ask after FastAPI validated the request, so a request that is both unauthenticated
    and invalid keeps answering 422 (a raising dependency would turn that into 401). Checking
    counts against the rate limits: rejected credentials per address, requests per principal.

    Ways to authenticate: the bearer token (every route), and a stream ticket (`?ticket=`,
    the event streams and sockets only, see services.ingest.stream_tickets). Another way
    (a session cookie) is one more field and one more branch in `_identify`."""

    authorization: str | None = field(repr=False)  # never in a log line or a traceback
    address: str
    edge: Edge = field(repr=False)
    ticket: str | None = field(default=None, repr=False)  # a stream ticket, where a stream reads it

    async def principal(self) -> Principal:
        return await self._checked(self._identify)

    async def stream_principal(self, stream: StreamRef, tickets: StreamTickets | None) -> Principal:
        """The caller of one event stream: its ticket (used up here) when it brought one,
        else as every other route."""
        ticket = self.ticket
        if ticket is None:
            return await self.principal()
        if tickets is None:
            raise AuthError(401, "invalid_ticket", "stream tickets are not served by this node")
        return await self._checked(lambda: redeem_ticket(tickets, ticket, stream))

    async def admin(self) -> Principal:
        return require_admin(await self.principal())

    async def _identify(self) -> Principal:
        return await self.edge.tokens.principal(self.authorization)

    async def _checked(self, identify: Callable[[], Awaitable[Principal]]) -> Principal:
        limits = self.edge.limits
        await limits.before_auth(self.address)
        try:
            who = await identify()
        except AuthError:
            await limits.auth_failed(self.address)
            raise
        await limits.authenticated(who)
        return who


# async, so FastAPI calls them on the event loop rather than in its thread pool.
async def _ports(request: Request) -> EdgePorts:
    return edge_of(request).ports()


async def _ports_provider(request: Request) -> Callable[[], EdgePorts]:
    return edge_of(request).ports


async def _settings(request: Request) -> IngestSettings:
    return edge_of(request).settings


async def _edge(request: Request) -> Edge:
    return edge_of(request)


# The document's security schemes. Neither checks anything itself (auto_error=False): the
# bearer token is checked when a route asks for the principal (Credentials), the signature on
# the raw body by the webhook route; these only declare, per operation, what a caller sends.
bearer = HTTPBearer(auto_error=False, scheme_name="bearer", bearerFormat="JWT", description=(
    "A JWT with `sub`, `tenant` and `roles` (user, service, admin): HS256 with the shared secret, or "
    "RS256/ES256 from the identity provider's JWKS."))
whatsapp_signature = APIKeyHeader(
    name="X-Hub-Signature-256", auto_error=False, scheme_name="whatsappSignature",
    description="`sha256=` and the hex HMAC-SHA256 of the raw body with the Meta app secret.")


async def _credentials(request: Request,
                       _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Credentials:
    return Credentials(request.headers.get("authorization"), client_address(request), edge_of(request))


stream_ticket = APIKeyQuery(name="ticket", auto_error=False, scheme_name="streamTicket", description=(
    "A stream ticket from POST /v1/stream-tickets, in place of the Authorization header (browsers' "
    "EventSource and WebSocket cannot send one): single use, valid seconds, for one stream only."))


async def _stream_credentials(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ticket: Annotated[str | None, Security(stream_ticket)],
) -> Credentials:
    if ticket is not None and len(ticket) > MAX_TICKET_CHARS:
        raise AuthError(401, "invalid_ticket", f"a stream ticket is at most {MAX_TICKET_CHARS} characters")
    return Credentials(request.headers.get("authorization"), client_address(request), edge_of(request), ticket)


Ports = Annotated[EdgePorts, Depends(_ports)]
# For readiness, which must answer "unavailable" even when building the ports fails.
PortsProvider = Annotated[Callable[[], EdgePorts], Depends(_ports_provider)]
Settings = Annotated[IngestSettings, Depends(_settings)]
EdgeOf = Annotated[Edge, Depends(_edge)]
# Declares the Authorization header (documented on every operation that takes it).
Caller = Annotated[Credentials, Depends(_credentials)]
# The event streams: the Authorization header, or a stream ticket in the query.
StreamCaller = Annotated[Credentials, Depends(_stream_credentials)]
# Whose data a tenant-wide read is about: admins name one user or omit it for the whole tenant.
TenantUser = Annotated[UserId | None, Query(description="admins: one user; omit for the whole tenant")]
# Time bounds of a read: RFC 3339 instants with an offset, as the document states them (contracts.values).
Since = Annotated[WrittenInstant | None, Query(description="at or after (RFC 3339 with an offset)")]
Until = Annotated[WrittenInstant | None, Query(description="before (RFC 3339 with an offset)")]
AfterSeq = Annotated[int, Query(ge=0, le=SEQ_MAX, description="the seq of the last turn already read")]
