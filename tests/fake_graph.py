"""A local stand-in for Meta's Graph API (WhatsApp Cloud API) for tests and benchmarks: real
HTTP, `POST /{version}/{phone_number_id}/messages` with a bearer token, Graph API errors
(`{"error": {"code", "message", "error_data": {"details"}}}`), scripted failures per
recipient, a set latency, and, like Meta, status webhooks (sent, delivered, read) signed
with the app secret and posted back to convmem, echoing `biz_opaque_callback_data`.

A request whose body arrived is taken (after `latency_s`) whatever happened to its client
meanwhile, as Meta would: a sender killed mid-request leaves a message that was delivered.

Run on its own: `python -m tests.fake_graph --port 8002 --latency 0.05` (GET /stats)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.local_http import LocalServer

TOKEN = "test-graph-token"
VERSION = "v23.0"


def graph_error(status: int, code: int, message: str = "scripted") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "OAuthException", "code": code,
                                   "error_data": {"messaging_product": "whatsapp", "details": message},
                                   "fbtrace_id": "fake"}}, status_code=status)


@dataclass
class Taken:
    phone_number_id: str
    to: str
    body: str
    callback_data: str | None
    wamid: str


@dataclass
class FakeGraph(LocalServer):
    token: str = TOKEN
    latency_s: float = 0.0
    # recipient -> (HTTP status, Graph error code) answered to its next requests, in order
    script: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    taken: list[Taken] = field(default_factory=list)
    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    webhook_url: str | None = None  # where status webhooks go, signed with `app_secret`
    app_secret: str = ""
    statuses: tuple[str, ...] = ("sent", "delivered", "read")
    _posting: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{VERSION}"

    def to(self, recipient: str) -> list[Taken]:
        return [t for t in self.taken if t.to == recipient]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/stats")
        async def stats() -> dict[str, int]:
            return {"requests": self.requests, "taken": len(self.taken), "peak_in_flight": self.peak_in_flight}

        @app.post("/{version}/{phone_number_id}/messages")
        async def messages(version: str, phone_number_id: str, request: Request) -> Any:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await self._answer(phone_number_id, request)
            finally:
                self.in_flight -= 1

        return app

    async def _answer(self, phone_number_id: str, request: Request) -> Any:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token")
        body = await request.json()
        await asyncio.sleep(self.latency_s)
        text = (body.get("text") or {}).get("body")
        to = body.get("to")
        if body.get("messaging_product") != "whatsapp" or body.get("type") != "text" or not to or not text:
            return graph_error(400, 100, "Invalid parameter")
        if len(text) > 4096:
            return graph_error(400, 100, "text.body is longer than 4096 characters")
        scripted = self.script.get(to)
        if scripted:
            status, code = scripted.pop(0)
            return graph_error(status, code, f"scripted error {code}")
        wamid = f"wamid.{uuid.uuid4().hex}"
        taken = Taken(phone_number_id, to, text, body.get("biz_opaque_callback_data"), wamid)
        self.taken.append(taken)
        if self.webhook_url:
            task = asyncio.create_task(self._report(taken))
            self._posting.add(task)
            task.add_done_callback(self._posting.discard)
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}]}

    async def _report(self, taken: Taken) -> None:
        """Status webhooks as Meta sends them, one per status, a moment apart."""
        assert self.webhook_url is not None
        async with httpx.AsyncClient(timeout=10) as client:
            for status in self.statuses:
                await asyncio.sleep(0.05)
                st: dict[str, Any] = {"id": taken.wamid, "status": status, "timestamp": str(int(time.time())),
                                      "recipient_id": taken.to}
                if taken.callback_data:
                    st["biz_opaque_callback_data"] = taken.callback_data
                payload = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
                    "field": "messages", "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550001111", "phone_number_id": taken.phone_number_id},
                        "statuses": [st]}}]}]}
                raw = json.dumps(payload).encode()
                sig = hmac.new(self.app_secret.encode(), raw, hashlib.sha256).hexdigest()
                try:
                    await client.post(self.webhook_url, content=raw, headers={
                        "Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={sig}"})
                except httpx.HTTPError:
                    return  # Meta would retry later; a test that needs it will notice

    async def stop(self) -> None:
        for task in list(self._posting):  # status callbacks still on their way
            task.cancel()
        await super().stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="a local WhatsApp Cloud API (Graph API) for tests and benchmarks")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    graph = FakeGraph(latency_s=args.latency)
    uvicorn.run(graph.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
