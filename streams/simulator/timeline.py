"""Simulated time: diurnal volume (China local time, UTC+8) and the arrival clock.

All simulated times are integer epoch milliseconds; :func:`iso` renders them as RFC 3339.

>>> iso(0)
'1970-01-01T00:00:00.000+00:00'
>>> local_hour(0), is_weekend(0)  # 08:00 on Thursday 1970-01-01 in UTC+8
(8, False)
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
LOCAL_OFFSET_MS = 8 * HOUR_MS  # China Standard Time, no DST

# Relative volume per local hour (0..23).
INDIVIDUAL_HOURLY = (
    0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 0.90, 1.00, 1.10, 1.20,
    1.30, 1.10, 1.00, 1.00, 1.05, 1.10, 1.20, 1.30, 1.35, 1.25, 0.90, 0.50,
)  # fmt: skip
INSTITUTION_HOURLY = (
    0.03, 0.02, 0.02, 0.02, 0.02, 0.03, 0.08, 0.30, 0.90, 1.40, 1.50, 1.40,
    0.90, 1.20, 1.50, 1.50, 1.40, 1.10, 0.60, 0.30, 0.15, 0.10, 0.06, 0.04,
)  # fmt: skip
INDIVIDUAL_WEEKEND = 0.95
INSTITUTION_WEEKEND = 0.15


def iso(ms: int) -> str:
    """RFC 3339 UTC timestamp with milliseconds for epoch milliseconds ``ms``.

    >>> iso(1_767_607_200_000)
    '2026-01-05T10:00:00.000+00:00'
    """
    return (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def to_datetime(ms: int) -> datetime:
    """Aware UTC datetime for epoch milliseconds.

    >>> to_datetime(1000).isoformat()
    '1970-01-01T00:00:01+00:00'
    """
    return EPOCH + timedelta(milliseconds=ms)


def to_ms(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime.

    >>> to_ms(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))
    1000
    """
    if dt.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    return (dt - EPOCH) // timedelta(milliseconds=1)


def local_day(ms: int) -> int:
    """Index of the China-local calendar day (same-day cumulative limits use it).

    >>> local_day(16 * HOUR_MS - 1), local_day(16 * HOUR_MS)
    (0, 1)
    """
    return (ms + LOCAL_OFFSET_MS) // DAY_MS


def local_hour(ms: int) -> int:
    """Hour of day 0..23 in China local time."""
    return (ms + LOCAL_OFFSET_MS) // HOUR_MS % 24


def is_weekend(ms: int) -> bool:
    """Saturday or Sunday in China local time (1970-01-01 was a Thursday)."""
    return (local_day(ms) + 3) % 7 >= 5


def hour_of_week(ms: int) -> int:
    """0..47: local hour, plus 24 on weekends (index into per-hour customer weights)."""
    return local_hour(ms) + (24 if is_weekend(ms) else 0)


class ArrivalClock:
    """``n`` sorted arrival times over ``[start_ms, start_ms + span_ms)`` with a given density.

    Draws the order statistics of ``n`` i.i.d. arrivals one at a time (no list of ``n``
    floats is held), and maps them through the inverse CDF of a per-minute weight
    function, so the volume follows the diurnal profile and the count is exact.

    >>> clock = ArrivalClock(random.Random(1), 0, 3_600_000, 5, lambda ms: 1.0)
    >>> times = [clock.next() for _ in range(5)]
    >>> times == sorted(times) and 0 <= times[0] and times[-1] < 3_600_000
    True
    """

    def __init__(
        self,
        rng: random.Random,
        start_ms: int,
        span_ms: int,
        n: int,
        weight_at: object,
        bucket_ms: int = MINUTE_MS,
    ) -> None:
        self._rng = rng
        self._start = start_ms
        self._n = n
        self._k = 0
        self._u = 0.0
        self._bucket_ms = bucket_ms
        starts: list[int] = []
        lens: list[int] = []
        cum: list[float] = []
        total = 0.0
        offset = 0
        while offset < span_ms:
            length = min(bucket_ms, span_ms - offset)
            w = max(float(weight_at(start_ms + offset)) * length / bucket_ms, 1e-12)  # type: ignore[operator]
            total += w
            starts.append(offset)
            lens.append(length)
            cum.append(total)
            offset += length
        if not starts:  # zero span: everything at start
            starts, lens, cum, total = [0], [0], [1.0], 1.0
        self._starts, self._lens, self._cum, self._total = starts, lens, cum, total
        self._j = 0
        self._last = start_ms

    def next(self) -> int:
        """The next arrival time (non-decreasing)."""
        remaining = self._n - self._k
        self._k += 1
        if remaining <= 0:
            return self._last
        self._u = 1.0 - (1.0 - self._u) * self._rng.random() ** (1.0 / remaining)
        target = self._u * self._total
        cum = self._cum
        j = self._j
        last = len(cum) - 1
        while j < last and cum[j] < target:
            j += 1
        self._j = j
        prev = cum[j - 1] if j else 0.0
        width = cum[j] - prev
        frac = min(max((target - prev) / width, 0.0), 1.0) if width > 0 else 0.0
        ms = self._start + self._starts[j] + int(frac * self._lens[j])
        if self._lens[j]:
            ms = min(ms, self._start + self._starts[j] + self._lens[j] - 1)
        self._last = max(ms, self._last)
        return self._last
