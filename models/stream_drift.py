"""Drift of a shared model's error, detected on its learning stream.

Every worker learns a model's learning stream (:mod:`finpulse.models.learning`) in full and in
the same order, from the same checkpoint. A detector fed there, with the error the model
makes on each example just before it learns it, is therefore in the same state on every
worker and detects the same drifts at the same **stream positions**: (learning-stream
offset of the record, index of the example in it). A :class:`Detection` names that
position, so the N copies of one detection (one per worker, more after a replay) are
recognisably one.

:class:`ErrorDrift` wraps River's ``ADWIN`` on the absolute error ``|label - P(label)|``. ADWIN
detects a change of the mean either way; only a rise is a health problem, so a change to a
lower error (a young model learning, a drift it has learned back) is counted, not raised.

>>> import random
>>> rng = random.Random(5)
>>> d = ErrorDrift("risk")
>>> labels = [float(rng.random() < 0.1) for _ in range(1200)]
>>> good = [abs(y - 0.9 * y - 0.05) for y in labels[:600]]  # the model sees the labels
>>> bad = [abs(y - (1 - y) * 0.9) for y in labels[600:]]  # it inverts them
>>> found = d.observe(7, good, [0] * 600) + d.observe(8, bad, [0] * 600)
>>> [(f.detector, f.offset, f.index > 0) for f in found][:1]
[('supervised_error', 8, True)]
>>> found[0].event_id.startswith("risk|supervised_error|8|")
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Detection", "ErrorDrift"]

SUPERVISED_ERROR = "supervised_error"  # the detector's name (rule ``drift.supervised_error``)


@dataclass(frozen=True)
class Detection:
    """One drift detected at one learning-stream position."""

    model: str
    detector: str
    offset: int  # the learning-stream record holding the triggering example
    index: int  # the example's place in that record
    ts_ms: int  # the triggering example's event time (epoch ms)
    evidence: dict[str, Any]

    @property
    def event_id(self) -> str:
        """The detection's id: the same in every worker and on every replay."""
        return f"{self.model}|{self.detector}|{self.offset}|{self.index}"

    @property
    def position(self) -> tuple[int, int]:
        """Where in the stream it was detected (orders the detections of one detector)."""
        return (self.offset, self.index)


class ErrorDrift:
    """River's ADWIN on a model's absolute error, fed on its learning stream (module text).
    Pickled with the model in its checkpoint, so a restored worker resumes it where the
    model's learned position is."""

    def __init__(self, model: str, detector: str = SUPERVISED_ERROR, delta: float = 0.002) -> None:
        from river import drift

        self.model = model
        self.detector = detector  # rule drift.<detector>
        self.adwin = drift.ADWIN(delta=delta)
        self.fed = 0  # errors fed
        self.last_ts_ms = 0  # the newest example time fed
        self.detections = 0  # rises of the error
        self.improvements = 0  # falls of the error (not raised)

    def observe(
        self, offset: int, errors: Sequence[float], ts_ms: Sequence[int]
    ) -> list[Detection]:
        """Feed the errors of the examples of the record at ``offset``, in order (each the
        model's error before it learned the record); the rises detected among them."""
        found = []
        adwin = self.adwin
        for index, (error, ms) in enumerate(zip(errors, ts_ms, strict=True)):
            self.last_ts_ms = max(self.last_ts_ms, ms)
            before = adwin.estimation  # the mean over the window, before the cut
            adwin.update(float(error))
            self.fed += 1
            if not adwin.drift_detected:
                continue
            if adwin.estimation <= before:  # the window kept the newer, lower errors
                self.improvements += 1
            else:
                self.detections += 1
                evidence = {
                    "detector": "ADWIN",
                    "error_mean": round(float(adwin.estimation), 4),
                    "error_mean_before": round(float(before), 4),
                    "errors_fed": self.fed,
                    "detections": self.detections,
                }
                at = ms or self.last_ts_ms  # an example of an older release has no time
                found.append(Detection(self.model, self.detector, offset, index, at, evidence))
        return found
