"""Fakes of the compute ports: a brute-force vector index, a bag-of-words embedder and a
chat model that echoes."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from uuid import UUID

from convmem.ports import (
    ChatMessage,
    ChatModel,
    Completion,
    Embedder,
    MemoryScope,
    PointKind,
    SigningKeys,
    TokenCounter,
    VectorHit,
    VectorIndex,
    VectorPoint,
)


class FakeIndex(VectorIndex):
    """Brute-force cosine search with the same scope semantics as the real adapters."""

    def __init__(self) -> None:
        self.points: dict[UUID, VectorPoint] = {}

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        self.points.update({p.id: p for p in points})

    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int,
                     kind: PointKind = "turn") -> list[VectorHit]:
        from convmem.adapters.vectors import KIND_FIELD, scope_range, scope_terms

        terms, bounds = scope_terms(scope), scope_range(scope) or {}
        hits = [VectorHit(p.id, _cos(vector, p.vector), p.payload) for p in self.points.values()
                if all(p.payload.get(k) == v for k, v in terms.items())
                and (p.payload.get(KIND_FIELD) == "unit") == (kind == "unit")
                and (not bounds or bounds.get("gte", -math.inf) <= p.payload["occurred_at"] < bounds.get("lt", math.inf))]
        return sorted(hits, key=lambda h: -h.score)[:limit]

    async def delete(self, ids: Sequence[UUID]) -> None:
        for i in ids:
            self.points.pop(i, None)

    async def delete_scope(self, scope: MemoryScope) -> None:
        from convmem.adapters.vectors import scope_terms

        terms = scope_terms(scope)
        for pid in [p.id for p in self.points.values() if all(p.payload.get(k) == v for k, v in terms.items())]:
            del self.points[pid]

    async def vectors(self, ids: Sequence[UUID]) -> dict[UUID, list[float]]:
        return {i: list(self.points[i].vector) for i in ids if i in self.points}

    async def close(self) -> None:
        return None


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class FakeEmbedder(Embedder):
    """Hashed bag of words: texts sharing words are similar, which is all unit tests need."""

    name = "fake-bow"
    dimension = 64

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            v = [0.0] * self.dimension
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                v[int(hashlib.sha1(word.encode()).hexdigest(), 16) % self.dimension] += 1.0  # noqa: S324
            out.append(v)
        return out


class FakeTokenCounter(TokenCounter):
    """A token per word or punctuation mark: enough to test budgets without a tokenizer file."""

    name = "fake-words"

    def count(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))


class FakeChatModel(ChatModel):
    name = "fake-model"

    def __init__(self) -> None:
        self.calls: list[list[ChatMessage]] = []

    async def complete(self, messages: Sequence[ChatMessage]) -> Completion:
        self.calls.append(list(messages))
        return Completion(f"answer to: {messages[-1].content}", self.name, 7, 3, "stop")

    async def stream(self, messages: Sequence[ChatMessage], on_text: Callable[[str], None]) -> Completion:
        done = await self.complete(messages)
        words = done.text.split(" ")
        for i, word in enumerate(words):
            on_text(word if i == len(words) - 1 else word + " ")
        return done


class FakeSigningKeys(SigningKeys):
    """An identity provider's keys, held in memory: kid -> public key."""

    def __init__(self, keys: dict[str, object] | None = None) -> None:
        self.keys = dict(keys or {})

    async def key(self, kid: str | None) -> object:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        if kid is None or kid not in self.keys:
            raise LookupError(kid)
        return self.keys[kid]
