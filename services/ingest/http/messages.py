"""Messages: posting a turn (202 once Kafka has it) and reading a conversation's turns."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import structlog
from fastapi import APIRouter, Query

from convmem.ports import MemoryScope
from services.ingest.accepting import RetentionWindow, accept_message
from services.ingest.http.deps import AfterSeq, Caller, Ports, Settings
from services.ingest.http.errors import ERRORS, publish
from services.ingest.http.views import messages_page
from services.ingest.principal import conversation_not_found, visible_conversation
from services.ingest.schemas import Accepted, ConversationMessages, PostMessage

log = structlog.get_logger("convmem.ingest")
router = APIRouter()


@router.post("/v1/messages", status_code=202, response_model=Accepted, responses=ERRORS, tags=["messages"])
async def post_message(body: PostMessage, ports: Ports, caller: Caller, settings: Settings) -> Accepted:
    retention = RetentionWindow(ports.policies, settings.message_retention_days)
    accepted = await accept_message(ports.lookup, ports.conversations, await caller.principal(), body, retention)
    if accepted.event is None:
        return Accepted(message_id=accepted.message_id, conversation_id=accepted.conversation_id, duplicate=True)
    await publish(ports.sink.publish_inbound([accepted.event]))
    log.info("message_accepted", message_id=str(accepted.message_id), conversation_id=str(accepted.conversation_id),
             event_id=str(accepted.event.event_id), channel="http")
    return Accepted(message_id=accepted.message_id, conversation_id=accepted.conversation_id, duplicate=False)


@router.get("/v1/conversations/{conversation_id}/messages", response_model=ConversationMessages,
            responses=ERRORS, tags=["history"])
async def conversation_messages(
    conversation_id: UUID,
    ports: Ports,
    caller: Caller,
    after_seq: AfterSeq = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ConversationMessages:
    owner = await visible_conversation(ports.conversations, await caller.principal(), conversation_id)
    turns = await ports.memory.conversation_turns(
        MemoryScope(owner.tenant_id, owner.user_id, conversation_id), after_seq, limit + 1)
    if turns is None:  # deleted between the two reads
        raise conversation_not_found()
    return messages_page(conversation_id, turns, limit)
