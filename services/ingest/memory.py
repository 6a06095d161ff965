"""Reading memory on a caller's behalf: search, the context block, and conversations to list
and read. The REST routes and the MCP tools both call these, so one set of access rules
(services.ingest.principal) decides what either may see. No HTTP here: a refusal is a
Refused, which each edge turns into its own kind of error."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from contracts import TurnRecorded
from convmem.memory.context import END, Context
from convmem.memory.retrieval import SearchResult, Stages
from convmem.ports import ConversationFilter, ConversationInfo, ConversationStatus, MemoryScope
from services.ingest.cursor import decode_cursor, encode_cursor
from services.ingest.edge import EdgePorts
from services.ingest.principal import (
    Principal,
    Refused,
    conversation_not_found,
    memory_owner,
    memory_owner_or_tenant,
    visible_conversation,
)

CONTEXT_QUESTION_WINDOW = 20  # how far back a context request without a question looks for one


async def memory_scope(ports: EdgePorts, who: Principal, *, user_id: str | None = None,
                       conversation_id: UUID | None = None, since: datetime | None = None,
                       until: datetime | None = None) -> MemoryScope:
    """Whose memory a read covers (the caller's, or the user an admin names), narrowed to
    one of that user's conversations when one is given."""
    owner = memory_owner(who, user_id)
    if conversation_id is not None:
        # Visible to the caller is not enough: an admin reading ben's memory names one of ben's.
        found = await visible_conversation(ports.conversations, who, conversation_id)
        if found.user_id != owner:
            raise conversation_not_found()
    return MemoryScope(who.tenant_id, owner, conversation_id, since, until)


async def search_memory(ports: EdgePorts, who: Principal, query: str, *, k: int, now: datetime,
                        stages: Stages | None = None, user_id: str | None = None,
                        conversation_id: UUID | None = None, since: datetime | None = None,
                        until: datetime | None = None) -> SearchResult:
    if ports.retriever is None:
        raise Refused(503, "unavailable", "search is not served by this node")
    empty = since is not None and until is not None and since >= until
    # The access rules still decide (403, 404) before an empty window answers with nothing.
    scope = await memory_scope(ports, who, user_id=user_id, conversation_id=conversation_id,
                               since=None if empty else since, until=None if empty else until)
    if empty:
        return SearchResult(hits=[], timeframe=None)
    return await ports.retriever.search(query, scope, k, now=now, stages=stages)


async def context_block(ports: EdgePorts, who: Principal, *, now: datetime, conversation_id: UUID | None = None,
                        question: str | None = None, budget: int | None = None,
                        user_id: str | None = None) -> tuple[UUID | None, Context]:
    """The block the responder would send for the next turn of a conversation: recall for
    `question` (by default the conversation's latest user turn), its summary and its recent
    window; without a conversation, recalled memory only. With the conversation it is for."""
    if ports.context is None:
        raise Refused(503, "unavailable", "the context block is not served by this node")
    if conversation_id is None and not (question or "").strip():
        # Neither named: the block for the next turn of the user's newest conversation (with
        # no conversation at all, an empty block: nothing to recall for, nothing to show).
        owner = memory_owner(who, user_id)
        newest = await ports.conversations.list_conversations(
            ConversationFilter(who.tenant_id, owner, status="active"), 1)
        conversation_id = newest[0].conversation_id if newest else None
    scope = await memory_scope(ports, who, user_id=user_id, conversation_id=conversation_id)
    if not (question or "").strip() and conversation_id is not None:
        recent = await ports.memory.recent_turns(scope, before_seq=END, limit=CONTEXT_QUESTION_WINDOW)
        question = next((t.text for t in reversed(recent) if t.role == "user"), "")
    return conversation_id, await ports.context.build(scope, question or "", now, budget=budget)


async def list_conversations(ports: EdgePorts, who: Principal, *, limit: int, user_id: str | None = None,
                             status: ConversationStatus | None = None, conversation_type: str | None = None,
                             since: datetime | None = None, until: datetime | None = None,
                             cursor: str | None = None) -> tuple[list[ConversationInfo], str | None]:
    """A page of the caller's conversations (an admin: the tenant's, or one user's), newest
    first, and the cursor of the next page (None at the end). A bad cursor is a CursorError."""
    owner = memory_owner_or_tenant(who, user_id)
    after = decode_cursor(cursor) if cursor else None
    rows = await ports.conversations.list_conversations(
        ConversationFilter(who.tenant_id, owner, status, conversation_type, since, until, after), limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(page[-1].created_at, page[-1].conversation_id) if more else None


async def read_conversation(ports: EdgePorts, who: Principal, conversation_id: UUID, *, after_seq: int,
                            limit: int) -> tuple[ConversationInfo, list[TurnRecorded]]:
    """A conversation's metadata and up to limit + 1 of its turns after `after_seq` (the extra
    one only says there is a next page)."""
    owner = await visible_conversation(ports.conversations, who, conversation_id)
    # The rule decided; this read only fetches what the answer shows (title, counts, ...).
    info = await ports.conversations.conversation_info(owner.tenant_id, conversation_id)
    if info is None:  # purged between the two reads
        raise conversation_not_found()
    turns = await ports.memory.conversation_turns(
        MemoryScope(owner.tenant_id, owner.user_id, conversation_id), after_seq, limit + 1) or []
    return info, turns
