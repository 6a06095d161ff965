"""FastAPI dependencies: what a route needs from outside its arguments (the ports, the
settings, the caller's credentials), read from the app that create_app built. Nothing is
module state: two apps in one process (tests) never share anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from convmem.settings import IngestSettings
from services.ingest.edge import EdgePorts
from services.ingest.principal import Credentials


@dataclass(frozen=True)
class Edge:
    """What create_app hands its routes, kept on app.state."""

    settings: IngestSettings
    ports: Callable[[], EdgePorts]  # called per request: the adapters exist only once the lifespan ran


def edge_of(request: Request) -> Edge:
    edge: Edge = request.app.state.edge
    return edge


# async, so FastAPI calls them on the event loop rather than in its thread pool.
async def _ports(request: Request) -> EdgePorts:
    return edge_of(request).ports()


async def _ports_provider(request: Request) -> Callable[[], EdgePorts]:
    return edge_of(request).ports


async def _settings(request: Request) -> IngestSettings:
    return edge_of(request).settings


async def _credentials(request: Request, authorization: Annotated[str | None, Header()] = None) -> Credentials:
    return Credentials(authorization, edge_of(request).settings.jwt_secret.get_secret_value())


Ports = Annotated[EdgePorts, Depends(_ports)]
# For readiness, which must answer "unavailable" even when building the ports fails.
PortsProvider = Annotated[Callable[[], EdgePorts], Depends(_ports_provider)]
Settings = Annotated[IngestSettings, Depends(_settings)]
# Declares the Authorization header (documented on every operation that takes it).
Caller = Annotated[Credentials, Depends(_credentials)]
# Whose data a tenant-wide read is about: admins name one user or omit it for the whole tenant.
TenantUser = Annotated[str | None, Query(min_length=1, max_length=256,
                                         description="admins: one user; omit for the whole tenant")]
