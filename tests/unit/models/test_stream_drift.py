"""The supervised error's drift detector on a learning stream: the same errors in the same
records give the same detections at the same positions, also across a checkpoint."""

from __future__ import annotations

import pickle
import random

from finpulse.models.stream_drift import SUPERVISED_ERROR, Detection, ErrorDrift

RECORD = 40


def records(seed: int = 3, good: int = 15, bad: int = 10) -> list[list[float]]:
    """Errors of a model that is right (small errors), then wrong (large ones)."""
    rng = random.Random(seed)
    errors = [rng.random() * 0.2 for _ in range(good * RECORD)]
    errors += [0.7 + rng.random() * 0.3 for _ in range(bad * RECORD)]
    return [errors[k : k + RECORD] for k in range(0, len(errors), RECORD)]


def feed(d: ErrorDrift, recs: list[list[float]], start: int = 0) -> list[Detection]:
    found = []
    for offset, errors in enumerate(recs[start:], start=start):
        found += d.observe(offset, errors, [1_767_607_200_000 + offset] * len(errors))
    return found


def test_a_jump_in_the_error_is_detected_after_it_and_named_by_its_position():
    found = feed(ErrorDrift("risk"), records())
    assert found, "no detection"
    first = found[0]
    assert first.detector == SUPERVISED_ERROR and first.offset >= 15
    assert first.event_id == f"risk|supervised_error|{first.offset}|{first.index}"
    assert first.ts_ms == 1_767_607_200_000 + first.offset
    assert first.evidence["error_mean"] > 0.2


def test_stationary_errors_raise_nothing():
    assert feed(ErrorDrift("risk"), records(good=25, bad=0)) == []


def test_two_workers_fed_the_same_stream_detect_the_same_drifts():
    assert feed(ErrorDrift("risk"), records()) == feed(ErrorDrift("risk"), records())


def test_a_detector_restored_from_a_checkpoint_detects_what_one_fed_straight_does():
    recs = records()
    straight = feed(ErrorDrift("risk"), recs)
    d = ErrorDrift("risk")
    feed(d, recs[:12])
    restored = pickle.loads(pickle.dumps(d))
    assert feed(restored, recs, start=12) == straight


def test_a_fall_of_the_error_is_counted_not_raised():
    d = ErrorDrift("risk")
    falling = [list(reversed(r)) for r in reversed(records())]  # wrong first, then right
    assert feed(d, falling) == []
    assert d.improvements >= 1 and d.detections == 0
