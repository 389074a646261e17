"""Pending scored transactions: exact round trip of what re-writes the row, versions."""

from __future__ import annotations

import numpy as np
import pytest

from finpulse.models.packing import pack_vector
from finpulse.streams.core.state_codec import StateCodec, encode
from finpulse.streams.stages import risk_pending as rp

META = ["sme", "institution", "api", "fx", 1234.5, 3, 300]
CODEC = StateCodec("pending", list[rp.PendingScore])


def entry(eid: str = "t-1", ts_ms: int = 1_767_921_444_550, version: str = "v", **over):
    args = {"score": 99.9999, "anomaly": 1.0, "supervised": 0.0001, "reasons": ["anomaly"]}
    args.update(over)
    meta = args.pop("meta", META)
    return rp.scored(
        eid, ts_ms, pack_vector([0.25, 0.0, 1.0]), meta=meta, model_version=version, **args
    )


@pytest.mark.parametrize(
    ("amount", "supervised"),
    [(1234.5, 0.5), (0.01, None), (12345.678901, 0.0), (None, 1.0), (9e11 + 0.07, 0.9999)],
)
def test_what_rewrites_the_risk_row_round_trips_exactly_through_the_codec(amount, supervised):
    meta = [*META[:4], amount, 70_000, 0]
    (e,) = CODEC.decode(encode([entry("t 1", meta=meta, supervised=supervised, score=0.0)]))
    assert e.meta() == meta and e.supervised == supervised and e.score == 0.0
    assert (e.anomaly, e.reasons(), e.inputs()) == (1.0, ["anomaly"], [0.25, 0.0, 1.0])
    assert e.event_id == "t 1"


def test_an_encoded_entry_stays_small():
    p: list = []
    rp.append(p, entry("t-1-3480", version="risk-v1+0"))
    rp.append(p, entry("t-1-3481", version="risk-v1+0"))
    assert len(encode(p[0])) < 60 and len(encode(p[1])) < 70


def test_versions_are_written_once_and_survive_removals():
    p: list = []
    for i, v in enumerate(["a", "a", "b", "b", "b", "a"]):
        rp.append(p, entry(f"t-{i}", ts_ms=1000 * i, version=v))
    assert [bool(e.model_version) for e in p] == [0, 1, 0, 0, 1, 1]  # the last of each run
    popped = rp.pop(p, "t-2")
    assert popped is not None and popped[1] == "b"
    assert rp.versions(p) == ["a", "a", "b", "b", "a"]
    assert [bool(e.model_version) for e in p] == [0, 1, 0, 1, 1]
    assert rp.prune(p, cutoff_ms=1500, keep=32) == 2  # t-0, t-1 expired
    assert [e.event_id for e in p] == ["t-3", "t-4", "t-5"]
    assert rp.versions(p) == ["b", "b", "a"]
    assert rp.prune(p, cutoff_ms=0, keep=1) == 0 and rp.versions(p) == ["a"]
    assert rp.pop(p, "nope") is None and p[0].ts_ms == 5000


def test_trimming_to_the_newest_keeps_each_entry_and_its_version():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p: list = []
        for i in range(int(rng.integers(1, 40))):
            rp.append(p, entry(f"t-{i}", ts_ms=1000 * i, version=str(rng.integers(0, 3))))
        keep = int(rng.integers(1, 34))
        before = list(zip([e.event_id for e in p], rp.versions(p), strict=True))
        assert rp.prune(p, cutoff_ms=0, keep=keep) == 0
        assert list(zip([e.event_id for e in p], rp.versions(p), strict=True)) == before[-keep:]
        # and markers only where a run of one version ends, as append writes them
        marks = [bool(e.model_version) for e in p]
        versions = rp.versions(p)
        assert marks == [i == len(p) - 1 or versions[i] != versions[i + 1] for i in range(len(p))]


def test_a_name_without_a_code_is_refused_not_stored():
    with pytest.raises(KeyError, match="no state code"):
        entry(meta=["test-segment", *META[1:]])
