"""Memory for apps and agents on the real stack: GET /v1/context (the block the responder
sends its model) and the MCP server, driven by the official SDK's own client."""

from __future__ import annotations

import re
import uuid
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from composition.runtime import Runtime
from tests.conftest import eventually, token, unique
from tests.e2e.test_memory_api import history
from tests.fake_llm import FakeLLM

pytestmark = pytest.mark.stack
SERVICE = ("service",)
ADMIN = ("admin",)
QUESTION = "Which dessert from the baking show did Caroline like best?"
TRIP = "我们下周去波尔图旅行\uff0c我很期待\uff01"  # "we're off to Porto next week", in Chinese


async def converse(api: httpx.AsyncClient, owner: str, lines: list[tuple[str, str, str]], days_ago: int,
                   conversation_id: str | None = None) -> list[dict[str, Any]]:
    """A two-person history, as a backend imports it: each turn names its speaker."""
    return await history(api, owner, [(role, text) for role, _, text in lines], days_ago, conversation_id,
                         metadata=[{"speaker": speaker} for _, speaker, _ in lines])


async def dessert_history(api: httpx.AsyncClient, owner: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    old = await converse(api, owner, [
        ("assistant", "Melanie", "Hey Caroline, which dessert from that baking show did you like best?"),
        ("user", "Caroline", "The lemon tart, easily! Made it three times."),
        ("assistant", "Melanie", "Okay now I'm hungry.")], days_ago=40)
    recent = await converse(api, owner, [
        ("user", "Caroline", TRIP),
        ("assistant", "Melanie", "Sounds lovely, send photos!")], days_ago=0)
    answer = old[1]["message_id"]

    async def searchable() -> bool:
        resp = await api.get("/v1/search", params={"q": QUESTION, "k": 3}, headers=token(owner))
        return any(h["message_id"] == answer for h in resp.json()["hits"]) and len(await _turns(api, owner)) == 5

    await eventually(searchable, timeout=60)
    return old, recent


async def _turns(api: httpx.AsyncClient, owner: str) -> list[str]:
    convs = (await api.get("/v1/conversations", headers=token(owner))).json()["conversations"]
    return [m["message_id"] for c in convs for m in
            (await api.get(f"/v1/conversations/{c['conversation_id']}", headers=token(owner))).json()["messages"]]


async def test_the_context_block_recalls_dated_named_memory_under_a_counted_budget(
        api: httpx.AsyncClient, runtime: Runtime) -> None:
    owner = unique("pair")
    old, recent = await dessert_history(api, owner)
    conv = recent[0]["conversation_id"]
    resp = await api.get("/v1/context", params={"conversation_id": conv, "q": QUESTION, "budget": 1000},
                         headers=token(owner))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["sources"][0] == old[1]["message_id"]
    top = body["recalled"][0]
    assert (top["speaker"], top["text"]) == ("Caroline", "The lemon tart, easily! Made it three times.")
    assert re.search(r"\[1\] \d{4}-\d{2}-\d{2} Melanie: Hey Caroline, which dessert", body["block"])
    assert re.search(r"\n    \d{4}-\d{2}-\d{2} Caroline: The lemon tart, easily!", body["block"])
    assert [t["message_id"] for t in body["recent"]] == [r["message_id"] for r in recent]
    assert body["messages"][0]["role"] == "system" and body["messages"][-1] == {"role": "user", "content": QUESTION}
    assert 0 < body["tokens"] <= body["budget"] == 1000 and body["tokenizer"]

    # Without a question, the conversation's latest user turn is the question; counted by a
    # real tokenizer, the Chinese turn costs a token a character, not one per four.
    latest = (await api.get("/v1/context", params={"conversation_id": conv}, headers=token(owner))).json()
    assert latest["question"] == TRIP
    # Naming neither: the next turn of the user's newest conversation, the same block.
    newest = (await api.get("/v1/context", headers=token(owner))).json()
    assert (newest["conversation_id"], newest["question"]) == (conv, TRIP)
    # A user with no conversation at all gets an empty block, not an error.
    empty = await api.get("/v1/context", headers=token(unique("nobody")))
    assert empty.status_code == 200 and empty.json()["recalled"] == [] and empty.json()["recent"] == []
    small = (await api.get("/v1/context", params={"conversation_id": conv, "q": QUESTION, "budget": 128},
                           headers=token(owner))).json()
    assert small["tokens"] <= 128 or not small["recent"]

    admin = await api.get("/v1/context", params={"conversation_id": conv, "q": QUESTION, "user_id": owner},
                          headers=token("boss", roles=ADMIN))
    assert admin.status_code == 200 and admin.json()["sources"][0] == body["sources"][0]


@pytest.mark.parametrize(("params", "who", "status"), [
    ({"q": "x", "user_id": "someone-else"}, "user", 403),
    ({"q": "x", "conversation_id": str(uuid.uuid4())}, "user", 404),
    ({"q": "x", "budget": 10}, "user", 422),
    ({"q": "x"}, None, 401),
])
async def test_bad_context_requests_get_a_precise_4xx(api: httpx.AsyncClient, runtime: Runtime,
                                                      params: dict[str, str | int], who: str | None,
                                                      status: int) -> None:
    headers = token(unique("u")) if who else {}
    resp = await api.get("/v1/context", params=params, headers=headers)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]


async def test_the_responder_sends_its_model_the_same_block(api: httpx.AsyncClient, runtime: Runtime,
                                                          fake_llm: FakeLLM) -> None:
    owner = unique("pair")
    _, recent = await dessert_history(api, owner)
    conv = recent[0]["conversation_id"]
    asked = await api.post("/v1/messages", json={"user_id": owner, "text": QUESTION, "conversation_id": conv},
                           headers=token(owner))
    assert asked.status_code == 202
    sent = await eventually(lambda: next((r for r in fake_llm.requests if r["messages"][-1]["content"] == QUESTION
                                          and "lemon tart" in r["messages"][0]["content"]), None), timeout=60)
    served = (await api.get("/v1/context", params={"conversation_id": conv, "q": QUESTION},
                            headers=token(owner))).json()
    line = next(x for x in served["block"].splitlines() if "Caroline: The lemon tart" in x)
    assert line in sent["messages"][0]["content"]


async def test_mcp_tools_answer_as_the_rest_api_under_the_same_token(api: httpx.AsyncClient,
                                                                    runtime: Runtime) -> None:
    owner, stranger = unique("pair"), unique("eve")
    old, recent = await dessert_history(api, owner)
    [theirs] = await converse(api, stranger, [("user", "Eve", "my own secret")], days_ago=1)
    url = f"http://127.0.0.1:{runtime.port}/mcp"

    async with httpx.AsyncClient(headers=token(owner), timeout=30) as http, \
            streamable_http_client(url, http_client=http) as (read, write, _), ClientSession(read, write) as mcp:
        await mcp.initialize()
        assert {t.name for t in (await mcp.list_tools()).tools} == {
            "search_memory", "get_context", "list_conversations", "read_conversation"}

        found = await mcp.call_tool("search_memory", {"query": QUESTION, "k": 5})
        assert not found.isError and found.structuredContent is not None
        assert found.structuredContent["hits"][0]["message_id"] == old[1]["message_id"]
        assert found.structuredContent["speakers"] == ["Caroline"]

        ctx = await mcp.call_tool("get_context", {"conversation_id": recent[0]["conversation_id"], "query": QUESTION})
        assert not ctx.isError and ctx.structuredContent is not None
        assert ctx.structuredContent["sources"][0] == old[1]["message_id"]

        listed = await mcp.call_tool("list_conversations", {"limit": 10})
        rest = (await api.get("/v1/conversations", params={"limit": 10}, headers=token(owner))).json()
        assert listed.structuredContent is not None
        assert [c["conversation_id"] for c in listed.structuredContent["conversations"]] == [
            c["conversation_id"] for c in rest["conversations"]]

        one = await mcp.call_tool("read_conversation", {"conversation_id": old[0]["conversation_id"]})
        assert one.structuredContent is not None
        assert [m["text"] for m in one.structuredContent["messages"]][1] == "The lemon tart, easily! Made it three times."

        refused = await mcp.call_tool("read_conversation", {"conversation_id": theirs["conversation_id"]})
        assert refused.isError and "conversation_not_found" in str(refused.content)
        forbidden = await mcp.call_tool("search_memory", {"query": "secret", "user_id": stranger})
        assert forbidden.isError and "forbidden" in str(forbidden.content)

    async with httpx.AsyncClient(headers=token("boss", roles=ADMIN), timeout=30) as http, \
            streamable_http_client(url, http_client=http) as (read, write, _), ClientSession(read, write) as mcp:
        await mcp.initialize()
        theirs_found = await mcp.call_tool("search_memory", {"query": "my own secret", "user_id": stranger})
        assert theirs_found.structuredContent is not None
        assert [h["message_id"] for h in theirs_found.structuredContent["hits"]][:1] == [theirs["message_id"]]


async def test_mcp_requests_without_a_valid_token_are_refused_before_the_protocol(
        api: httpx.AsyncClient, runtime: Runtime) -> None:
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "probe", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    for auth in ({}, {"Authorization": "Bearer not-a-jwt"}):
        resp = await api.post("/mcp", json=hello, headers=headers | auth)
        assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
        assert resp.json()["error"]
    ok = await api.post("/mcp", json=hello, headers=headers | token(unique("u")))
    assert ok.status_code == 200 and ok.json()["result"]["serverInfo"]["name"] == "convmem"
    assert ok.json()["result"]["serverInfo"]["version"] == version("convmem")  # not the MCP SDK's
