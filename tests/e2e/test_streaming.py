"""Replies reaching web clients, on the real stack: `POST /v1/messages?wait=` answers with the
reply, and a conversation's event stream delivers its tokens as the model produces them,
then the reply, resumes after a reconnect, and refuses another user."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest

from composition.runtime import Runtime
from tests.conftest import token, unique
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.stack


@dataclass
class Frame:
    id: str | None
    event: str
    data: dict[str, Any]


class Stream:
    """Reads Server-Sent Events frames (and comment lines) from a streaming response."""

    def __init__(self, resp: httpx.Response) -> None:
        self._lines: AsyncIterator[str] = resp.aiter_lines()

    async def next(self) -> Frame:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line.startswith(":"):
                return Frame(None, "comment", {"text": line[1:].strip()})
            if not line:
                if "event" in fields:
                    return Frame(fields.get("id"), fields["event"], orjson.loads(fields.get("data", "{}")))
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    async def until(self, event: str, text: str | None = None) -> list[Frame]:
        seen: list[Frame] = []
        while True:
            frame = await self.next()
            if frame.event not in ("comment", "following"):  # "following" also as an event, for EventSource
                seen.append(frame)
            if frame.event == event and (text is None or frame.data.get("text") == text):
                return seen


def assemble(tokens: list[Frame]) -> str:
    """A reply's text from its token frames, each placed at its offset."""
    text = ""
    for t in tokens:
        text = text[:t.data["offset"]] + t.data["text"]
    return text


async def post(api: httpx.AsyncClient, user: str, text: str, wait: float | None = None,
               **extra: object) -> httpx.Response:
    query = "" if wait is None else f"?wait={wait}"
    return await api.post(f"/v1/messages{query}", json={"user_id": user, "text": text, **extra}, headers=token(user))


async def test_wait_answers_with_the_reply_its_sources_and_usage(api: httpx.AsyncClient, runtime: Runtime) -> None:
    user, ext = unique("u"), unique("ext")
    resp = await post(api, user, "What is the capital of France?", wait=20, external_id=ext)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    reply = body["reply"]
    assert (body["status"], body["duplicate"], reply["in_reply_to"]) == ("answered", False, body["message_id"])
    assert reply["text"].startswith("You asked: What is the capital of France?") and reply["model"] == "fake-gpt"
    assert reply["usage"]["total_tokens"] > 0 and reply["sources"] == [] and reply["conversation_id"]
    again = await post(api, user, "What is the capital of France?", wait=20, external_id=ext)  # a retried post
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["reply"]["message_id"] == reply["message_id"]


async def test_wait_gives_the_usual_202_when_the_reply_is_late(api: httpx.AsyncClient, runtime: Runtime,
                                                                fake_llm: FakeLLM) -> None:
    user = unique("u")
    fake_llm.latency_s = 2.0
    try:
        resp = await post(api, user, "Take your time", wait=0.3)
    finally:
        fake_llm.latency_s = 0.0
    assert resp.status_code == 202 and resp.json()["status"] == "accepted"
    # History posted by a service (only services and admins may say no reply is expected):
    # no reply is coming, so waiting ends at once with the usual 202.
    history = await api.post("/v1/messages?wait=5", json={"user_id": user, "text": "history", "reply_expected": False},
                             headers=token("backend", roles=("service",)))
    assert history.status_code == 202
    assert (await post(api, user, "too long a wait", wait=61)).status_code == 422


async def test_the_event_stream_sends_tokens_as_they_come_then_the_reply(
        api: httpx.AsyncClient, runtime: Runtime, fake_llm: FakeLLM) -> None:
    user, conversation = unique("u"), uuid.uuid4()  # a new conversation: its stream opens before it exists
    fake_llm.token_interval_s = 0.1
    try:
        async with api.stream("GET", f"/v1/conversations/{conversation}/events", headers=token(user)) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            stream = Stream(resp)
            assert (await stream.next()).data["text"] == "following"
            posted = (await post(api, user, "Tell me about the weather in Porto please",
                                 conversation_id=str(conversation))).json()
            frames = await stream.until("reply")
    finally:
        fake_llm.token_interval_s = 0.0
    *tokens, reply = frames
    assert reply.event == "reply" and reply.data["in_reply_to"] == posted["message_id"]
    # Pieces as the model wrote them. Fewer than the model's tokens when the broker is slow to
    # acknowledge (the publisher joins what accumulated meanwhile: it never slows the model).
    assert len(tokens) >= 2 and {t.event for t in tokens} == {"token"}
    assert assemble(tokens) == reply.data["text"] and reply.data["text"].startswith("You asked: Tell me about")
    assert reply.data["model"] == "fake-gpt" and reply.data["usage"]["total_tokens"] > 0
    assert all(f.id for f in frames) and len({f.id for f in frames}) == len(frames)


async def test_a_reconnecting_client_resumes_after_its_last_event_id(
        api: httpx.AsyncClient, runtime: Runtime, fake_llm: FakeLLM) -> None:
    user = unique("u")
    first = (await post(api, user, "hello", wait=20)).json()  # the conversation exists, with one exchange
    conversation = first["conversation_id"]
    url = f"/v1/conversations/{conversation}/events"
    fake_llm.token_interval_s = 0.05
    try:
        async with api.stream("GET", url, headers=token(user)) as resp:
            stream = Stream(resp)
            await stream.next()
            posted = (await post(api, user, "Which trains go from Lisbon to Porto in the morning",
                                 conversation_id=conversation)).json()
            [early] = await stream.until("token")
        # Disconnected after one piece; back with its id, on a new connection.
        async with api.stream("GET", url, headers={**token(user), "Last-Event-ID": early.id or ""}) as resp:
            rest = await Stream(resp).until("reply")
    finally:
        fake_llm.token_interval_s = 0.0
    reply = rest[-1]
    assert reply.data["in_reply_to"] == posted["message_id"]
    assert early.id not in {f.id for f in rest}  # nothing twice
    assert assemble([early, *rest[:-1]]) == reply.data["text"]  # nothing missing

    # Resuming from the reply's own id: nothing old comes again, the next reply does.
    async with api.stream("GET", url, headers={**token(user), "Last-Event-ID": reply.id or ""}) as resp:
        stream = Stream(resp)
        assert (await stream.next()).data["text"] == "following"
        later = (await post(api, user, "thanks", conversation_id=conversation)).json()
        frames = await stream.until("reply")
    assert {f.data["in_reply_to"] for f in frames} == {later["message_id"]}


async def test_another_users_stream_is_refused(api: httpx.AsyncClient, runtime: Runtime) -> None:
    ana, ben = unique("ana"), unique("ben")
    conversation = (await post(api, ana, "my secret plans", wait=20)).json()["conversation_id"]
    url = f"/v1/conversations/{conversation}/events"
    async with api.stream("GET", url, headers=token(ben)) as resp:
        assert resp.status_code == 404
    async with api.stream("GET", url) as resp:
        assert resp.status_code == 401
    async with api.stream("GET", url, headers=token("svc", roles=("service",))) as resp:
        assert resp.status_code == 404  # a service posts for users; it does not read them


async def test_a_users_stream_follows_all_their_conversations_and_resumes(
        api: httpx.AsyncClient, runtime: Runtime, fake_llm: FakeLLM) -> None:
    user, stranger = unique("u"), unique("x")
    existing = (await post(api, user, "hello", wait=20)).json()["conversation_id"]
    url = f"/v1/users/{user}/events"
    fake_llm.token_interval_s = 0.05
    try:
        async with api.stream("GET", url, headers=token(user)) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            stream = Stream(resp)
            assert (await stream.next()).data["text"] == "following"
            await post(api, stranger, "someone else entirely")  # never shown to this user
            old = (await post(api, user, "What did I say before?", conversation_id=existing)).json()
            new = (await post(api, user, "A brand new topic: sailing")).json()  # begun after the stream opened
            frames: list[Frame] = []
            while {f.data["in_reply_to"] for f in frames if f.event == "reply"} != {old["message_id"],
                                                                                   new["message_id"]}:
                frames += await stream.until("reply")
            # One more reply, read only up to its first piece, then the client drops.
            last = (await post(api, user, "And one more question about knots", conversation_id=existing)).json()
            early = [f for f in await stream.until("token") if f.data["in_reply_to"] == last["message_id"]]
        assert early, "the last reply's first piece was not seen"
        async with api.stream("GET", url, headers={**token(user), "Last-Event-ID": early[-1].id or ""}) as resp:
            rest = Stream(resp)
            resumed: list[Frame] = []
            while not any(f.event == "reply" and f.data["in_reply_to"] == last["message_id"] for f in resumed):
                resumed += await rest.until("reply")
    finally:
        fake_llm.token_interval_s = 0.0
    assert {f.data["conversation_id"] for f in frames} == {existing, new["conversation_id"]}
    for posted in (old, new):
        mine = [f for f in frames if f.data["in_reply_to"] == posted["message_id"]]
        assert mine[-1].event == "reply" and assemble(mine[:-1]) == mine[-1].data["text"]
    assert all(f.id and f.id.startswith("u") for f in frames)
    # After the reconnect: the rest of the last reply, nothing twice, nothing missing.
    again = [f for f in resumed if f.data["in_reply_to"] == last["message_id"]]
    assert not {f.id for f in again} & {f.id for f in early}
    assert assemble([*early, *again[:-1]]) == again[-1].data["text"]
    assert not {f.data["in_reply_to"] for f in resumed} & {old["message_id"], new["message_id"]}


async def test_a_users_stream_is_theirs_or_their_admins(api: httpx.AsyncClient, runtime: Runtime) -> None:
    ana, ben = unique("ana"), unique("ben")
    url = f"/v1/users/{ana}/events"
    async with api.stream("GET", url, headers=token(ben)) as resp:
        assert resp.status_code == 403
    async with api.stream("GET", url) as resp:
        assert resp.status_code == 401
    async with api.stream("GET", url, headers=token("svc", roles=("service",))) as resp:
        assert resp.status_code == 403  # a service posts for users; it does not read them
    async with api.stream("GET", url, headers=token("boss", roles=("admin",))) as resp:
        assert resp.status_code == 200 and (await Stream(resp).next()).data["text"] == "following"
