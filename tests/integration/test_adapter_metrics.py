"""The adapters count what happens at their edge, against local servers speaking the real
protocols: chat model calls by operation and outcome with the tokens the answer reported,
and Graph API sends by outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from convmem.adapters.chat_model import OpenAIChatModel
from convmem.adapters.whatsapp import GraphWhatsAppApi
from convmem.errors import RetryableError, SendRejected
from convmem.ports import ChatMessage, OutgoingText
from convmem.telemetry import metrics
from tests.fake_graph import TOKEN, FakeGraph
from tests.fake_llm import FakeLLM
from tests.scrape import value


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    server = FakeLLM()
    await server.start()
    yield server
    await server.stop()


def calls(operation: str, outcome: str) -> float:
    return value("convmem_model_calls_total", operation=operation, outcome=outcome)


async def test_model_calls_are_counted_per_operation_with_outcome_and_tokens(llm: FakeLLM) -> None:
    metrics.configure(True)
    model = OpenAIChatModel(llm.base_url, "fake-gpt", None, timeout_s=5, temperature=0, max_tokens=50)
    summary = model.for_operation("summary")
    ask = [ChatMessage("system", "be brief"), ChatMessage("user", "what did I say about the trip")]
    before = {k: calls(*k) for k in [("summary", "ok"), ("summary", "rate_limited"), ("summary", "error"),
                                     ("stream", "ok"), ("reply", "ok")]}
    prompt, completion = value("convmem_model_tokens_total", kind="prompt"), \
        value("convmem_model_tokens_total", kind="completion")
    timed = value("convmem_model_seconds_count", operation="summary")

    done = await summary.complete(ask)
    llm.failures[:] = [429, 500]
    with pytest.raises(RetryableError):
        await summary.complete(ask)
    with pytest.raises(RetryableError):
        await summary.complete(ask)
    pieces: list[str] = []
    await model.stream(ask, pieces.append)  # a reply whose text goes to live views
    await model.complete(ask)

    assert {k: calls(*k) - v for k, v in before.items()} == {
        ("summary", "ok"): 1, ("summary", "rate_limited"): 1, ("summary", "error"): 1,
        ("stream", "ok"): 1, ("reply", "ok"): 1}
    assert value("convmem_model_seconds_count", operation="summary") - timed == 3
    # The usage the answers reported: three answered calls, each the same size.
    assert value("convmem_model_tokens_total", kind="prompt") - prompt == 3 * done.prompt_tokens > 0
    assert value("convmem_model_tokens_total", kind="completion") - completion == 3 * done.completion_tokens > 0


async def test_sends_are_counted_by_outcome_and_timed(graph: FakeGraph) -> None:
    metrics.configure(True)
    api = GraphWhatsAppApi(graph.base_url, TOKEN)
    before = {o: value("convmem_sends_total", outcome=o) for o in ("sent", "retried", "failed")}
    timed = value("convmem_send_seconds_count")
    message = OutgoingText("555000111", "34600111222", "Hola", "convmem-reply:ref:0")
    graph.script["34600111222"] = [(429, 130429), (400, 131047)]
    try:
        with pytest.raises(RetryableError):
            await api.send_text(message)
        with pytest.raises(SendRejected):
            await api.send_text(message)
        assert await api.send_text(message)
    finally:
        await api.close()
    assert {o: value("convmem_sends_total", outcome=o) - v for o, v in before.items()} == {
        "sent": 1, "retried": 1, "failed": 1}
    assert value("convmem_send_seconds_count") - timed == 3
