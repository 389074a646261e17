"""River's Page-Hinkley detector kept as plain numbers, so keyed state can hold it.

An owner that judges pooled minutes (a channel's CSAT, a model's inputs) keeps its
detectors in a record written by the state codec, not pickled: :class:`PageHinkleyState`
holds what the detector has learned, :func:`restore` puts it back into a detector built
with the caller's parameters, :func:`state_of` reads it out again.

>>> from river import drift
>>> d = drift.PageHinkley(min_instances=2, threshold=1.0)
>>> for x in (1.0, 1.0, 5.0):
...     d.update(x)
>>> back = restore(drift.PageHinkley(min_instances=2, threshold=1.0), state_of(d))
>>> back.update(5.0); d.update(5.0)
>>> (back._sum_increase, back.drift_detected) == (d._sum_increase, d.drift_detected)
True
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["PageHinkleyState", "feed_repeated", "restore", "state_of"]


class PageHinkleyState(msgspec.Struct, array_like=True):
    """What a Page-Hinkley detector has learned. Fresh: nothing fed yet."""

    n: int = 0  # values fed since its last reset
    mean: float = 0.0
    sum_increase: float = 0.0
    sum_decrease: float = 0.0
    min_increase: float = float("inf")
    max_decrease: float = -1.0
    detected: bool = False  # a drift at the last value (it resets on the next one)


def restore(d: Any, state: Any) -> Any:
    """River's detector ``d`` (fresh, built with the wanted parameters) in the state that
    ``state`` holds (any object with :class:`PageHinkleyState`'s fields); returns ``d``."""
    if state.n:
        d._x_mean.n = state.n
        d._x_mean._mean = state.mean
        d._sum_increase = state.sum_increase
        d._sum_decrease = state.sum_decrease
        d._min_increase = state.min_increase
        d._max_decrease = state.max_decrease  # river starts it at -1
        d._drift_detected = state.detected
    return d


def feed_repeated(d: Any, value: float, times: int) -> bool:
    """Feed ``value`` to detector ``d`` ``times`` times (a pooled minute's mean, once per
    event it pools); True if a drift was detected on any of them.

    >>> from river import drift
    >>> d = drift.PageHinkley(min_instances=3, threshold=5.0)
    >>> feed_repeated(d, 1.0, 10), feed_repeated(d, 4.0, 5)
    (False, True)
    """
    hit = False
    for _ in range(times):
        d.update(value)
        hit = hit or d.drift_detected
    return hit


def state_of(d: Any) -> PageHinkleyState:
    """The state of River's Page-Hinkley detector ``d``."""
    return PageHinkleyState(
        n=int(d._x_mean.n),
        mean=float(d._x_mean._mean),
        sum_increase=float(d._sum_increase),
        sum_decrease=float(d._sum_decrease),
        min_increase=float(d._min_increase),
        max_decrease=float(d._max_decrease),
        detected=bool(d.drift_detected),
    )
