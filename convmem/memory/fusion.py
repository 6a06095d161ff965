"""Fusing the ranked lists of several retrievers into one ranking: reciprocal rank fusion,
where each item's vote can be weighted by how sure its retriever is of it.

Ranks, not scores, are fused, so full-text and cosine scores never need a common scale.
Unweighted, a retriever that found nothing of value hands out the same votes as one that
found the answer, and a weak list dilutes a strong one. Weighted (the `confidence` stage),
a full-text hit votes with the share of the question it covers, and a vector hit with how
far its cosine stands above the background of the user's other turns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from uuid import UUID

RRF_K = 60  # the constant from Cormack et al.; it damps the head of each list


def rrf_fusion(ranked: Mapping[str, Sequence[UUID]], k: int = RRF_K,
               item_weights: Mapping[str, Mapping[UUID, float]] | None = None) -> dict[UUID, float]:
    """Reciprocal rank fusion: each list gives an item weight/(k + rank). An item's weight
    defaults to 1; full-text hits carry their query coverage, so a turn that shares only a
    common word with the question cannot outvote the vector retriever's best hits."""
    fused: dict[UUID, float] = defaultdict(float)
    for name, ids in ranked.items():
        weights = (item_weights or {}).get(name, {})
        for rank, item in enumerate(ids, 1):
            fused[item] += weights.get(item, 1.0) / (k + rank)
    return dict(sorted(fused.items(), key=lambda kv: kv[1], reverse=True))


def standout(similarities: Sequence[float], margin: float) -> list[float]:
    """Each cosine's vote weight: how far it stands above the median of the candidates (the
    similarity of an ordinary turn of this user), as a share of `margin` of the way to a
    perfect match, at most 1. A list whose best hits barely rise above its own median is a
    list of guesses and votes little; a clear match votes fully."""
    s = sorted(similarities)
    if not s:
        return []
    mid = len(s) // 2
    background = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    room = max(1e-6, margin * (1.0 - background))
    return [min(1.0, max(0.0, (x - background) / room)) for x in similarities]
