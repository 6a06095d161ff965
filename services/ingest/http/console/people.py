"""Users and conversations: find a user, their summary and conversations, one conversation's
turns (role, time, intent, language, the reply's sources, model, latency, WhatsApp delivery)
with new turns live; and a user's own page (what convmem remembers, delete a conversation,
export). The API's rules decide: an admin sees the tenant, a user only itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from contracts import TurnRecorded
from convmem.ports.console import ConsoleAction
from services.ingest.edge import EdgePorts
from services.ingest.http.console.render import fragment, page
from services.ingest.http.console.session import Admin, Signed, Viewer, changing, ledger_of
from services.ingest.http.conversations import remove_conversation
from services.ingest.http.events import _stream
from services.ingest.http.messages import deliveries_of
from services.ingest.http.users import UserId
from services.ingest.memory import list_conversations, read_conversation
from services.ingest.principal import Refused, data_subject, followed_conversation
from services.ingest.streaming import conversation_events

router = APIRouter(prefix="/console")
PAGE_TURNS = 200


@router.get("/users")
async def users(request: Request, viewer: Admin, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    found = await ledger_of(request).find_users(viewer.who.tenant_id, q.strip(), 50)
    return page(request, viewer, "users.html", q=q, users=found)


async def _person(request: Request, viewer: Viewer, user_id: str, template: str) -> Response:
    subject = data_subject(viewer.who, user_id)
    ports: EdgePorts = request.app.state.edge.ports()
    summary = await ports.privacy.user_summary(viewer.who.tenant_id, subject)
    conversations, more = await list_conversations(ports, viewer.who, limit=50, user_id=subject)
    actions = await ledger_of(request).actions(viewer.who.tenant_id, 10, subject=subject) if viewer.is_admin else []
    return page(request, viewer, template, user_id=subject, summary=summary, conversations=conversations,
                more=more is not None, actions=actions)


@router.get("/users/{user_id}")
async def person(request: Request, viewer: Signed, user_id: UserId) -> Response:
    return await _person(request, viewer, user_id, "user.html")


@router.get("/me")
async def me(request: Request, viewer: Signed) -> Response:
    return await _person(request, viewer, viewer.who.subject, "me.html")


async def _turn_rows(ports: EdgePorts, request: Request, tenant_id: str, turns: list[TurnRecorded]
                     ) -> list[dict[str, object]]:
    deliveries = await deliveries_of(ports, tenant_id, turns)
    facts = await ledger_of(request).turn_facts(tenant_id, [t.message_id for t in turns if t.role == "assistant"])
    return [{"turn": t, "delivery": deliveries.get(t.message_id), "facts": facts.get(t.message_id),
             "sources": t.metadata.get("sources", []) if t.role == "assistant" else []} for t in turns]


@router.get("/conversations/{conversation_id}")
async def conversation(request: Request, viewer: Signed, conversation_id: UUID) -> Response:
    ports: EdgePorts = request.app.state.edge.ports()
    info, turns = await read_conversation(ports, viewer.who, conversation_id, after_seq=0, limit=PAGE_TURNS)
    rows = await _turn_rows(ports, request, info.tenant_id, turns[:PAGE_TURNS])
    return page(request, viewer, "conversation.html", info=info, rows=rows, more=len(turns) > PAGE_TURNS,
                last_seq=turns[-1].seq if turns else 0)


@router.get("/conversations/{conversation_id}/turns")
async def new_turns(request: Request, viewer: Signed, conversation_id: UUID,
                    after_seq: Annotated[int, Query(ge=0)] = 0) -> Response:
    """The turns after `after_seq`, as table rows: what the page's script appends live."""
    ports: EdgePorts = request.app.state.edge.ports()
    info, turns = await read_conversation(ports, viewer.who, conversation_id, after_seq=after_seq, limit=PAGE_TURNS)
    rows = await _turn_rows(ports, request, info.tenant_id, turns[:PAGE_TURNS])
    return fragment("turn_rows.html", rows=rows)


@router.get("/conversations/{conversation_id}/events")
async def conversation_stream(request: Request, viewer: Signed, conversation_id: UUID,
                              last_event_id: Annotated[str | None, Header(max_length=100)] = None) -> Response:
    """The conversation's event stream (the API's), for the page's EventSource: the session
    cookie goes with it on this origin, so no token is needed in the URL."""
    ports: EdgePorts = request.app.state.edge.ports()
    owner = await followed_conversation(ports.conversations, viewer.who, conversation_id)
    feed = ports.feed
    if feed is None:
        raise Refused(503, "unavailable", "live events are not served by this node")
    streamed: StreamingResponse = _stream(lambda: feed.follow(conversation_id, last_event_id),
                                          lambda items: conversation_events(items, owner),
                                          request.app.state.edge.draining)  # ends on SIGTERM too
    return streamed


@router.post("/conversations/{conversation_id}/delete")
async def delete(request: Request, viewer: Signed, conversation_id: UUID) -> Response:
    await changing(request, viewer)
    ports: EdgePorts = request.app.state.edge.ports()
    found = await ports.conversations.conversation(conversation_id)
    messages = await remove_conversation(ports, viewer.who, conversation_id)
    await ledger_of(request).record_action(ConsoleAction(
        viewer.who.tenant_id, viewer.who.subject, "delete_conversation", found.user_id if found else None,
        datetime.now(UTC), {"conversation_id": str(conversation_id), "messages": messages}))
    back = "/console/me" if not viewer.is_admin or (found and found.user_id == viewer.who.subject) else (
        f"/console/users/{quote(found.user_id, safe='')}" if found else "/console/users")
    return RedirectResponse(back, status_code=303)
