"""The retrieval stages and which are on: a switch per stage, parsed from a comma list (the
search API's `stages`, CONVMEM_RETRIEVAL_STAGES). A leaf that imports nothing of ours, so the
settings can validate a stage list without loading retrieval."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

Mode = Literal["hybrid", "fts", "vector"]
STAGES = ("temporal", "neighbours", "rerank", "speakers", "context", "sessions", "confidence", "rewrite", "units",
          "expand")


def stages_pattern() -> str:
    """The shape of a stage list as the API documents it: empty, or a comma list of STAGES and
    "none" (Stages.parse takes every such string, and blanks around the commas too)."""
    name = "(?:none|" + "|".join(STAGES) + ")"
    return rf"^(?:{name}(?:,{name})*)?$"


@dataclass(frozen=True)
class Stages:
    mode: Mode = "hybrid"
    temporal: bool = True
    neighbours: bool = True
    rerank: bool = False
    speakers: bool = True
    context: bool = True
    sessions: bool = False  # measured: no better on either evaluation set (README, Memory)
    confidence: bool = False  # measured: lowers frac@5 and @10 on dialogues and chats (README, Memory)
    rewrite: bool = False  # needs a chat model; a model call per search
    units: bool = False  # bursts searched as one text beside their turns (README, Memory)
    expand: bool = False  # pseudo-relevance feedback: both retrievers again with what the head adds

    @classmethod
    def parse(cls, mode: str, stages: str | None, default: Stages | None = None) -> Stages:
        """`stages` is a comma list of STAGES, "none", or None for the default set."""
        if mode not in ("hybrid", "fts", "vector"):
            raise ValueError("mode must be one of hybrid, fts, vector")
        base = default or cls()
        if stages is None:
            return replace(base, mode=mode)  # type: ignore[arg-type]
        wanted = {s.strip() for s in stages.split(",") if s.strip()} - {"none"}
        if unknown := wanted - set(STAGES):
            raise ValueError(f"unknown stage(s): {', '.join(sorted(unknown))}; known: {', '.join(STAGES)}")
        return cls(mode=mode, **{s: s in wanted for s in STAGES})  # type: ignore[arg-type]

    def names(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "mode" and getattr(self, f.name)]
