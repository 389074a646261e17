"""Pending entries of the previous release: read into records, unreadable ones dropped."""

from __future__ import annotations

from finpulse.streams.stages.risk_legacy import pending_entries

# Two entries as the previous release wrote them (the first without its version marker).
OLD = [
    "AaBGLSqiARFUwJoMAIknAQGSXgAk.z.AAADAABAAzUSMOYw(zURwQmLLzUQ t-old-0",
    ["AdC*LSqiARFUwJoMAIknAgKSXgAk//.AAADAABAAzURYAGU.ZTx:RXBC%sKMOX#F t-old-1", "risk-v1+0"],
]


def test_entries_keep_their_order_versions_and_values():
    a, b = pending_entries(OLD)
    assert (a.event_id, a.model_version, b.event_id, b.model_version) == (
        "t-old-0", "", "t-old-1", "risk-v1+0",
    )  # fmt: skip
    assert b.ts_ms - a.ts_ms == 30_000 and a.meta()[3:5] == ["card_payment", 120.5]
    assert len(a.inputs()) == 36


def test_unreadable_entries_are_dropped_and_the_newest_keeps_a_version():
    older_format = ["t-0", 1000, "AAAA", 9.5, 0.25, 0.1, ["amount_cny"], "v", ["retail"]]
    kept = pending_entries([OLD[0], older_format, "!!!! t-x"])
    assert [e.event_id for e in kept] == ["t-old-0"] and kept[0].model_version == "unknown"
