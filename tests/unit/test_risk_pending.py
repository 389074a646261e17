"""Pending scored transactions: exact round trip of what re-writes the row, versions."""

from __future__ import annotations

import json

import pytest

from models.packing import b64, pack_vector, unb64
from streams import risk_pending as rp

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
    e = rp.decode(["t-1", blob(meta=meta, supervised=supervised, score=0.0)], "v")
    assert e.meta == meta and e.supervised == supervised and e.score == 0.0
    assert (e.anomaly, e.reasons, e.inputs, e.version) == (1.0, ["anomaly"], [0.25, 0.0, 1.0], "v")


def test_an_entry_is_a_fraction_of_the_previous_format():
    assert len(json.dumps(["t-1-3480", blob(), "risk-v1+0"])) < 80


def test_versions_are_written_once_and_survive_removals():
    p: list = []
    for i, v in enumerate(["a", "a", "b", "b", "b", "a"]):
        rp.append(p, f"t-{i}", blob(ts_ms=1000 * i), v)
    assert [len(e) for e in p] == [3, 2, 3, 2, 2, 3]
    assert rp.pop(p, "t-2").version == "b"
    assert rp.versions(p) == ["a", "a", "b", "b", "a"] and len(p[2]) == 3
    assert rp.prune(p, cutoff_ms=1500, keep=32) == 2  # t-0, t-1 expired
    assert [e[0] for e in p] == ["t-3", "t-4", "t-5"] and rp.versions(p) == ["b", "b", "a"]
    assert rp.prune(p, cutoff_ms=0, keep=1) == 0 and rp.versions(p) == ["a"]
    assert rp.pop(p, "nope") is None and rp.entry_ts(p[0]) == 5000


def test_an_unknown_format_is_refused_not_misread():
    data = bytearray(unb64(blob()))
    data[0] = 7
    with pytest.raises(ValueError, match="format"):
        rp.decode(["t-1", b64(bytes(data))], "v")
