"""WebSockets for web chat: post messages and receive their replies, token by token, on one
socket. The same streams as the event streams (a conversation's, or all of a user's), with
the same rules (owner only; the user itself or its admin), the same frame ids (resume with
`after`) and the same authentication, sent where a browser can send it:

- a stream ticket in the URL (`?ticket=`, from POST /v1/stream-tickets: single use, seconds
  of life), or
- a first message `{"type": "auth", "token": "<bearer token>"}` (or `"ticket"`), sent
  within AUTH_TIMEOUT_S of connecting. A long-lived token never goes in the URL.

Server to client (JSON text frames): `{"type": "following"}` once live (post after it and
nothing is missed); `{"type": "token" | "reply", "id": ..., "data": {...}}` as the event
streams' frames; `{"type": "accepted", "ref": ..., "message_id": ..., "conversation_id": ...,
"duplicate": ...}` for a posted message, then `{"type": "typing", ...}` while its reply is
being written; `{"type": "error", "ref": ..., "status": ..., "error": ..., "message": ...}`.
Client to server: `{"type": "message", "ref": "<anything, echoed>", "text": ...}` with the
fields of POST /v1/messages (user_id defaults to the socket's user, conversation_id to its
conversation).

Closing codes: 1012 the server is restarting (reconnect, resume with the last id); 1013 the
client fell too far behind (reconnect and resume); 4401/4403/4404 as the HTTP statuses;
1008 no authentication in time or a malformed first message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any
from uuid import UUID

import orjson
import structlog
from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.websockets import WebSocketState

from contracts import ReplyGenerated
from convmem.errors import RetryableError
from convmem.ports import FeedItem
from services.ingest.accepting import RetentionWindow, Unacceptable, accept_message
from services.ingest.edge import EdgePorts
from services.ingest.http.deps import Credentials, Edge, client_address, edge_of
from services.ingest.http.errors import ApiError, publish
from services.ingest.http.users import UserId
from services.ingest.http.views import reply_view, token_view
from services.ingest.principal import AuthError, Principal, Refused, data_subject, followed_conversation
from services.ingest.schemas import PostMessage
from services.ingest.stream_tickets import MAX_TICKET_CHARS, StreamRef
from services.ingest.streaming import StreamEvent, conversation_events, user_events
from services.ingest.tokens import MAX_TOKEN_CHARS

log = structlog.get_logger("convmem.ingest")
router = APIRouter()

AUTH_TIMEOUT_S = 10.0
RESTARTING, BEHIND, POLICY = 1012, 1013, 1008
Follow = Callable[[], AbstractAsyncContextManager[AsyncIterator[FeedItem]]]
Select = Callable[[AsyncIterator[FeedItem]], AsyncIterator[StreamEvent]]
TicketParam = Annotated[str | None, Query(max_length=MAX_TICKET_CHARS)]
AfterParam = Annotated[str | None, Query(max_length=400)]


class Closed(Exception):
    """End the socket with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@router.websocket("/v1/conversations/{conversation_id}/socket")
async def conversation_socket(websocket: WebSocket, conversation_id: UUID, ticket: TicketParam = None,
                              after: AfterParam = None) -> None:
    stream = StreamRef.conversation(conversation_id)

    async def open_stream(who: Principal, ports: EdgePorts, resume: str | None) -> tuple[Follow, Select, dict[str, Any]]:
        owner = await followed_conversation(ports.conversations, who, conversation_id)
        feed = _feed(ports)
        return (lambda: feed.follow(conversation_id, resume), lambda items: conversation_events(items, owner),
                {"user_id": owner.user_id, "conversation_id": conversation_id})

    await _serve(websocket, stream, ticket, after, open_stream)


@router.websocket("/v1/users/{user_id}/socket")
async def user_socket(websocket: WebSocket, user_id: UserId, ticket: TicketParam = None,
                      after: AfterParam = None) -> None:
    stream = StreamRef.user(user_id)

    async def open_stream(who: Principal, ports: EdgePorts, resume: str | None) -> tuple[Follow, Select, dict[str, Any]]:
        subject = data_subject(who, user_id)
        feed = _feed(ports)
        return (lambda: feed.follow_user(who.tenant_id, subject, resume),
                lambda items: user_events(items, who.tenant_id, subject), {"user_id": subject})

    await _serve(websocket, stream, ticket, after, open_stream)


def _feed(ports: EdgePorts) -> Any:
    if ports.feed is None:
        raise Closed(BEHIND, "live events are not served by this node")
    return ports.feed


async def _serve(websocket: WebSocket, stream: StreamRef, ticket: str | None, after: str | None,
                 open_stream: Callable[[Principal, EdgePorts, str | None],
                                       Awaitable[tuple[Follow, Select, dict[str, Any]]]]) -> None:
    edge = edge_of(websocket)
    await websocket.accept()
    try:
        if edge.draining.begun:
            raise Closed(RESTARTING, "server restarting")
        ports = edge.ports()
        who, resume = await _authenticate(websocket, edge, ports, stream, ticket, after)
        follow, select, defaults = await open_stream(who, ports, resume)
        socket = _Socket(websocket, edge, ports, who, defaults)
        await socket.run(follow, select)
    except Closed as closed:
        await _close(websocket, closed.code, closed.reason)
    except (AuthError, Refused) as refused:
        await _close(websocket, 4000 + refused.status, refused.message[:120])
    except RetryableError:
        await _close(websocket, BEHIND, "a backing service is unavailable; reconnect later")
    except WebSocketDisconnect:
        pass


async def _authenticate(websocket: WebSocket, edge: Edge, ports: EdgePorts, stream: StreamRef,
                        ticket: str | None, after: str | None) -> tuple[Principal, str | None]:
    """The principal, from the URL's ticket or the first message; and where to resume."""
    token = None
    if ticket is None:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), timeout=AUTH_TIMEOUT_S)
        except TimeoutError:
            raise Closed(POLICY, "authenticate first: {\"type\": \"auth\", \"token\": ...} or ?ticket=") from None
        message = _parse(first)
        if message is None or message.get("type") != "auth":
            raise Closed(POLICY, "the first message must be {\"type\": \"auth\", \"token\": ...}")
        token, ticket = message.get("token"), message.get("ticket")
        after = message.get("after", after)
        if not (isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS) and not (
                isinstance(ticket, str) and 0 < len(ticket) <= MAX_TICKET_CHARS):
            raise Closed(POLICY, "auth needs a bearer `token` or a stream `ticket`")
        if after is not None and not (isinstance(after, str) and len(after) <= 400):
            raise Closed(POLICY, "`after` must be a frame id")
    credentials = Credentials(f"Bearer {token}" if isinstance(token, str) else None,
                              client_address(websocket), edge,
                              ticket if isinstance(ticket, str) else None)
    try:
        who = await credentials.stream_principal(stream, ports.tickets)
    except ApiError as limited:  # the failed-auth limit for this address
        raise Closed(4000 + limited.status, limited.message[:120]) from None
    return who, after


class _Socket:
    """One authenticated socket: frames of the stream out, posted messages in."""

    def __init__(self, websocket: WebSocket, edge: Edge, ports: EdgePorts, who: Principal,
                 defaults: dict[str, Any]) -> None:
        self.websocket, self.edge, self.ports, self.who, self.defaults = websocket, edge, ports, who, defaults
        self._sending = asyncio.Lock()  # the stream and the answers to posts write to one socket

    async def send(self, frame: dict[str, Any]) -> None:
        async with self._sending:
            await self.websocket.send_text(orjson.dumps(frame).decode())

    async def run(self, follow: Follow, select: Select) -> None:
        async with follow() as items:
            await self.send({"type": "following"})
            tasks = {asyncio.ensure_future(self._frames(select(items))): "behind",
                     asyncio.ensure_future(self._posts()): "gone",
                     asyncio.ensure_future(self.edge.draining.wait()): "restarting"}
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            first = next(iter(done))
            if tasks[first] == "restarting":
                raise Closed(RESTARTING, "server restarting: reconnect and resume with your last id")
            if tasks[first] == "behind" and first.exception() is None:
                raise Closed(BEHIND, "too far behind: reconnect and resume with your last id")
            error = first.exception()
            if error is not None:
                raise error

    async def _frames(self, events: AsyncIterator[StreamEvent]) -> None:
        async for event in events:
            body = reply_view(event.event) if isinstance(event.event, ReplyGenerated) else token_view(event.event)
            await self.send({"type": event.kind, "id": event.position, "data": body.model_dump(mode="json")})

    async def _posts(self) -> None:
        while True:
            message = _parse(await self.websocket.receive_text())
            if message is None:
                await self.send(_error(None, 400, "malformed_json", "a message must be a JSON object"))
                continue
            ref = message.pop("ref", None)
            kind = message.pop("type", None)
            if kind == "message":
                await self._post(ref, message)
            elif kind != "typing":  # a client's own typing is not relayed (yet): accepted and ignored
                await self.send(_error(ref, 422, "invalid_request", "`type` must be \"message\""))

    async def _post(self, ref: Any, fields: dict[str, Any]) -> None:
        try:
            await self.edge.limits.authenticated(self.who)
            body = PostMessage.model_validate({**self.defaults, **fields})
            if "conversation_id" in self.defaults and body.conversation_id != self.defaults["conversation_id"]:
                raise Unacceptable("conversation_id", "this socket posts to its own conversation only")
            retention = RetentionWindow(self.ports.policies, self.edge.settings.message_retention_days)
            accepted = await accept_message(self.ports.lookup, self.ports.conversations, self.who, body, retention)
            if accepted.event is not None:
                await publish(self.ports.sink.publish_inbound([accepted.event]))
                log.info("message_accepted", message_id=str(accepted.message_id),
                         conversation_id=str(accepted.conversation_id), event_id=str(accepted.event.event_id),
                         channel="socket")
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            await self.send(_error(ref, 422, "invalid_request", f"{where}: {first['msg']}"))
            return
        except Unacceptable as exc:
            await self.send(_error(ref, 422, "invalid_request", f"{exc.field}: {exc.message}"))
            return
        except (Refused, ApiError) as exc:
            await self.send(_error(ref, exc.status, exc.code, exc.message))
            return
        except RetryableError:
            await self.send(_error(ref, 503, "unavailable", "a backing service is unavailable; retry later"))
            return
        await self.send({"type": "accepted", "ref": ref, "message_id": str(accepted.message_id),
                         "conversation_id": str(accepted.conversation_id), "duplicate": accepted.duplicate})
        if accepted.event is not None and body.role == "user" and body.reply_expected:
            await self.send({"type": "typing", "conversation_id": str(accepted.conversation_id),
                             "in_reply_to": str(accepted.message_id)})


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _error(ref: Any, status: int, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "ref": ref, "status": status, "error": code, "message": message}


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code, reason)
