"""Delayed labels on ``finpulse.feedback``: fraud outcomes, CSAT surveys, complaint closure.

>>> import random
>>> fb = FeedbackFactory(random.Random(2), seed=2)
>>> ms, d = fb.csat(1_000_000_000_000, "i-2-0", "c2-000001", 4)
>>> ms > 1_000_000_000_000, d["kind"], d["value"]
(True, 'csat_survey', 4)
"""

from __future__ import annotations

import math
import random

from finpulse.streams.simulator.timeline import DAY_MS, HOUR_MS, MINUTE_MS, iso

CSAT_RESPONSE_RATE = 0.30
FRAUD_CONFIRM_RATE = 0.85
COMPLAINT_CLOSE_RATE = 0.92
CLEAR_RATE_UNUSUAL = 0.08
CLEAR_RATE_ORDINARY = 0.004


class FeedbackFactory:
    """Schedules feedback dicts at a delay after the event they label."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self._n = 0

    def _delay(self, median_ms: float, sigma: float, lo_ms: float, hi_ms: float) -> int:
        d = median_ms * math.exp(self.rng.gauss(0.0, sigma))
        return int(min(max(d, lo_ms), hi_ms))

    def _make(
        self, ms: int, kind: str, ref: str, customer_id: str, value: int | None = None
    ) -> dict[str, object]:
        d: dict[str, object] = {
            "event_id": f"f-{self.seed}-{self._n}",
            "ts": iso(ms),
            "customer_id": customer_id,
            "kind": kind,
            "ref_event_id": ref,
        }
        self._n += 1
        if value is not None:
            d["value"] = value
        return d

    def fraud_confirmed(self, ms: int, ref: str, cid: str) -> tuple[int, dict[str, object]]:
        """Confirmed fraud, minutes to hours later."""
        at = ms + self._delay(90 * MINUTE_MS, 1.0, 5 * MINUTE_MS, 48 * HOUR_MS)
        return at, self._make(at, "fraud_confirmed", ref, cid)

    def fraud_cleared(self, ms: int, ref: str, cid: str) -> tuple[int, dict[str, object]]:
        """A reviewed clean transaction, minutes to days later."""
        at = ms + self._delay(6 * HOUR_MS, 1.2, 10 * MINUTE_MS, 7 * DAY_MS)
        return at, self._make(at, "fraud_cleared", ref, cid)

    def csat(self, ms: int, ref: str, cid: str, value: int) -> tuple[int, dict[str, object]]:
        """A survey answer (integer 1..5), minutes to hours after the contact."""
        at = ms + self._delay(40 * MINUTE_MS, 1.2, 2 * MINUTE_MS, 3 * DAY_MS)
        return at, self._make(at, "csat_survey", ref, cid, value)

    def complaint_closed(self, ms: int, ref: str, cid: str) -> tuple[int, dict[str, object]]:
        """Closure 1..20 days after the complaint; about one in eight beyond day 15."""
        r = self.rng.random()
        if r < 0.7:
            days = 1 + 9 * self.rng.random()
        elif r < 0.88:
            days = 10 + 5 * self.rng.random()
        else:
            days = 15 + 5 * self.rng.random()
        at = ms + int(days * DAY_MS)
        return at, self._make(at, "complaint_closed", ref, cid)
