"""Memory: hybrid search over one user's turns, and usage statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from contracts.values import StoredText, UserId
from convmem.ports import MemoryScope
from convmem.retrieval import Stages
from services.ingest.http.deps import Caller, Ports, Since, TenantUser, Until
from services.ingest.http.errors import ERRORS, ApiError, unavailable
from services.ingest.http.views import search_response, stats_view
from services.ingest.principal import (
    conversation_not_found,
    memory_owner,
    memory_owner_or_tenant,
    visible_conversation,
)
from services.ingest.schemas import SearchResponse, StatsView

router = APIRouter(tags=["memory"])


@router.get("/v1/search", response_model=SearchResponse, responses=ERRORS)
async def search(
    q: Annotated[StoredText, Query(min_length=1, max_length=2000, description="what to look for, in plain words")],
    ports: Ports,
    caller: Caller,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    conversation_id: Annotated[UUID | None, Query()] = None,
    since: Since = None,
    until: Until = None,
    user_id: Annotated[UserId | None, Query(description="admins only")] = None,
    mode: Annotated[Literal["hybrid", "fts", "vector"], Query()] = "hybrid",
    stages: Annotated[str | None, Query(
        max_length=100, description="comma list of temporal, neighbours, rerank, or none; default per server")
    ] = None,
) -> SearchResponse:
    who = await caller.principal()
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "invalid_request", "since must be before until",
                       fields=[{"field": "since", "message": "must be before until"}])
    memory = ports.retriever
    if memory is None:
        raise unavailable("search")
    try:
        chosen = Stages.parse(mode, stages, memory.default)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc), fields=[{"field": "stages", "message": str(exc)}]) from None
    owner = memory_owner(who, user_id)
    if conversation_id is not None:
        # Visible to the caller is not enough: an admin searching ben's memory names one of ben's.
        found = await visible_conversation(ports.conversations, who, conversation_id)
        if found.user_id != owner:
            raise conversation_not_found()
    scope = MemoryScope(who.tenant_id, owner, conversation_id, since, until)
    result = await memory.search(q, scope, k, now=datetime.now(UTC), stages=chosen)
    return search_response(q, chosen, result)


@router.get("/v1/stats", response_model=StatsView, responses=ERRORS)
async def stats(
    ports: Ports,
    caller: Caller,
    user_id: TenantUser = None,
) -> StatsView:
    who = await caller.principal()
    owner = memory_owner_or_tenant(who, user_id)
    return stats_view(who.tenant_id, owner, await ports.conversations.stats(who.tenant_id, owner))
