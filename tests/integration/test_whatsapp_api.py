"""The Graph API adapter against a local server speaking the Cloud API's protocol: what it
sends, and how each kind of answer is classified (not now / never / maybe sent)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from convmem.adapters.whatsapp import GraphWhatsAppApi
from convmem.errors import RetryableError, SendOutcomeUnknown, SendRejected
from convmem.ports import OutgoingText
from tests.fake_graph import TOKEN, FakeGraph


def text(to: str = "34600111222", body: str = "Hola") -> OutgoingText:
    return OutgoingText("555000111", to, body, "convmem-reply:ref:0")


async def test_a_text_goes_to_the_number_with_the_token_and_comes_back_with_its_wamid(graph: FakeGraph) -> None:
    api = GraphWhatsAppApi(graph.base_url, TOKEN)
    try:
        wamid = await api.send_text(text(body="¿Abrís el domingo?"))
    finally:
        await api.close()
    [taken] = graph.taken
    assert wamid == taken.wamid and wamid.startswith("wamid.")
    assert (taken.phone_number_id, taken.to, taken.body, taken.callback_data) == (
        "555000111", "34600111222", "¿Abrís el domingo?", "convmem-reply:ref:0")


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (429, 130429, RetryableError),  # throughput limit
    (400, 131056, RetryableError),  # too many messages to this user just now
    (500, 131000, RetryableError),
    (503, 99999, RetryableError),  # an unknown code on a server error: later
    (400, 131047, SendRejected),  # 24-hour window closed
    (400, 131026, SendRejected),  # undeliverable
    (400, 100, SendRejected),
])
async def test_graph_errors_are_classified_by_code(graph: FakeGraph, status: int, code: int,
                                                    outcome: type[Exception]) -> None:
    graph.script["34600111222"] = [(status, code)]
    api = GraphWhatsAppApi(graph.base_url, TOKEN)
    try:
        with pytest.raises(outcome) as raised:
            await api.send_text(text())
        if isinstance(raised.value, SendRejected):
            assert raised.value.code == code
        assert await api.send_text(text())  # the script is spent: the next one goes
    finally:
        await api.close()


async def test_a_bad_token_is_final(graph: FakeGraph) -> None:
    api = GraphWhatsAppApi(graph.base_url, "not-the-token")
    try:
        with pytest.raises(SendRejected) as raised:
            await api.send_text(text())
        assert raised.value.code == 190
    finally:
        await api.close()


async def test_no_answer_after_the_request_is_unknown_but_no_connection_is_retryable(graph: FakeGraph) -> None:
    graph.latency_s = 1.0
    api = GraphWhatsAppApi(graph.base_url, TOKEN, timeout_s=0.2)
    try:
        with pytest.raises(SendOutcomeUnknown):
            await api.send_text(text())
    finally:
        await api.close()
    await asyncio.sleep(1.0)
    assert len(graph.taken) == 1  # the server took it: sending again would have doubled it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    nowhere = GraphWhatsAppApi(f"http://127.0.0.1:{closed}/v23.0", TOKEN, timeout_s=1)
    try:
        with pytest.raises(RetryableError):
            await nowhere.send_text(text())
    finally:
        await nowhere.close()
