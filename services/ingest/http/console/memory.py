"""The memory explorer: a user's memory searched as GET /v1/search does (why each hit ranked:
matched_by, score, the stages that moved it, its context turns), and the context block the
responder would send for a question, with its token count against the budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from convmem.memory.context import Context
from convmem.memory.retrieval import STAGES, SearchResult, Stages
from services.ingest.edge import EdgePorts
from services.ingest.http.console.render import number, page
from services.ingest.http.console.session import Signed
from services.ingest.memory import context_block, search_memory
from services.ingest.principal import Refused, memory_owner

router = APIRouter(prefix="/console")
Text = Annotated[str, Query(max_length=2000)]


@router.get("/memory")
async def memory(request: Request, viewer: Signed, user_id: Annotated[str, Query(max_length=200)] = "",
                 q: Text = "", mode: Annotated[Literal["hybrid", "fts", "vector"], Query()] = "hybrid",
                 stages: Annotated[str, Query(max_length=200)] = "", conversation_id: UUID | None = None,
                 budget: Annotated[str, Query(max_length=10)] = "",
                 k: Annotated[str, Query(max_length=10)] = "") -> Response:
    ports: EdgePorts = request.app.state.edge.ports()
    tokens = number(budget, "token budget", 128, 200_000)
    hits = int(number(k, "hits", 1, 50) or 10)
    owner = memory_owner(viewer.who, user_id.strip() or None)
    result: SearchResult | None = None
    ctx: Context | None = None
    chosen: Stages | None = None
    if q.strip():
        if ports.retriever is None or ports.context is None:
            raise Refused(503, "unavailable", "search is not served by this node")
        try:
            chosen = Stages.parse(mode, stages.strip() or None, ports.retriever.default)
        except ValueError as exc:
            raise Refused(422, "invalid_request", str(exc)) from None
        now = datetime.now(UTC)
        result = await search_memory(ports, viewer.who, q, k=hits, now=now, stages=chosen, user_id=owner,
                                     conversation_id=conversation_id)
        _, ctx = await context_block(ports, viewer.who, now=now, conversation_id=conversation_id, question=q,
                                  budget=None if tokens is None else int(tokens), user_id=owner)
    default = ports.retriever.default.names() if ports.retriever is not None else []
    return page(request, viewer, "memory.html", owner=owner, q=q, mode=mode, stages=stages,
                conversation_id=conversation_id or "", budget=budget, k=hits, result=result, ctx=ctx,
                chosen=chosen.names() if chosen else [], all_stages=STAGES, default_stages=default,
                tokenizer=ports.context.tokens.name if ports.context is not None else "")
