"""Server-Sent Events: a conversation's (or a user's) replies as they are generated.

`event: token` frames carry pieces of a reply as the model produces them, then one
`event: reply` frame carries the whole reply. Every frame has an `id:`; a client that
reconnects with it as `Last-Event-ID` gets what it missed, then the live stream again, from
any node of the edge (the ids are Kafka positions). The stream never holds the responder
back: a client too slow to keep up is disconnected and resumes from its last id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated
from uuid import UUID

import orjson
import structlog
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from contracts import ReplyGenerated
from convmem.ports import FeedItem
from services.ingest.http.deps import EdgeOf, Ports, StreamCaller
from services.ingest.http.draining import Draining
from services.ingest.http.errors import ERRORS, ApiError, unavailable
from services.ingest.http.users import UserId
from services.ingest.http.views import reply_view, token_view
from services.ingest.principal import data_subject, followed_conversation
from services.ingest.stream_tickets import StreamRef
from services.ingest.streaming import StreamEvent, conversation_events, user_events

log = structlog.get_logger("convmem.ingest")
router = APIRouter(tags=["messages"])

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
FOLLOWING = b"retry: 1000\n: following\nevent: following\ndata: {}\n\n"
# The last frame of a stream whose process is stopping. No `id:`, so the client's last id
# stays the last event it got; EventSource reconnects after `retry` ms, with Last-Event-ID.
RESTARTING = b'retry: 1000\nevent: restart\ndata: {"reason": "server restarting", "reconnect": true}\n\n'
# One Server-Sent Event as a client's parser hands it over (the stream is a sequence of
# these): `event` is following, token, reply or restart; `data` is JSON text.
_SSE_EVENT = {"type": "object", "properties": {
    "event": {"type": "string", "description": "following, token, reply or restart"},
    "data": {"type": "string", "description": "JSON: a token piece or a reply (see the README); {} for following"},
    "id": {"type": "string", "description": "the resume position, for Last-Event-ID"},
    "retry": {"type": "integer", "minimum": 0}}}
_SSE = {"text/event-stream": {"schema": _SSE_EVENT, "example": (
    'id: 3-1207-88412\nevent: token\ndata: {"message_id": "...", "in_reply_to": "...", "offset": 0, '
    '"text": "Hello"}\n\nid: 3-1208-88415\nevent: reply\ndata: {"message_id": "...", "text": "Hello there", ...}\n\n')}}


def frame(event: StreamEvent) -> bytes:
    body = (reply_view(event.event) if isinstance(event.event, ReplyGenerated) else token_view(event.event))
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.position.encode(), event.kind.encode(),
                                                 orjson.dumps(body.model_dump(mode="json")))


@router.get("/v1/conversations/{conversation_id}/events", responses={**ERRORS, 200: {"content": _SSE}},
            response_class=StreamingResponse)
async def conversation_events_stream(
    conversation_id: UUID,
    ports: Ports,
    caller: StreamCaller,
    edge: EdgeOf,
    last_event_id: Annotated[str | None, Header(max_length=100, description="resume after this frame id")] = None,
    after: Annotated[str | None, Query(max_length=100, description="as Last-Event-ID, for clients that "
                                                                    "cannot set headers")] = None,
) -> StreamingResponse:
    """The conversation's reply frames, live: `event: token` as the model writes, then
    `event: reply`. Owner only (another user gets 404), as the read API. A browser's
    EventSource authenticates with `?ticket=` (POST /v1/stream-tickets)."""
    who = await caller.stream_principal(StreamRef.conversation(conversation_id), ports.tickets)
    owner = await followed_conversation(ports.conversations, who, conversation_id)
    feed = ports.feed
    if feed is None:
        raise unavailable("live events")
    if edge.draining.begun:
        raise stopping()
    return _stream(lambda: feed.follow(conversation_id, last_event_id or after),
                   lambda items: conversation_events(items, owner), edge.draining)


@router.get("/v1/users/{user_id}/events", responses={**ERRORS, 200: {"content": _SSE}},
            response_class=StreamingResponse)
async def user_events_stream(
    user_id: UserId,
    ports: Ports,
    caller: StreamCaller,
    edge: EdgeOf,
    last_event_id: Annotated[str | None, Header(max_length=400, description="resume after this frame id")] = None,
    after: Annotated[str | None, Query(max_length=400, description="as Last-Event-ID, for clients that "
                                                                    "cannot set headers")] = None,
) -> StreamingResponse:
    """The reply frames of every conversation of one user, those begun after the stream
    opened included: `event: token` as the model writes, then `event: reply`. The user
    itself or an admin of its tenant, as the user's other data."""
    who = await caller.stream_principal(StreamRef.user(user_id), ports.tickets)
    subject = data_subject(who, user_id)
    feed = ports.feed
    if feed is None:
        raise unavailable("live events")
    if edge.draining.begun:
        raise stopping()
    return _stream(lambda: feed.follow_user(who.tenant_id, subject, last_event_id or after),
                   lambda items: user_events(items, who.tenant_id, subject), edge.draining)


def stopping() -> ApiError:
    return ApiError(503, "stopping", "this server is restarting: reconnect in a moment",
                    headers={"Retry-After": "1"})


def _stream(follow: Callable[[], AbstractAsyncContextManager[AsyncIterator[FeedItem]]],
            select: Callable[[AsyncIterator[FeedItem]], AsyncIterator[StreamEvent]],
            draining: Draining | None = None) -> StreamingResponse:
    """`draining`: the edge's; when it begins the stream ends with the RESTARTING frame."""
    draining = draining if draining is not None else Draining()

    async def frames() -> AsyncIterator[bytes]:
        async with follow() as items:
            # Sent once following began: a client that waits for it misses nothing it posts next.
            # The comment for clients that read the stream's lines, the event for EventSource
            # (which shows no comments). No `id:`, so a client's last id stays as it was.
            yield FOLLOWING
            events = select(items).__aiter__()
            pending: asyncio.Task[StreamEvent] | None = None
            stopping = asyncio.ensure_future(draining.wait())
            try:
                while True:
                    pending = pending or asyncio.ensure_future(events.__anext__())
                    done, _ = await asyncio.wait({pending, stopping}, timeout=KEEPALIVE_S,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if stopping in done and pending not in done:
                        yield RESTARTING
                        return  # the client reconnects with its Last-Event-ID, to this node's successor
                    if not done:
                        yield b": keepalive\n\n"
                        continue
                    try:
                        event = pending.result()
                    except StopAsyncIteration:
                        return  # cut off (too far behind): the client resumes from its last id
                    pending = None
                    yield frame(event)
            finally:
                stopping.cancel()
                if pending is not None:
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await pending

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
