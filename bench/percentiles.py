"""The percentile the benchmarks report: nearest rank on the sorted sample, NaN when empty."""

from __future__ import annotations


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")
