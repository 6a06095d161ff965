"""A real browser on another origin: headless Chromium loads a page from a local server on
another port, which opens a native `EventSource` with a stream ticket (no Authorization
header), posts with fetch and a bearer token (preflighted: Authorization, Content-Type,
Idempotency-Key), and sees the reply token by token. The server is restarted (SIGTERM, a new
process on the same port) while a reply is being written: the page gets the `restart` frame,
asks for a fresh ticket and resumes after its last frame id, and ends with every reply once,
whole. Then a WebSocket opened by the page posts a message and receives its reply."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import Page, async_playwright

from tests.conftest import token
from tests.crash.test_killed_worker import Worker
from tests.fake_llm import FakeLLM
from tests.local_http import LocalServer
from tests.services import Endpoints

pytestmark = pytest.mark.stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
GRACE_S = 10.0

# The page a web chat would be, reduced to what the test reads: frames land in window.seen.
# EventSource reconnects by itself with its old URL, whose ticket is used up; so on the
# `restart` frame or an error the page closes it and opens a new one with a fresh ticket,
# resuming after the last frame id it got (`after`: a new EventSource cannot set Last-Event-ID).
PAGE = """<!doctype html><html><head><title>chat</title></head><body>
<script id="cfg" type="application/json">%s</script>
<script>
const cfg = JSON.parse(document.getElementById("cfg").textContent);
const auth = {"Authorization": "Bearer " + cfg.token};
window.seen = []; window.following = 0; window.restarts = 0; window.errors = 0; window.opened = 0;
let source = null, lastId = null, reopening = false;

async function ticket(stream) {
  const r = await fetch(cfg.api + "/v1/stream-tickets", {method: "POST", body: JSON.stringify(stream),
    headers: {...auth, "Content-Type": "application/json"}});
  if (r.status !== 201) throw new Error("ticket: " + r.status);
  return (await r.json()).ticket;
}
function keep(kind) {
  return (e) => { lastId = e.lastEventId; window.seen.push({kind, id: e.lastEventId, data: JSON.parse(e.data)}); };
}
async function open() {
  for (;;) {
    try {
      let url = cfg.api + "/v1/conversations/" + cfg.conv + "/events?ticket="
        + encodeURIComponent(await ticket({conversation_id: cfg.conv}));
      if (lastId) url += "&after=" + encodeURIComponent(lastId);
      source = new EventSource(url);
      window.opened++;
      source.addEventListener("following", () => { window.following++; });
      source.addEventListener("token", keep("token"));
      source.addEventListener("reply", keep("reply"));
      source.addEventListener("restart", () => { window.restarts++; window.restartAt = window.seen.length; reopen(); });
      source.onerror = () => { window.errors++; reopen(); };
      return;
    } catch (err) {
      await new Promise((r) => setTimeout(r, 300));  // the server is away: try again
    }
  }
}
function reopen() {
  if (source) { source.close(); source = null; }
  if (reopening) return;
  reopening = true;
  setTimeout(async () => { await open(); reopening = false; }, 300);
}
window.post = async (text) => {
  const r = await fetch(cfg.api + "/v1/messages", {method: "POST",
    headers: {...auth, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID()},
    body: JSON.stringify({user_id: cfg.user, conversation_id: cfg.conv, text})});
  return {status: r.status, body: await r.json()};
};
window.chatOverSocket = async (text) => {
  const t = await ticket({user_id: cfg.user});
  const ws = new WebSocket(cfg.api.replace("http", "ws") + "/v1/users/" + cfg.user + "/socket?ticket=" + t);
  const got = [];
  return await new Promise((resolve, reject) => {
    ws.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      got.push(frame);
      if (frame.type === "following") ws.send(JSON.stringify({type: "message", ref: "w1", text}));
      if (frame.type === "reply") { ws.close(1000); resolve(got); }
    };
    ws.onclose = (e) => { if (e.code !== 1000) reject(new Error("closed " + e.code)); };
  });
};
open();
</script></body></html>"""


class PageServer(LocalServer):
    """The web chat's origin: another port than the API's, so every call is cross-origin."""

    def __init__(self, config: dict[str, str]) -> None:
        self.config = config

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/")
        async def page() -> HTMLResponse:
            return HTMLResponse(PAGE % json.dumps(self.config))

        return app


@pytest.fixture
async def writing_model() -> AsyncIterator[FakeLLM]:
    llm = FakeLLM()
    await llm.start()
    yield llm
    await llm.stop()


async def replies(page: Page) -> dict[str, int]:
    found: dict[str, int] = await page.evaluate(
        "() => { const n = {}; for (const f of window.seen) if (f.kind === 'reply') "
        "n[f.data.in_reply_to] = (n[f.data.in_reply_to] || 0) + 1; return n; }")
    return found


async def wait_for(page: Page, expression: str, timeout_s: float = 60) -> None:
    await page.wait_for_function(expression, timeout=timeout_s * 1000, polling=100)


def assembled(frames: list[dict[str, Any]], in_reply_to: str) -> str:
    text = ""
    for f in frames:
        if f["kind"] == "token" and f["data"]["in_reply_to"] == in_reply_to:
            text = text[:f["data"]["offset"]] + f["data"]["text"]
    return text


async def test_a_native_event_source_on_another_origin_streams_and_resumes_after_a_restart(
        endpoints: Endpoints, writing_model: FakeLLM, tmp_path: Path) -> None:
    worker = Worker(endpoints, writing_model, tmp_path)
    user, conv = f"browser-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    page_server = PageServer({})
    await page_server.start()
    origin = f"http://127.0.0.1:{page_server.port}"
    worker.env.update({"CONVMEM_CORS_ALLOW_ORIGINS": origin, "CONVMEM_SHUTDOWN_GRACE_S": str(GRACE_S)})
    page_server.config.update({"api": f"http://127.0.0.1:{worker.port}", "user": user, "conv": conv,
                               "token": token(user)["Authorization"].removeprefix("Bearer ")})
    try:
        await worker.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(origin + "/")
                await wait_for(page, "window.following >= 1")
                first = await page.evaluate("post('Hello from the browser')")
                assert first["status"] == 202, first
                await wait_for(page, f"window.seen.some(f => f.kind === 'reply' && "
                                     f"f.data.in_reply_to === '{first['body']['message_id']}')")

                # A reply being written when the server restarts.
                writing_model.token_interval_s = 0.4
                second = await page.evaluate("post('Tell me a long story about the night trains from Lisbon "
                                             "to Porto and back again please')")
                assert second["status"] == 202, second
                second_id = second["body"]["message_id"]
                await wait_for(page, f"window.seen.filter(f => f.kind === 'token' && "
                                     f"f.data.in_reply_to === '{second_id}').length >= 2")
                assert worker.proc is not None
                signalled = time.monotonic()
                worker.proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(worker.proc.wait(), timeout=GRACE_S + 5)
                assert time.monotonic() - signalled < GRACE_S and worker.proc.returncode == 0
                writing_model.token_interval_s = 0.0
                await worker.start()  # the same port: the page's EventSource comes back to it

                await wait_for(page, f"window.seen.some(f => f.kind === 'reply' && f.data.in_reply_to === '{second_id}')",
                               timeout_s=90)
                await wait_for(page, "window.following >= 2")
                third = await page.evaluate("post('Are you back?')")
                assert third["status"] == 202, third
                await wait_for(page, f"window.seen.some(f => f.kind === 'reply' && "
                                     f"f.data.in_reply_to === '{third['body']['message_id']}')")

                seen: list[dict[str, Any]] = await page.evaluate("window.seen")
                state = await page.evaluate("({restarts: window.restarts, opened: window.opened, at: window.restartAt})")
                assert state["restarts"] >= 1 and state["opened"] >= 2  # told to reconnect, and did
                # Pieces of the second reply came before the restart, its end after it (resumed).
                assert any(f["kind"] == "token" and f["data"]["in_reply_to"] == second_id for f in seen[:state["at"]])
                assert any(f["kind"] == "reply" and f["data"]["in_reply_to"] == second_id for f in seen[state["at"]:])
                ids = [f["id"] for f in seen]
                assert all(ids) and not [i for i, n in Counter(ids).items() if n > 1]  # nothing doubled
                asked = [first["body"]["message_id"], second_id, third["body"]["message_id"]]
                assert await replies(page) == {m: 1 for m in asked}  # each reply once
                for message_id in asked:  # nothing missing: the pieces make the whole reply
                    [reply] = [f for f in seen if f["kind"] == "reply" and f["data"]["in_reply_to"] == message_id]
                    assert assembled(seen, message_id) == reply["data"]["text"]

                over_socket = await asyncio.wait_for(page.evaluate("chatOverSocket('And over a socket?')"), 60)
                kinds = [f["type"] for f in over_socket]
                assert kinds[0] == "following" and "accepted" in kinds and kinds[-1] == "reply"
                accepted = next(f for f in over_socket if f["type"] == "accepted")
                assert over_socket[-1]["data"]["in_reply_to"] == accepted["message_id"]
                assert over_socket[-1]["data"]["text"].startswith("You asked: And over a socket?")
            finally:
                await browser.close()
    finally:
        await worker.stop()
        await page_server.stop()
