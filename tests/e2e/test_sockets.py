"""Web chat on the real stack: an event stream opened with a stream ticket instead of an
Authorization header, and the WebSocket that posts messages and receives their replies
token by token, authenticated by ticket or by a first message, resuming after its last id."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from composition.runtime import Runtime
from tests.conftest import token, unique
from tests.e2e.test_streaming import Stream, post
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.stack


async def ticket_for(api: httpx.AsyncClient, user: str, **stream: str) -> dict[str, Any]:
    r = await api.post("/v1/stream-tickets", json=stream, headers=token(user))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def frames_until(ws: ClientConnection, kind: str, timeout: float = 30) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = orjson.loads(await ws.recv())
            seen.append(frame)
            if frame["type"] == kind:
                return seen


def ws_url(runtime: Runtime, path: str) -> str:
    return f"ws://127.0.0.1:{runtime.port}{path}"


async def test_an_event_stream_opens_with_a_ticket_once(api: httpx.AsyncClient, runtime: Runtime) -> None:
    user, conversation = unique("u"), str(uuid.uuid4())
    issued = await ticket_for(api, user, conversation_id=conversation)
    async with api.stream("GET", issued["events"]) as resp:  # no Authorization header
        assert resp.status_code == 200
        stream = Stream(resp)
        assert (await stream.next()).data["text"] == "following"
        posted = (await post(api, user, "ticketed hello", conversation_id=conversation)).json()
        frames = await stream.until("reply")
    assert frames[-1].data["in_reply_to"] == posted["message_id"]
    again = await api.get(issued["events"])
    assert again.status_code == 401 and again.json()["error"] == "invalid_ticket"
    # A ticket for ana's stream opens nothing of ben's, and ben gets none for ana's.
    mine = await ticket_for(api, user, user_id=user)
    assert (await api.get(f"/v1/users/{unique('ben')}/events?ticket={mine['ticket']}")).status_code == 401
    r = await api.post("/v1/stream-tickets", json={"conversation_id": posted["conversation_id"]},
                       headers=token(unique("ben")))
    assert r.status_code == 404


async def test_a_socket_posts_and_receives_tokens_then_the_reply(
        api: httpx.AsyncClient, runtime: Runtime, fake_llm: FakeLLM) -> None:
    user, conversation = unique("u"), str(uuid.uuid4())
    issued = await ticket_for(api, user, conversation_id=conversation)
    fake_llm.token_interval_s = 0.05
    try:
        async with connect(ws_url(runtime, issued["socket"])) as ws:
            assert orjson.loads(await ws.recv()) == {"type": "following"}
            await ws.send(orjson.dumps({"type": "message", "ref": "r1", "text": "Tell me about Porto trains"}).decode())
            frames = await frames_until(ws, "reply")
    finally:
        fake_llm.token_interval_s = 0.0
    accepted = next(f for f in frames if f["type"] == "accepted")
    assert accepted["ref"] == "r1" and accepted["conversation_id"] == conversation and not accepted["duplicate"]
    assert any(f["type"] == "typing" and f["in_reply_to"] == accepted["message_id"] for f in frames)
    tokens = [f for f in frames if f["type"] == "token"]
    reply = frames[-1]
    assert reply["data"]["in_reply_to"] == accepted["message_id"] and len(tokens) >= 1
    text = ""
    for t in tokens:
        text = text[:t["data"]["offset"]] + t["data"]["text"]
    assert text == reply["data"]["text"] and text.startswith("You asked: Tell me about Porto trains")
    assert all(f["id"] for f in [*tokens, reply])


async def test_a_socket_authenticates_by_first_message_and_resumes_after_its_last_id(
        api: httpx.AsyncClient, runtime: Runtime, fake_llm: FakeLLM) -> None:
    user = unique("u")
    bearer = token(user)["Authorization"].removeprefix("Bearer ")
    path = f"/v1/users/{user}/socket"
    fake_llm.token_interval_s = 0.05
    try:
        async with connect(ws_url(runtime, path)) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": bearer}).decode())
            assert orjson.loads(await ws.recv()) == {"type": "following"}
            await ws.send(orjson.dumps({"type": "message", "text": "Which trains go to Braga"}).decode())
            first = await frames_until(ws, "token")
            posted = next(f for f in first if f["type"] == "accepted")
        early = first[-1]
        async with connect(ws_url(runtime, path)) as ws:  # back after one piece, with its id
            await ws.send(orjson.dumps({"type": "auth", "token": bearer, "after": early["id"]}).decode())
            rest = await frames_until(ws, "reply")
    finally:
        fake_llm.token_interval_s = 0.0
    streamed = [f for f in rest if f["type"] in ("token", "reply")]
    reply = streamed[-1]
    assert reply["data"]["in_reply_to"] == posted["message_id"]
    assert early["id"] not in {f["id"] for f in streamed}  # nothing twice
    text = ""
    for t in [early, *streamed[:-1]]:
        text = text[:t["data"]["offset"]] + t["data"]["text"]
    assert text == reply["data"]["text"]  # nothing missing
    # A bad message gets an error frame naming the field; the socket stays open.
    async with connect(ws_url(runtime, path)) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": bearer}).decode())
        await ws.recv()
        await ws.send(orjson.dumps({"type": "message", "ref": 7, "text": ""}).decode())
        [error] = await frames_until(ws, "error")
        assert (error["ref"], error["status"]) == (7, 422) and "text" in error["message"]
        await ws.send(orjson.dumps({"type": "message", "ref": 8, "text": "still here"}).decode())
        assert (await frames_until(ws, "accepted"))[-1]["ref"] == 8


async def test_a_socket_without_credentials_or_for_another_user_is_closed(
        api: httpx.AsyncClient, runtime: Runtime) -> None:
    user = unique("u")
    async with connect(ws_url(runtime, f"/v1/users/{user}/socket?ticket=not-a-ticket")) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with connect(ws_url(runtime, f"/v1/users/{user}/socket")) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": token(unique("ben"))["Authorization"][7:]}).decode())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    async with connect(ws_url(runtime, f"/v1/users/{user}/socket")) as ws:
        await ws.send("hello")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
