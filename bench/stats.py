"""What the benchmarks report of a sample."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The nearest-rank q-quantile (0 ≤ q ≤ 1) of `values`: a value that was measured, not interpolated."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
