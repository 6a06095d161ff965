"""A local OpenAI-compatible /v1/embeddings server with a model of its own: a hashed bag of
words (texts that share words are near), at a dimension chosen per server. Real HTTP
through the openai client, so the index can be moved to another embedding model in tests."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request

from tests.local_http import LocalServer


@dataclass
class FakeEmbeddings(LocalServer):
    model: str = "bag-of-words"
    dimension: int = 64
    calls: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def vector(self, text: str) -> list[float]:
        v = [0.0] * self.dimension
        for word in re.findall(r"[a-z0-9']+", text.lower()):
            v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/embeddings")
        async def embeddings(request: Request) -> dict[str, Any]:
            body = await request.json()
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            self.calls += 1
            return {"object": "list", "model": body["model"],
                    "data": [{"object": "embedding", "index": i, "embedding": self.vector(t)}
                             for i, t in enumerate(texts)],
                    "usage": {"prompt_tokens": 0, "total_tokens": 0}}

        return app
