"""stats.py: medians and 90th percentiles of durations, for reports. Pure.

Percentiles interpolate linearly between the nearest ranks (the "inclusive" method of
`statistics.quantiles`), so a handful of tickets gives stable, explainable numbers, and
an empty set gives None rather than a made-up zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Distribution:
    median: float | None
    p90: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) of `values`, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, 1)


def distribution(values: Sequence[float]) -> Distribution:
    return Distribution(percentile(values, 0.5), percentile(values, 0.9))
