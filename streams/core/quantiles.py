"""Percentiles, one definition for the worker's stats and the benchmarks: nearest rank.

The nearest-rank ``q`` percentile of ``n`` sorted values is the value at rank
``ceil(q * n)`` (1-based): no interpolation, always one of the values seen.

>>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
(2.0, 4.0)
>>> summary([4.0, 1.0, 3.0, 2.0])
{'p50': 2.0, 'p99': 4.0, 'max': 4.0, 'n': 4}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 1) of ascending ``sorted_values``."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


def summary(values: Iterable[float]) -> dict[str, float]:
    """p50 / p99 / max (rounded to 0.01) and the count of ``values``; empty without values."""
    v = sorted(values)
    if not v:
        return {}
    return {
        "p50": round(percentile(v, 0.5), 2),
        "p99": round(percentile(v, 0.99), 2),
        "max": round(v[-1], 2),
        "n": len(v),
    }
