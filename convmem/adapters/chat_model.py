"""OpenAI-compatible chat model adapter. It always streams (first tokens arrive sooner
and long answers do not hit read time-outs) and assembles the text and usage.

Every call is counted by operation and outcome, timed, and its reported tokens added
(convmem.telemetry.metrics). The operation is the view's (`for_operation`: reply, summary, title,
rewrite); a reply whose text goes to live views as it comes is a `stream`."""

from __future__ import annotations

import asyncio
import copy
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from convmem.errors import PoisonError, RetryableError
from convmem.ports import ChatMessage, Completion
from convmem.telemetry import metrics

POOL_CONNECTIONS = 16


class ModelRefused(Exception):
    """The model's server answered the request with an error status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


class OpenAIChatModel:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float,
                 temperature: float, max_tokens: int, max_connections: int = 64,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        # One connection per answer in flight, kept alive between answers; the timeout bounds
        # every call, so a hung model frees its slot. Retries belong to the delivery layer
        # (one place), so the client makes none itself.
        # httpcore's pool looks at every connection and every waiting request each time a
        # request starts or ends: with 128 connections that was 6 ms of the loop per reply
        # at 50 msg/s (py-spy). Several small pools, each request on the least busy one,
        # keep the same bound at a fraction of the cost.
        pools = max(1, math.ceil(max_connections / POOL_CONNECTIONS))
        each = math.ceil(max_connections / pools)
        limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
        headers = {"Authorization": f"Bearer {api_key or 'unused'}", "Content-Type": "application/json",
                   "Accept": "text/event-stream"}
        self._clients = [httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", limits=limits, timeout=timeout_s,
                                           headers=headers, transport=transport) for _ in range(pools)]
        self._busy = [0] * pools  # requests in flight per pool, shared by every operation's view
        self.name = model
        self.operation = "reply"
        self._temperature = temperature
        self._max_tokens = max_tokens

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()

    def for_operation(self, operation: str) -> OpenAIChatModel:
        """The same model and connections, its calls counted as `operation`."""
        view = copy.copy(self)
        view.operation = operation
        return view

    async def complete(self, messages: Sequence[ChatMessage]) -> Completion:
        return await self._metered(messages, _ignore, self.operation)

    async def stream(self, messages: Sequence[ChatMessage], on_text: Callable[[str], None]) -> Completion:
        return await self._metered(messages, on_text, "stream" if self.operation == "reply" else self.operation)

    async def _metered(self, messages: Sequence[ChatMessage], on_text: Callable[[str], None],
                       operation: str) -> Completion:
        started = time.perf_counter()
        try:
            done = await self._call(messages, on_text)
        except BaseException as exc:
            metrics.model_call(operation, _outcome(exc), time.perf_counter() - started)
            raise
        metrics.model_call(operation, "ok", time.perf_counter() - started, done.prompt_tokens, done.completion_tokens)
        return done

    async def _call(self, messages: Sequence[ChatMessage], on_text: Callable[[str], None]) -> Completion:
        """One streamed completion: the request written with orjson, the server-sent events
        read line by line. Plain HTTP, not the OpenAI SDK: its request transforms and typed
        chunks cost 2.4 ms of CPU per reply at 20 msg/s (py-spy), an eighth of a message's path."""
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        finish: str | None = None
        model = self.name
        body = orjson.dumps({
            "model": self.name, "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": self._temperature, "max_tokens": self._max_tokens, "stream": True,
            "stream_options": {"include_usage": True}})
        pool = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[pool] += 1
        try:
            async with self._clients[pool].stream("POST", "chat/completions", content=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise ModelRefused(response.status_code)
                # Lines split from the raw bytes (httpx's text line decoder costs more per
                # token than the JSON), each `data:` line's JSON read by orjson.
                rest = b""
                async for data in response.aiter_bytes():
                    *lines, rest = (rest + data).split(b"\n")
                    for chunk in map(_event, lines):
                        if chunk is None:
                            continue
                        model = chunk.get("model") or model
                        if usage := chunk.get("usage"):
                            prompt_tokens = int(usage.get("prompt_tokens") or 0)
                            completion_tokens = int(usage.get("completion_tokens") or 0)
                        for choice in chunk.get("choices") or ():
                            text = (choice.get("delta") or {}).get("content")
                            if text:
                                parts.append(text)
                                on_text(text)
                            finish = choice.get("finish_reason") or finish
        except httpx.TransportError as exc:  # connection refused or lost, a time-out
            raise RetryableError(f"LLM unavailable: {type(exc).__name__}") from exc
        except ModelRefused as exc:
            if exc.status in (401, 403):  # a configuration problem, not this message's fault: retry later
                raise RetryableError(f"LLM refused our credentials: {exc.status}") from exc
            if exc.status in (408, 409, 429) or exc.status >= 500:  # busy or failing: later
                raise RetryableError(f"LLM unavailable: {exc.status}") from exc
            raise PoisonError(f"LLM rejected the request: {exc.status}") from exc
        finally:
            self._busy[pool] -= 1
        return Completion("".join(parts), model, prompt_tokens, completion_tokens, finish)


def _event(line: bytes) -> dict[str, Any] | None:
    """The JSON object of one `data:` line of the stream; None for anything else (comments,
    blank separators, `event:` lines, the closing [DONE]). An error the server reports in the
    stream, after its 200, is the model being unavailable for now."""
    if not line.startswith(b"data:"):
        return None
    data = line[5:].strip()
    if not data or data == b"[DONE]":
        return None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RetryableError("LLM stream sent a frame that is not JSON") from exc
    if not isinstance(chunk, dict):
        return None
    if chunk.get("error") is not None:
        raise RetryableError("LLM reported an error in its stream")
    return chunk


def _ignore(_: str) -> None:
    return None


def _outcome(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, RetryableError | PoisonError) else exc
    if isinstance(cause, ModelRefused) and cause.status == 429:
        return "rate_limited"
    # A caller's deadline (the rewrite stage's) cancels the call: for the model, a timeout.
    if isinstance(cause, httpx.TimeoutException | asyncio.CancelledError | TimeoutError):
        return "timeout"
    return "error"
