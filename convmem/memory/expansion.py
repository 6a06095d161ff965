"""Query expansion from the user's own history (pseudo-relevance feedback): the turns a first
search ranks highest are taken as relevant, and the question is searched again with what they
add. Full text gets the words the head shares that the question lacks (a question about
"cooking" picks up "curry" from the turn that matched it, and finds the other turn about the
curry); vectors get the question's vector moved towards the head's (Rocchio), which reaches
turns that are near the answer rather than near the question. Plain functions: the retriever
decides when they run (the `expand` stage)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence

# Words too common in chat to say what a turn is about, in the languages the stemmer does not
# cover too; Postgres drops its own English stop words when it parses the expansion.
_FILLER = frozenset("""
lol haha hahaha yeah yes yep nope okay ok oh ah hey hi hello thanks thank really just like
also still even much very gonna wanna got get going know think well good great nice cool
would could should today tomorrow yesterday time day week night morning""".split())
_WORD = re.compile(r"[^\W\d_]{3,}")


def feedback_terms(question: str, head: Sequence[str], limit: int) -> list[str]:
    """Words of the head's turns that the question lacks, ranked by how many of the head's
    turns use them, weighted by the turn's place (the first counts most); a word one turn
    alone uses only counts when it is the first. At most `limit`."""
    asked = {w.lower() for w in _WORD.findall(question)}
    score: dict[str, float] = defaultdict(float)
    seen: dict[str, int] = defaultdict(int)
    for rank, text in enumerate(head, 1):
        for word in {w.lower() for w in _WORD.findall(text)} - asked - _FILLER:
            score[word] += 1.0 / rank
            seen[word] += 1
    kept = [w for w in score if seen[w] >= 2 or score[w] >= 1.0]
    return sorted(kept, key=lambda w: (-score[w], -len(w), w))[:limit]


def rocchio(query: Sequence[float], head: Sequence[Sequence[float]], weight: float) -> list[float]:
    """The question's vector moved towards the mean of the head's (each unit length), by
    `weight` of the mean against the question's 1, at unit length."""
    if not head:
        return list(query)
    mean = [sum(col) / len(head) for col in zip(*(_unit(v) for v in head), strict=True)]
    moved = [q + weight * m for q, m in zip(_unit(query), mean, strict=True)]
    return _unit(moved)


def _unit(v: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v] if n else list(v)
