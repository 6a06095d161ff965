"""Conversations as a resource: list (keyset pages), read, rename or archive, delete."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import structlog
from fastapi import APIRouter, Query

from contracts.values import StoredText
from convmem.ports import MemoryScope
from services.ingest.cursor import CURSOR_PATTERN, CursorError
from services.ingest.edge import EdgePorts
from services.ingest.http.deps import AfterSeq, Caller, Ports, Since, TenantUser, Until
from services.ingest.http.errors import ERRORS, ApiError
from services.ingest.http.messages import deliveries_of
from services.ingest.http.views import conversation_detail, conversation_view
from services.ingest.memory import list_conversations as list_conversations_of
from services.ingest.memory import read_conversation
from services.ingest.principal import Principal, conversation_not_found, visible_conversation
from services.ingest.schemas import ConversationDetail, ConversationPage, ConversationView, Deleted, PatchConversation

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["conversations"])


@router.get("/v1/conversations", response_model=ConversationPage, responses=ERRORS)
async def list_conversations(
    ports: Ports,
    caller: Caller,
    user_id: TenantUser = None,
    status: Annotated[Literal["active", "archived"] | None, Query()] = None,
    conversation_type: Annotated[StoredText | None, Query(alias="type", min_length=1, max_length=64)] = None,
    since: Since = None,
    until: Until = None,
    cursor: Annotated[str | None, Query(max_length=60, pattern=CURSOR_PATTERN,
                                        description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationPage:
    who = await caller.principal()
    try:
        page, next_cursor = await list_conversations_of(
            ports, who, limit=limit, user_id=user_id, status=status,
            conversation_type=conversation_type, since=since, until=until, cursor=cursor)
    except CursorError as exc:
        raise ApiError(400, "invalid_cursor", str(exc), fields=[{"field": "cursor", "message": str(exc)}]) from None
    return ConversationPage(conversations=[conversation_view(c) for c in page], next_cursor=next_cursor)


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationDetail, responses=ERRORS)
async def get_conversation(
    conversation_id: UUID,
    ports: Ports,
    caller: Caller,
    after_seq: AfterSeq = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ConversationDetail:
    info, turns = await read_conversation(ports, await caller.principal(), conversation_id, after_seq=after_seq,
                                          limit=limit)
    return conversation_detail(info, turns, limit, await deliveries_of(ports, info.tenant_id, turns))


@router.patch("/v1/conversations/{conversation_id}", response_model=ConversationView, responses=ERRORS)
async def patch_conversation(conversation_id: UUID, body: PatchConversation, ports: Ports,
                             caller: Caller) -> ConversationView:
    owner = await visible_conversation(ports.conversations, await caller.principal(), conversation_id)
    if body.title is None and body.status is None:
        raise ApiError(422, "invalid_request", "nothing to change: give title, status or both",
                       fields=[{"field": "body", "message": "title or status required"}])
    updated = await ports.conversations.update_conversation(owner.tenant_id, conversation_id, title=body.title,
                                                            status=body.status)
    if updated is None:
        raise conversation_not_found()
    return conversation_view(updated)


@router.delete("/v1/conversations/{conversation_id}", response_model=Deleted, responses=ERRORS)
async def delete_conversation(conversation_id: UUID, ports: Ports, caller: Caller) -> Deleted:
    return Deleted(conversation_id=conversation_id,
                   messages=await remove_conversation(ports, await caller.principal(), conversation_id))


async def remove_conversation(ports: EdgePorts, who: Principal, conversation_id: UUID) -> int:
    """Delete a conversation `who` sees (the API's DELETE and the console's): its turns count."""
    owner = await visible_conversation(ports.conversations, who, conversation_id)
    ids = await ports.conversations.delete_conversation(owner.tenant_id, conversation_id)
    # Reads already skip deleted turns (Postgres decides); dropping the vectors is cleanup:
    # by the conversation, so its bursts' points (units) go with its turns'.
    if ports.retriever is not None:
        await ports.retriever.index.delete_scope(MemoryScope(owner.tenant_id, owner.user_id, conversation_id))
    log.info("conversation_deleted", conversation_id=str(conversation_id), messages=len(ids))
    return len(ids)
