"""The service records: previous-release JSON records migrated on read, then used by the stage.

``records_2bad434.json`` holds real records as the changelogs of commit ``2bad434`` wrote them
(JSON; its pipeline run offline over the seed-1 simulator with MemoryState, see the file's
``about``): a customer with an interaction awaiting its survey and an open complaint, the
partition record with a minute aggregate and an SLA window, the complaint bucket of that
day, and two customers' recent risk alerts. ``records_3749e4a.json`` holds the same kinds of
records as commit ``3749e4a`` wrote them (MessagePack maps with the same short keys).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from finpulse.sinks.tables import COMPLAINTS_TABLE
from finpulse.streams.core.state import MemoryState
from finpulse.streams.stages.service.complaints import CLOSED
from finpulse.streams.stages.service.names import CUSTOMERS_STATE, PARTITIONS_STATE, RISK_STATE
from finpulse.streams.stages.service.records import (
    BookedComplaint,
    ComplaintBucket,
    OpenComplaint,
    PartitionRecord,
    RecentRiskAlerts,
    RiskAlert,
    ServiceCustomer,
)
from tests import factories as f
from tests.service_helpers import Driver

OLD = json.loads((Path(__file__).parent / "records_2bad434.json").read_text())
MAPS = json.loads((Path(__file__).parent / "records_3749e4a.json").read_text())
STATES = (CUSTOMERS_STATE, PARTITIONS_STATE, RISK_STATE)


def _restored(d: Driver) -> dict[str, MemoryState]:
    """The driver's service states, filled from the old changelog values through each
    table's codec (what a worker does with a value Faust restored)."""
    states = {s.name: s for s in d.pipeline.states if s.name in STATES}
    assert isinstance(states[CUSTOMERS_STATE], MemoryState)
    for name in STATES:
        for key, text in OLD[name].items():
            value = states[name].codec.decode(text.encode())
            assert value is not None, (name, key)
            states[name].put(key, value, None)
    return states  # type: ignore[return-value]


def test_old_records_decode_into_typed_records_with_the_same_content():
    states = _restored(Driver())
    cust = states[CUSTOMERS_STATE].get("c1-000232")
    old: dict[str, Any] = json.loads(OLD[CUSTOMERS_STATE]["c1-000232"])
    assert isinstance(cust, ServiceCustomer)
    assert (cust.customer_type, cust.segment, cust.first_seen_ms, cust.last_seen_ms) == (
        "individual",
        "retail",
        old["f"],
        old["l"],
    )
    assert cust.events_per_day == {20459: 1, 20462: 2, 20463: 1}
    assert (cust.csat_sum, cust.csat_count, cust.last_csat) == (5.0, 1, 5)
    assert cust.open_complaints == {"cmp-1-107": OpenComplaint(20462, ["i-1-1218"])}
    assert cust.status_signature == ("new", 1, 5, 0, 82, None, 20463)
    assert (cust.status_version, cust.lifecycle_stage, cust.predicted_dissatisfaction) == (
        5,
        "new",
        0.0623,
    )
    (waiting,) = cust.awaiting_survey.values()
    assert (waiting.scored_ms, waiting.predicted_csat, waiting.p_dissatisfied) == (
        old["pe"]["i-1-414"][0],
        5.0,
        0.0085,
    )
    assert waiting.channel_name() == "app" and waiting.inputs()["ch_app"] == 1.0

    meta = states[PARTITIONS_STATE].get("p0")
    assert isinstance(meta, PartitionRecord)
    assert meta.minute_aggregates == {
        "1768089420000|chat|individual|retail": [1, 1, 24.4, 531.2, 1, 1, 1, 0, 0, 0, 0]
    }
    assert meta.sla.minutes == {"chat": {1768089420000: [1, 1]}}
    assert (meta.sla.closed_minute_ms, meta.version, meta.next_sweep_ms) == (
        1768089360000,
        12345,
        1768089600000,
    )
    assert meta.complaint_days == [20458, 20459, 20460, 20461, 20462, 20463]
    bucket = states[PARTITIONS_STATE].get("p0|c20462")
    assert isinstance(bucket, ComplaintBucket) and len(bucket.complaints) == 26
    assert bucket.complaints["cmp-1-107"] == BookedComplaint(
        1767950996591, "i-1-1218", "open", 1, "c1-000232", "individual", "retail", "branch"
    )
    risks = states[RISK_STATE].get("c1-000125")
    assert risks == RecentRiskAlerts([RiskAlert(1767662750603, "account_takeover", "red", 9.13)])
    assert len(states[RISK_STATE].get("c1-001674").alerts) == 10


def test_migrated_records_round_trip_and_are_smaller():
    states = _restored(Driver())
    for name in STATES:
        codec = states[name].codec
        for key, text in OLD[name].items():
            value = states[name].get(key)
            data = codec.encode(value)
            assert codec.decode(data) == value
            assert len(data) < len(text)  # MessagePack arrays against JSON objects


def test_the_stage_carries_on_from_migrated_records():
    """A survey for the interaction scored before the upgrade is learned from its kept
    inputs, and a close of the complaint opened before it finds the complaint."""
    d = Driver(satisfaction_warmup=0)
    states = _restored(d)
    ts = "2026-01-10T20:00:00+00:00"
    d.feedback(
        [
            f.feedback(customer_id="c1-000232", ref_event_id="i-1-414", ts=ts, value=4),
            f.feedback(
                customer_id="c1-000232",
                ref_event_id="i-1-1218",
                ts=ts,
                kind="complaint_closed",
                value=None,
            ),
        ]
    )
    assert d.stage.model.n_learned == 1 and d.stage.counts["service.csat_unmatched"] == 0
    assert d.stage.counts["service.complaint_close_unmatched"] == 0
    cust = states[CUSTOMERS_STATE].get("c1-000232")
    assert cust.awaiting_survey == {} and cust.open_complaints == {}
    assert (cust.csat_count, cust.last_csat) == (2, 4)
    assert "cmp-1-107" not in states[PARTITIONS_STATE].get("p0|c20462").complaints
    closes = [r for o in d.outputs for r in o.rows.get(COMPLAINTS_TABLE, [])]
    assert [(r[0], r[1]) for r in closes] == [("cmp-1-107", CLOSED)]


def test_records_written_as_messagepack_maps_are_migrated_and_carry_on():
    d = Driver(satisfaction_warmup=0)
    states = {s.name: s for s in d.pipeline.states if s.name in STATES}
    for name in STATES:
        for key, text in MAPS[name].items():
            value = states[name].codec.decode(base64.b64decode(text))
            assert value is not None, (name, key)
            states[name].put(key, value, None)
    cust = states[CUSTOMERS_STATE].get("c1-000001")
    assert isinstance(cust, ServiceCustomer) and cust.status_version == 8
    assert set(cust.awaiting_survey) == {"i-1-1038", "i-1-1224"}
    assert cust.open_complaints == {"cmp-1-103": OpenComplaint(20462, ["i-1-1224"])}
    assert states[PARTITIONS_STATE].get("p0").version == 12342
    assert isinstance(states[PARTITIONS_STATE].get("p0|c20460"), ComplaintBucket)
    assert len(states[RISK_STATE].get("c1-000706").alerts) == 10
    ts = "2026-01-10T20:00:00+00:00"
    d.feedback([f.feedback(customer_id="c1-000001", ref_event_id="i-1-1038", ts=ts, value=2)])
    assert d.stage.model.n_learned == 1 and cust.last_csat == 2


@pytest.mark.parametrize(
    "name, data",
    [
        (CUSTOMERS_STATE, b'{"ct": "individual", "dy": {"not-a-day": 1}}'),
        (CUSTOMERS_STATE, b'{"pe": {"i-1": [0, "not base64 of inputs", 4.0, 0.1, 1]}}'),
        (PARTITIONS_STATE, b'{"cmp-1": {"o": 0}}'),
        (RISK_STATE, b'{"a": [[0, "r"]]}'),
        (RISK_STATE, b"\x93\xc1"),
    ],
)
def test_an_unreadable_record_is_logged_and_starts_fresh_or_loses_only_its_bad_entry(
    name: str, data: bytes, caplog: pytest.LogCaptureFixture
):
    state = {s.name: s for s in Driver().pipeline.states}[name]
    with caplog.at_level(logging.INFO):
        value = state.codec.decode(data)
    assert caplog.records  # never silent
    if value is not None:  # only the survey entry was unreadable: the rest is kept
        assert isinstance(value, ServiceCustomer) and value.awaiting_survey == {}
