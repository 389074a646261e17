"""Pending scored transactions: exact round trip of what re-writes the row, versions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finpulse.models.packing import b64, pack_vector, unb64
from finpulse.streams.stages import risk_pending as rp

META = ["sme", "institution", "api", "fx", 1234.5, 3, 300]


def blob(ts_ms: int = 1_767_921_444_550, meta: list | None = None, **over) -> str:
    args = {"score": 99.9999, "anomaly": 1.0, "supervised": 0.0001, "reasons": ["anomaly"]}
    args.update(over)
    return rp.encode(ts_ms, pack_vector([0.25, 0.0, 1.0]), meta=meta or META, **args)


@pytest.mark.parametrize(
    ("amount", "supervised"),
    [(1234.5, 0.5), (0.01, None), (12345.678901, 0.0), (None, 1.0), (9e11 + 0.07, 0.9999)],
)
def test_what_rewrites_the_risk_row_round_trips_exactly(amount, supervised):
    meta = [*META[:4], amount, 70_000, 0]
    e = rp.decode(f"{blob(meta=meta, supervised=supervised, score=0.0)} t 1", "v")
    assert e.meta == meta and e.supervised == supervised and e.score == 0.0
    assert (e.anomaly, e.reasons, e.inputs, e.version) == (1.0, ["anomaly"], [0.25, 0.0, 1.0], "v")
    assert e.eid == "t 1"  # an event id may hold spaces: the blob never does


def test_an_entry_is_a_fraction_of_the_previous_format():
    p: list = []
    rp.append(p, "t-1-3480", blob(), "risk-v1+0")
    rp.append(p, "t-1-3481", blob(), "risk-v1+0")
    assert len(json.dumps(p[0])) < 60 and len(json.dumps(p[1])) < 75


def test_versions_are_written_once_and_survive_removals():
    p: list = []
    for i, v in enumerate(["a", "a", "b", "b", "b", "a"]):
        rp.append(p, f"t-{i}", blob(ts_ms=1000 * i), v)
    assert [isinstance(e, list) for e in p] == [0, 1, 0, 0, 1, 1]  # on the last of each run
    assert rp.pop(p, "t-2").version == "b"
    assert rp.versions(p) == ["a", "a", "b", "b", "a"] and [isinstance(e, list) for e in p] == [
        0,
        1,
        0,
        1,
        1,
    ]
    assert rp.prune(p, cutoff_ms=1500, keep=32) == 2  # t-0, t-1 expired
    assert [rp.entry_eid(e) for e in p] == ["t-3", "t-4", "t-5"]
    assert rp.versions(p) == ["b", "b", "a"]
    assert rp.prune(p, cutoff_ms=0, keep=1) == 0 and rp.versions(p) == ["a"]
    assert rp.pop(p, "nope") is None and rp.entry_ts(p[0]) == 5000


def test_trimming_to_the_newest_keeps_each_entry_and_its_version():
    rng = np.random.default_rng(3)
    for _ in range(200):
        p: list = []
        for i in range(int(rng.integers(1, 40))):
            rp.append(p, f"t-{i}", blob(ts_ms=1000 * i), str(rng.integers(0, 3)))
        keep = int(rng.integers(1, 34))
        before = list(zip([rp.entry_eid(e) for e in p], rp.versions(p), strict=True))
        assert rp.prune(p, cutoff_ms=0, keep=keep) == 0
        assert (
            list(zip([rp.entry_eid(e) for e in p], rp.versions(p), strict=True)) == (before[-keep:])
        )
        # and markers only where a run of one version ends, as append writes them
        marks = [isinstance(e, list) for e in p]
        versions = rp.versions(p)
        assert marks == [i == len(p) - 1 or versions[i] != versions[i + 1] for i in range(len(p))]


def test_an_unknown_format_is_refused_not_misread():
    data = bytearray(unb64(blob()))
    data[0] = 7
    with pytest.raises(ValueError, match="format"):
        rp.decode(f"{b64(bytes(data))} t-1", "v")


def test_codes_from_16_on_take_a_byte_each(monkeypatch):
    wide = {**rp.codes.SEGMENT, "test-segment": 200}
    monkeypatch.setattr(rp.codes, "SEGMENT", wide)
    monkeypatch.setattr(rp.codes, "SEGMENT_NAMES", {c: n for n, c in wide.items()})
    meta = ["test-segment", *META[1:]]
    narrow = rp.decode(f"{blob()} t-1", "v")
    e = rp.decode(f"{blob(meta=meta)} t-1", "v")
    assert e.meta == meta and e.inputs == narrow.inputs and e.reasons == narrow.reasons


def test_encode_many_gives_the_same_blobs_as_encode(monkeypatch):
    rng = np.random.default_rng(5)
    n = 300
    amounts = [
        None if i % 17 == 0 else round(float(x), int(i % 4 + 1))
        for i, x in enumerate(rng.lognormal(6, 3, n))
    ]
    amounts[1:5] = [0.29, 0.005, 9e11 + 0.07, 12345.678901]
    scores = np.round(rng.random(n) * 100, 4).tolist()
    anomalies = np.round(rng.random(n), 4).tolist()
    sup = [None if i % 5 == 0 else round(float(x), 4) for i, x in enumerate(rng.random(n))]
    metas = [
        [META[0], META[1], ("app", "atm", "api")[i % 3], META[3], amounts[i], i % 200, i * 97]
        for i in range(n)
    ]
    reasons = [("amount_cny", "anomaly")[: i % 3] for i in range(n)]
    ts = [1_767_921_444_550 + 1000 * i for i in range(n)]
    inputs = [pack_vector([0.5 * i, 0.0, 1.0]) for i in range(n)]
    args = (ts, inputs, scores, anomalies, sup, reasons, metas)
    assert n >= rp.VECTOR_MIN
    many = rp.encode_many(*args)  # vectorized
    one = [
        rp.encode(ts[i], inputs[i], scores[i], anomalies[i], sup[i], reasons[i], metas[i])
        for i in range(n)
    ]
    assert many == one
    few = [a[:7] for a in args]  # a small batch: encode() per entry, and still the same blobs
    per_entry = rp.encode_many(*few)
    monkeypatch.setattr(rp, "VECTOR_MIN", 0)  # the vectorized path on the same small batch
    assert per_entry == rp.encode_many(*few) == one[:7]
    assert not any(c.isdigit() for b in many for c in b)  # PCI: no digit run can look like a PAN
    assert rp.decode(f"{many[4]} t", "v").meta[4] == 12345.678901
