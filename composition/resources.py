"""The clients a process needs, built in its lifespan (never at import time) and closed on
the way out. Roles are declared against providers that read this holder when a message
arrives, so a broker can be declared (and documented) before anything connects."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from convmem.adapters.postgres import PostgresStorage
from convmem.adapters.postgres.analytics import PgAnalytics
from convmem.adapters.postgres.console import PgConsoleLedger
from convmem.home import state_dir
from convmem.memory.context import ContextBuilder, RecallPolicy
from convmem.memory.retrieval import Retriever, Stages
from convmem.memory.timeframe import DateReading, warm_up
from convmem.ports import ChatModel, Embedder, Storage, TokenCounter, VectorIndex, WhatsAppApi
from convmem.ports.analytics import Analytics
from convmem.ports.console import ConsoleLedger
from convmem.privacy.sealing import Sealer
from convmem.settings import ResponderSettings, SenderSettings, VectorSettings


class NotStarted(RuntimeError):
    pass


UPKEEP_OPERATIONS = frozenset({"title", "summary"})


@runtime_checkable
class _PerOperation(Protocol):
    def for_operation(self, operation: str) -> ChatModel: ...


@dataclass
class Resources:
    stages: Stages = field(default_factory=Stages)  # the retrieval stages searches use unless told
    dates: DateReading = field(default_factory=DateReading)  # how questions write dates
    chat_model: ChatModel | None = None  # None: offline mode, replies assembled from memory
    # The same model on connections of its own for conversation upkeep (titles, summaries):
    # a burst of new conversations wants a title each, and those calls must never hold the
    # connections a reply waits for (they did: 50 msg/s over new conversations gave 30 replies/s).
    upkeep_model: ChatModel | None = None
    _storage: Storage | None = None
    _embedder: Embedder | None = None
    _index: VectorIndex | None = None
    _tokens: TokenCounter | None = None
    _sealer: Sealer | None = None
    _whatsapp: WhatsAppApi | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    console: ConsoleLedger | None = None  # the browser console's sessions and action record (same pool)
    analytics: Analytics | None = None  # the analytics read model, over the storage's database

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise NotStarted("storage used before the lifespan built it")
        return self._storage

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise NotStarted("embedder used before the lifespan built it")
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            raise NotStarted("vector index used before the lifespan built it")
        return self._index

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            raise NotStarted("sealer used before the lifespan built the storage")
        return self._sealer

    @property
    def whatsapp(self) -> WhatsAppApi:
        if self._whatsapp is None:
            raise NotStarted("WhatsApp API used before the lifespan built it")
        return self._whatsapp

    @property
    def tokens(self) -> TokenCounter:
        if self._tokens is None:
            raise NotStarted("tokenizer used before the lifespan built it")
        return self._tokens

    def retriever(self) -> Retriever:
        return Retriever(self.storage.memory, self.index, self.embedder, self.stages,
                         rewriter=self.chat_model_for("rewrite"), dates=self.dates)

    def chat_model_for(self, operation: str) -> ChatModel | None:
        """The chat model, its calls counted under `operation` (reply, summary, title, rewrite)."""
        model = self.upkeep_model if operation in UPKEEP_OPERATIONS and self.upkeep_model else self.chat_model
        return model.for_operation(operation) if isinstance(model, _PerOperation) else model

    def context_builder(self, policy: RecallPolicy) -> ContextBuilder:
        return ContextBuilder(self.storage.memory, self.retriever(), self.tokens, policy)

    async def open_storage(self, url: str, max_size: int = 10) -> None:
        storage = await PostgresStorage.connect(url, max_size=max_size)
        self._storage = storage
        self._sealer = Sealer(storage.keys)
        self.console = PgConsoleLedger(storage.pool)
        self.analytics = PgAnalytics(storage.pool)
        self._closers.append(storage.close)

    def open_embedder(self, settings: VectorSettings, remember: int | None = None,
                      threads: int | None = None) -> Embedder:
        from convmem.adapters.embedder import RECENT_EMBEDDINGS, OnnxEmbedder, OpenAIEmbedder

        embedder: Embedder
        if settings.embedding_base_url is not None:
            key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
            embedder = OpenAIEmbedder(str(settings.embedding_base_url), settings.embedding_model, key,
                                      settings.embedding_dim)
        else:
            embedder = OnnxEmbedder(threads=threads or settings.embedding_threads or max(1, (os.cpu_count() or 2) - 1),
                                    remember=RECENT_EMBEDDINGS if remember is None else remember)
        self._embedder = embedder
        return embedder

    def open_vectors(self, settings: VectorSettings) -> None:
        """The embedder and the serving index. IndexUnavailable when the embedded index is
        held by another process or holds another model's vectors."""
        from convmem.adapters.edge_generations import ServingEdgeIndex
        from convmem.adapters.vectors import QdrantServerIndex

        embedder = self.open_embedder(settings)
        dim = embedder.dimension
        if settings.qdrant_url is not None:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            index: VectorIndex = QdrantServerIndex.for_url(str(settings.qdrant_url), key,
                                                           settings.qdrant_collection, dim)
        else:
            index = ServingEdgeIndex.open(edge_root(settings), embedder.name, dim)
        self._index = index
        self._closers.append(index.close)
        self.stages = Stages.parse("hybrid", settings.retrieval_stages)
        self.dates = DateReading(settings.date_order,
                                 tuple(x.strip() for x in settings.date_languages.split(",") if x.strip()) or ("en",))
        if self.stages.temporal:
            warm_up(self.dates)
        from convmem.adapters.tokenizer import FileTokenCounter

        self._tokens = FileTokenCounter(settings.tokenizer_file)

    def open_chat_model(self, settings: ResponderSettings) -> None:
        from convmem.adapters.chat_model import OpenAIChatModel

        if settings.llm_base_url is None:
            return  # explicit offline mode: replies built from memory, model="offline"
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        def opened() -> OpenAIChatModel:
            model = OpenAIChatModel(str(settings.llm_base_url), settings.llm_model, key, settings.llm_timeout_s,
                                    settings.llm_temperature, settings.llm_max_tokens,
                                    max_connections=settings.max_in_flight)
            self._closers.append(model.close)
            return model

        self.chat_model, self.upkeep_model = opened(), opened()

    def open_whatsapp(self, settings: SenderSettings) -> None:
        from convmem.adapters.whatsapp import GraphWhatsAppApi

        if settings.whatsapp_access_token is None:
            raise NotStarted("the sender needs CONVMEM_WHATSAPP_ACCESS_TOKEN")
        api = GraphWhatsAppApi(str(settings.whatsapp_api_base_url), settings.whatsapp_access_token.get_secret_value(),
                               settings.whatsapp_timeout_s, max_connections=settings.sender_max_in_flight)
        self._whatsapp = api
        self._closers.append(api.close)

    def describe(self) -> dict[str, str]:
        """What this process runs on, for its start-up log line."""
        return {"vector_index": type(self._index).__name__,
                "llm": "offline" if self.chat_model is None else self.chat_model.name}

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()
        self._closers.clear()


def edge_root(settings: VectorSettings) -> Path:
    """The embedded index's folder (its generations, pointer and owner lock live in it)."""
    return settings.vector_path or state_dir() / "vectors" / settings.qdrant_collection
