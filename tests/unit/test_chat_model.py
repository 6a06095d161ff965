"""The chat model adapter reads an OpenAI-compatible stream as servers send it: lines split
anywhere across reads, CRLF endings, comments and keep-alives, usage in a last frame; and it
sorts the server's refusals into retry-later and never-again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from convmem.adapters.chat_model import OpenAIChatModel
from convmem.errors import PoisonError, RetryableError
from convmem.ports import ChatMessage

ASK = [ChatMessage("system", "be brief"), ChatMessage("user", "where did we eat?")]


def frames(*pieces: str, usage: tuple[int, int] = (12, 3)) -> bytes:
    out = [b": keep-alive\r\n\r\n"]
    for piece in pieces:
        chunk = {"model": "served-model", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        out.append(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n")
    out.append(b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n")
    out.append(b"data: " + orjson.dumps({"choices": [], "usage": {"prompt_tokens": usage[0],
                                                                   "completion_tokens": usage[1]}}) + b"\n\n")
    return b"".join([*out, b"data: [DONE]\n\n"])


async def in_reads(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i:i + size]


def model(handler: httpx.MockTransport) -> OpenAIChatModel:
    return OpenAIChatModel("http://model.test/v1", "asked-model", "k", timeout_s=5, temperature=0, max_tokens=50,
                           transport=handler)


@pytest.mark.parametrize("read_size", [1, 7, 4096])
async def test_a_stream_split_anywhere_is_assembled_with_its_usage(read_size: int) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=in_reads(frames("Thai ", "near ", "home"), read_size))

    pieces: list[str] = []
    done = await model(httpx.MockTransport(answer)).stream(ASK, pieces.append)

    assert (done.text, done.model, done.prompt_tokens, done.completion_tokens, done.finish_reason) == \
        ("Thai near home", "served-model", 12, 3, "stop")
    assert pieces == ["Thai ", "near ", "home"]
    sent = orjson.loads(seen[0].content)
    assert str(seen[0].url) == "http://model.test/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer k"
    assert sent["stream"] is True and sent["model"] == "asked-model" and sent["max_tokens"] == 50
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "where did we eat?"}]


@pytest.mark.parametrize(("status", "error"), [(429, RetryableError), (503, RetryableError), (401, RetryableError),
                                               (400, PoisonError), (422, PoisonError)])
async def test_refusals_are_retried_later_or_never(status: int, error: type[Exception]) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, json={"error": {"message": "no"}}))
    with pytest.raises(error):
        await model(transport).complete(ASK)


async def test_an_error_inside_the_stream_or_a_broken_frame_means_try_again() -> None:
    bodies = [b'data: {"error": {"message": "overloaded"}}\n\n', b"data: {not json\n\n"]
    for body in bodies:
        transport = httpx.MockTransport(lambda _, b=body: httpx.Response(200, content=b))
        with pytest.raises(RetryableError):
            await model(transport).complete(ASK)


async def test_an_unreachable_model_is_unavailable_not_a_bad_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(RetryableError):
        await model(httpx.MockTransport(refuse)).complete(ASK)
