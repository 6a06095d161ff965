"""A local OpenAI-compatible chat server for tests and benchmarks: real HTTP, SSE streaming
with a usage chunk, scripted 429/500 answers, a configurable latency (time to first token
and per token), and a count of requests in flight. It answers by quoting the memory it was
given, so a test can see what context reached the model.

Run on its own: `python -m tests.fake_llm --port 8001 --latency 1.0` (GET /stats for the
peak number of requests in flight)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.local_http import LocalServer

MODEL = "fake-gpt"


@dataclass
class FakeLLM(LocalServer):
    failures: list[int] = field(default_factory=list)  # statuses to answer, one per call, first
    requests: list[dict[str, Any]] = field(default_factory=list)
    latency_s: float = 0.0  # before the first token (or the whole answer, unstreamed)
    token_interval_s: float = 0.0  # between streamed tokens
    in_flight: int = 0
    peak_in_flight: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, messages: list[dict[str, str]]) -> str:
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        memory = system.split("Memory from earlier turns:\n", 1)[1] if "Memory from earlier turns:" in system else ""
        return f"You asked: {messages[-1]['content']}" + (f"\nI remember:\n{memory}" if memory else "")

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/stats")
        async def stats() -> dict[str, int]:
            return {"requests": len(self.requests), "in_flight": self.in_flight,
                    "peak_in_flight": self.peak_in_flight}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            body = await request.json()
            self.requests.append(body)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            streaming = False
            try:
                response = await self._respond(body)
                streaming = isinstance(response, StreamingResponse)
                return response
            finally:
                if not streaming:  # a stream counts as in flight until its last frame
                    self.in_flight -= 1

        return app

    async def _respond(self, body: dict[str, Any]) -> Any:
        await asyncio.sleep(self.latency_s)
        if self.failures:
            status = self.failures.pop(0)
            return JSONResponse({"error": {"message": f"scripted {status}", "type": "test"}}, status_code=status)
        text = self.answer(body["messages"])
        finish = "stop"
        limit = body.get("max_tokens")
        if isinstance(limit, int) and len(words := text.split(" ")) > limit:  # as a real model stops
            text, finish = " ".join(words[:limit]), "length"
        created = int(time.time())
        if not body.get("stream"):
            return {"id": "c1", "object": "chat.completion", "created": created, "model": MODEL,
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()),
                              "total_tokens": 10 + len(text.split())}}

        async def events() -> Any:
            try:
                async for frame in self._frames(body, text, created, finish):
                    yield frame
            finally:
                self.in_flight -= 1

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _frames(self, body: dict[str, Any], text: str, created: int, finish: str) -> Any:
        words = text.split(" ")
        for i, w in enumerate(words):
            if i and self.token_interval_s:
                await asyncio.sleep(self.token_interval_s)
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": created, "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": w + (" " if i < len(words) - 1 else "")},
                                  "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        done = {"id": "c1", "object": "chat.completion.chunk", "created": created, "model": MODEL,
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        yield f"data: {json.dumps(done)}\n\n"
        prompt = sum(len(m["content"].split()) for m in body["messages"])
        usage = {"id": "c1", "object": "chat.completion.chunk", "created": created, "model": MODEL,
                 "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": len(words),
                                          "total_tokens": prompt + len(words)}}
        yield f"data: {json.dumps(usage)}\n\n"
        yield "data: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="an OpenAI-compatible chat server with a set latency")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before the first token")
    parser.add_argument("--token-interval", type=float, default=0.0, help="seconds between streamed tokens")
    args = parser.parse_args()
    llm = FakeLLM(latency_s=args.latency, token_interval_s=args.token_interval)
    uvicorn.run(llm.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
