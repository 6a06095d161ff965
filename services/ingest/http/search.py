"""Memory: hybrid search over one user's turns, the context block a model would be given,
and usage statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from contracts.values import StoredText, UserId
from convmem.memory.retrieval import STAGES, Stages
from convmem.memory.stages import stages_pattern
from services.ingest.http.deps import Caller, Ports, Since, TenantUser, Until
from services.ingest.http.errors import ERRORS, ApiError, unavailable
from services.ingest.http.views import context_view, search_response, stats_view
from services.ingest.memory import context_block, search_memory
from services.ingest.principal import memory_owner_or_tenant
from services.ingest.schemas import ContextView, SearchResponse, StatsView

router = APIRouter(tags=["memory"])
AdminUser = Annotated[UserId | None, Query(description="admins only")]


@router.get("/v1/search", response_model=SearchResponse, responses=ERRORS)
async def search(
    q: Annotated[StoredText, Query(min_length=1, max_length=2000, description="what to look for, in plain words")],
    ports: Ports,
    caller: Caller,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    conversation_id: Annotated[UUID | None, Query()] = None,
    since: Since = None,
    until: Until = None,
    user_id: AdminUser = None,
    mode: Annotated[Literal["hybrid", "fts", "vector"], Query()] = "hybrid",
    stages: Annotated[str | None, Query(
        max_length=200, pattern=stages_pattern(), description=f"comma list of {', '.join(STAGES)}, or none; default per server")
    ] = None,
) -> SearchResponse:
    who = await caller.principal()
    # since at or after until is an empty window, answered with no hits like any window that
    # holds nothing (the document cannot state an order between two parameters).
    if ports.retriever is None:
        raise unavailable("search")
    try:
        chosen = Stages.parse(mode, stages, ports.retriever.default)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc), fields=[{"field": "stages", "message": str(exc)}]) from None
    result = await search_memory(ports, who, q, k=k, now=datetime.now(UTC), stages=chosen, user_id=user_id,
                                 conversation_id=conversation_id, since=since, until=until)
    return search_response(q, chosen, result)


@router.get("/v1/context", response_model=ContextView, responses=ERRORS)
async def context(
    ports: Ports,
    caller: Caller,
    conversation_id: Annotated[UUID | None, Query(
        description="the conversation whose summary and recent turns come with the memory")] = None,
    q: Annotated[StoredText | None, Query(
        min_length=1, max_length=2000,
        description="what the next turn is about; default: the conversation's latest user turn")] = None,
    budget: Annotated[int | None, Query(ge=128, le=200_000, description="tokens; default per server")] = None,
    user_id: AdminUser = None,
) -> ContextView:
    """The block the responder itself would send its model for the next turn: the
    conversation's summary, memories recalled for the question (dated, with speakers and
    ids) and the recent window, under a token budget counted with a real tokenizer."""
    who = await caller.principal()
    if ports.context is None:
        raise unavailable("the context block")
    used, built = await context_block(ports, who, now=datetime.now(UTC), conversation_id=conversation_id,
                                      question=q, budget=budget, user_id=user_id)
    return context_view(used, built, ports.context.tokens.name)


@router.get("/v1/stats", response_model=StatsView, responses=ERRORS)
async def stats(
    ports: Ports,
    caller: Caller,
    user_id: TenantUser = None,
) -> StatsView:
    who = await caller.principal()
    owner = memory_owner_or_tenant(who, user_id)
    return stats_view(who.tenant_id, owner, await ports.conversations.stats(who.tenant_id, owner))
