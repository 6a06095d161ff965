"""The clients a process needs, built in its lifespan (never at import time) and closed on
the way out. Workers receive this holder when they are registered and read it when they
handle a message, so a broker can be declared (and documented) before anything connects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convmem.home import state_dir
from convmem.ports import ChatModel, Embedder, Store, VectorIndex
from convmem.retrieval import Retriever, Stages
from convmem.sealing import Sealer
from convmem.settings import ResponderSettings, VectorSettings


class NotStarted(RuntimeError):
    pass


@dataclass
class Resources:
    _store: Store | None = None
    _embedder: Embedder | None = None
    _index: VectorIndex | None = None
    chat_model: ChatModel | None = None
    _sealer: Sealer | None = None
    stages: Stages = field(default_factory=Stages)  # the retrieval stages searches use unless told
    closers: list[Any] = field(default_factory=list)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise NotStarted("store used before the lifespan built it")
        return self._store

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

    def retriever(self) -> Retriever:
        return Retriever(self.store, self.index, self.embedder, self.stages)

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            raise NotStarted("sealer used before the lifespan built the store")
        return self._sealer

    async def open_store(self, url: str) -> None:
        from convmem.store import PostgresStore

        store = await PostgresStore.connect(url)
        self._store = store
        self._sealer = Sealer(store)
        self.closers.append(store.close)

    def open_vectors(self, settings: VectorSettings) -> None:
        from convmem.embedder import OnnxEmbedder, OpenAIEmbedder
        from convmem.vectors import EdgeVectorIndex, QdrantServerIndex

        if settings.embedding_base_url is not None:
            key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
            self._embedder = OpenAIEmbedder(str(settings.embedding_base_url), settings.embedding_model, key,
                                            settings.embedding_dim)
        else:
            self._embedder = OnnxEmbedder()
        dim = self._embedder.dimension
        if settings.qdrant_url is not None:
            key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
            index: VectorIndex = QdrantServerIndex.for_url(str(settings.qdrant_url), key,
                                                           settings.qdrant_collection, dim)
        else:
            index = EdgeVectorIndex(settings.vector_path or state_dir() / "vectors" / settings.qdrant_collection, dim)
        self._index = index
        self.closers.append(index.close)

    def open_chat_model(self, settings: ResponderSettings) -> None:
        from convmem.chat_model import OpenAIChatModel

        if settings.llm_base_url is None:
            return  # explicit offline mode: replies built from memory, model="offline"
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        self.chat_model = OpenAIChatModel(str(settings.llm_base_url), settings.llm_model, key,
                                          settings.llm_timeout_s, settings.llm_temperature, settings.llm_max_tokens)

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()
