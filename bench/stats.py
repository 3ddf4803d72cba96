"""Percentiles and rates, computed the same way for every figure."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the two nearest ranks (numpy's default), or None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary_ms(values_ms: Sequence[float]) -> dict[str, float | int | None]:
    """p50 and p99 in milliseconds, with the sample size so a reader can judge the p99."""
    return {
        "p50": _round(percentile(values_ms, 0.50)),
        "p99": _round(percentile(values_ms, 0.99)),
        "max": _round(max(values_ms)) if values_ms else None,
        "n": len(values_ms),
    }


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return round(value / baseline, 3)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
