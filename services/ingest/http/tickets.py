"""POST /v1/stream-tickets: a short-lived, single-use ticket that opens one event stream (or
its WebSocket) in place of an Authorization header, for browsers' native EventSource."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter

from services.ingest.http.deps import Caller, Ports, Settings
from services.ingest.http.errors import ERRORS, unavailable
from services.ingest.principal import data_subject, followed_conversation
from services.ingest.schemas import StreamTicket, StreamTicketRequest
from services.ingest.stream_tickets import StreamRef, issue_ticket

router = APIRouter(tags=["messages"])


@router.post("/v1/stream-tickets", status_code=201, response_model=StreamTicket, responses=ERRORS)
async def create_stream_ticket(body: StreamTicketRequest, ports: Ports, caller: Caller,
                               settings: Settings) -> StreamTicket:
    """A ticket for one stream, standing for the bearer: pass it as `?ticket=` to that
    stream's events (or socket) once, within `expires_in` seconds. Issued only for a stream
    the bearer may open (the stream's own rules: another user's conversation is 404, another
    user's stream 403). Ask for a new one for every (re)connection.

    The stream's WebSocket (`socket`: `/v1/conversations/{id}/socket`,
    `/v1/users/{user_id}/socket`; not describable in OpenAPI) carries the same frames as JSON
    (`{"type": "token" | "reply", "id", "data"}`) and takes `{"type": "message", "text", ...}`
    with the fields of POST /v1/messages; without a ticket it expects a first message
    `{"type": "auth", "token": "<bearer token>"}`. Closes with 1012 when the server restarts.
    See the README's "Web chat over a WebSocket"."""
    who = await caller.principal()
    if body.conversation_id is not None:
        await followed_conversation(ports.conversations, who, body.conversation_id)
        stream, path = StreamRef.conversation(body.conversation_id), f"/v1/conversations/{body.conversation_id}"
    else:
        assert body.user_id is not None  # the request names exactly one stream
        stream, path = StreamRef.user(data_subject(who, body.user_id)), f"/v1/users/{quote(body.user_id, safe='')}"
    if ports.tickets is None:
        raise unavailable("stream tickets")
    ticket = await issue_ticket(ports.tickets, who, stream, settings.stream_ticket_ttl_s)
    return StreamTicket(ticket=ticket, expires_in=settings.stream_ticket_ttl_s,
                        events=f"{path}/events?ticket={ticket}", socket=f"{path}/socket?ticket={ticket}")
