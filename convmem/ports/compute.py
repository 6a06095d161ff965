"""Ports to the engines that compute rather than store: the vector index, the embedder, the
tokenizer and the chat model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from convmem.ports.records import ChatMessage, Completion, MemoryScope, PointKind, VectorHit, VectorPoint


class VectorIndex(Protocol):
    async def upsert(self, points: Sequence[VectorPoint]) -> None: ...
    async def search(self, vector: Sequence[float], scope: MemoryScope, limit: int,
                     kind: PointKind = "turn") -> list[VectorHit]:
        """The nearest points of one kind: turns, or units (bursts, whose payload lists
        their `members`); a point written before kinds existed is a turn."""
        ...
    async def delete(self, ids: Sequence[UUID]) -> None: ...
    async def vectors(self, ids: Sequence[UUID]) -> dict[UUID, list[float]]: ...
    async def delete_scope(self, scope: MemoryScope) -> None: ...
    async def close(self) -> None: ...


class Embedder(Protocol):
    @property
    def dimension(self) -> int: ...
    @property
    def name(self) -> str: ...
    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class TokenCounter(Protocol):
    """How many tokens a model would read for a text (for context budgets)."""

    @property
    def name(self) -> str: ...
    def count(self, text: str) -> int: ...


class ChatModel(Protocol):
    @property
    def name(self) -> str: ...
    async def complete(self, messages: Sequence[ChatMessage]) -> Completion: ...
    async def stream(self, messages: Sequence[ChatMessage], on_text: Callable[[str], None]) -> Completion:
        """As `complete`, handing each piece of text to `on_text` as the model produces it.
        `on_text` must return at once: the model's stream is read at the model's pace."""


class SigningKeys(Protocol):
    """An identity provider's published token signing keys (a JWKS document), cached."""

    async def key(self, kid: str | None) -> object:
        """The public key with this key id (a cryptography key object). LookupError when the
        provider does not publish it, RetryableError when the provider cannot be reached."""
        ...
