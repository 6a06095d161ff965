"""OpenAI-compatible chat model adapter. It always streams (first tokens arrive sooner
and long answers do not hit read time-outs) and assembles the text and usage.

Every call is counted by operation and outcome, timed, and its reported tokens added
(convmem.telemetry.metrics). The operation is the view's (`for_operation`: reply, summary, title,
rewrite); a reply whose text goes to live views as it comes is a `stream`."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import openai
import orjson

from convmem.errors import PoisonError, RetryableError
from convmem.ports import ChatMessage, Completion
from convmem.telemetry import metrics


class OpenAIChatModel:
    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float,
                 temperature: float, max_tokens: int, max_connections: int = 64) -> None:
        # One connection per answer in flight, kept alive between answers; the timeout bounds
        # every call, so a hung model frees its slot. Retries belong to the delivery layer
        # (one place), so the client makes none itself.
        pool = openai.DefaultAsyncHttpxClient(limits=_limits(max_connections), timeout=timeout_s)
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s,
                                          max_retries=0, http_client=pool)
        self.name = model
        self.operation = "reply"
        self._temperature = temperature
        self._max_tokens = max_tokens

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
        """One streamed completion. The SDK sends the request and raises its typed errors;
        the server-sent events are read here with orjson, because building the SDK's typed
        chunk objects, one per token, cost more CPU than the rest of a reply's path."""
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        finish: str | None = None
        model = self.name
        try:
            wire: Any = [{"role": m.role, "content": m.content} for m in messages]
            async with self._client.chat.completions.with_streaming_response.create(
                model=self.name, messages=wire,
                temperature=self._temperature, max_tokens=self._max_tokens, stream=True,
                stream_options={"include_usage": True},
            ) as response:
                async for line in response.iter_lines():
                    chunk = _event(line)
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
        except (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                openai.InternalServerError, httpx.TransportError) as exc:
            raise RetryableError(f"LLM unavailable: {type(exc).__name__}") from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            # A configuration problem, not this message's fault: keep it, retry later.
            raise RetryableError(f"LLM refused our credentials: {exc.status_code}") from exc
        except openai.APIStatusError as exc:
            raise PoisonError(f"LLM rejected the request: {exc.status_code}") from exc
        return Completion("".join(parts), model, prompt_tokens, completion_tokens, finish)


def _event(line: str) -> dict[str, Any] | None:
    """The JSON object of one `data:` line of the stream; None for anything else (comments,
    blank separators, `event:` lines, the closing [DONE]). An error the server reports in the
    stream, after its 200, is the model being unavailable for now."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
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
    if isinstance(cause, openai.RateLimitError):
        return "rate_limited"
    # A caller's deadline (the rewrite stage's) cancels the call: for the model, a timeout.
    if isinstance(cause, openai.APITimeoutError | httpx.TimeoutException | asyncio.CancelledError | TimeoutError):
        return "timeout"
    return "error"


def _limits(connections: int) -> Any:
    # The openai client brings its own HTTP library along: its Limits type is the one to use.
    limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)
    return limits_type(max_connections=connections, max_keepalive_connections=connections)
