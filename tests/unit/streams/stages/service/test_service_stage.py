"""The service stages inside the real pipeline (default stages, MemoryState, explicit times)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from finpulse.sinks.tables import (
    CUSTOMER_STATUS_TABLE,
    MODEL_METRICS_TABLE,
    SERVICE_FRICTION_TABLE,
    SERVICE_MINUTES_TABLE,
)
from finpulse.streams.core.batch import BatchOutput, Stage, Valid
from finpulse.streams.core.topics import ALERTS, INTERACTIONS
from finpulse.streams.stages.service.legacy import survey_entry
from finpulse.streams.stages.service.names import (
    RULE_CUSTOMER_AT_RISK,
    RULE_REPEAT_CONTACTS,
    RULE_RISK_FRICTION,
    RULE_SLA,
)
from finpulse.streams.worker.app import default_stages
from tests import factories as f
from tests.service_helpers import Driver, at, contact

COLS = SERVICE_MINUTES_TABLE.columns


def _minute_rows(d: Driver) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Latest row per key, as ReplacingMergeTree(version) FINAL would keep it."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for out in d.outputs:
        for row in out.rows.get(SERVICE_MINUTES_TABLE, []):
            r = dict(zip(COLS, row, strict=True))
            key = (r["minute"], r["channel"], r["segment"], r["source_partition"])
            if key not in latest or r["version"] >= latest[key]["version"]:
                latest[key] = r
    return latest


def _outage(d: Driver, minutes_clean: int, minutes_down: int, per_minute: int = 6) -> None:
    """Call-centre contacts: quick answers, then an outage (every contact waits 4 minutes)."""
    for m in range(minutes_clean + minutes_down):
        wait = 5.0 if m < minutes_clean else 240.0
        batch = [
            contact(f"c-{m}-{k}", at(minutes=m, seconds=5 + 9 * k), wait_seconds=wait)
            for k in range(per_minute)
        ]
        d.interactions(batch)


def test_outage_raises_one_sla_alert_after_three_breached_minutes():
    d = Driver()
    _outage(d, minutes_clean=4, minutes_down=6)
    cands = d.candidates(RULE_SLA)
    assert cands, "no SLA candidate"
    first = cands[0]
    # outage starts at minute 4; minutes 4, 5, 6 breach; minute 6 closes at 7:00 + 20 s grace
    assert first.ts.isoformat() >= at(minutes=7, seconds=20)
    assert first.ts.isoformat() < at(minutes=8)
    assert first.subject_type == "channel" and first.subject_id == "call_center"
    assert first.evidence["consecutive_below_target"] == 3
    assert first.context["threshold_s"] == 20.0
    published = [
        json.loads(m.value) for out in d.outputs for m in out.messages if m.topic == ALERTS
    ]
    sla = [a for a in published if a["rule_id"] == RULE_SLA]
    assert len(sla) == 1 and sla[0]["severity"] == "orange" and sla[0]["domain"] == "service"


def test_clean_traffic_raises_no_sla_alert():
    d = Driver()
    _outage(d, minutes_clean=15, minutes_down=0)
    assert d.candidates(RULE_SLA) == []


def test_minute_rows_are_full_aggregates_with_rising_versions():
    d = Driver()
    d.interactions([contact("c-1", at(seconds=1), wait_seconds=10.0)])
    d.interactions([contact("c-2", at(seconds=2), wait_seconds=30.0, transfers=2)])
    rows = _minute_rows(d)
    [row] = rows.values()
    assert (row["contacts"], row["answered_in_sl"], row["transfers"], row["transferred"]) == (
        2,
        1,
        2,
        1,
    )
    versions = [
        r[COLS.index("version")]
        for out in d.outputs
        for r in out.rows.get(SERVICE_MINUTES_TABLE, [])
    ]
    assert versions == sorted(versions) and len(set(versions)) == 2


def test_redelivered_batch_changes_nothing():
    d = Driver()
    events = [contact(f"c-{k}", at(seconds=k), wait_seconds=float(k)) for k in range(5)]
    records = [d.record(INTERACTIONS, e) for e in events]
    first = d.pipeline.process("interaction", records)
    again = d.pipeline.process("interaction", records)  # at-least-once re-delivery
    assert first.rows[SERVICE_MINUTES_TABLE]
    assert SERVICE_MINUTES_TABLE not in again.rows
    assert d.pipeline.counts["redelivered_skipped"] == 5  # the one guard, before any stage
    d.outputs += [first, again]
    d.interactions([contact("c-9", at(seconds=30))])
    [row] = _minute_rows(d).values()
    assert row["contacts"] == 6


def test_partitions_write_partial_rows_that_sum_to_the_channel_total():
    d = Driver()
    d.interactions([contact("c-1", at(seconds=1)), contact("c-2", at(seconds=2))], partition=0)
    d.interactions([contact("c-3", at(seconds=3), wait_seconds=60.0)], partition=1)
    rows = _minute_rows(d)
    assert sorted(k[3] for k in rows) == [0, 1]
    assert sum(r["contacts"] for r in rows.values()) == 3
    assert sum(r["answered_in_sl"] for r in rows.values()) == 2


def test_repeat_contacts_within_24h_raise_the_policy_rule():
    d = Driver()
    for h in (0, 5, 23):
        d.interactions([contact("c-r", at(hours=h), resolved=False)])
    [cand] = d.candidates(RULE_REPEAT_CONTACTS)
    assert cand.subject_id == "c-r" and cand.evidence["contacts_24h"] == 3
    for h in (0, 5, 23):  # coming back, but the third contact resolved it: no alert
        d.interactions([contact("c-ok", at(hours=h), resolved=(h == 23))])
    d.interactions(
        [contact("c-q", at(hours=0), resolved=False), contact("c-q", at(hours=30), resolved=False)]
    )
    assert all(c.subject_id == "c-r" for c in d.candidates(RULE_REPEAT_CONTACTS))


class _RiskFeatures:
    """Stands in for the risk feature stage: flags every transaction as card testing."""

    name: ClassVar[str] = "risk_features_stand_in"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction"})
    state_names: ClassVar[tuple[str, ...]] = ()

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        for ev, _ in batch:
            features = out.annotations.get(ev.event_id, {}).get("features", {})  # type: ignore[attr-defined]
            out.annotate(ev.event_id, "features", {**features, "tiny_card_count_10m": 6})  # type: ignore[attr-defined]


def _with_risk(settings: Any, state: Any) -> Sequence[Stage]:
    stages = list(default_stages(settings, state))
    after_risk = next(i for i, s in enumerate(stages) if s.name == "risk") + 1
    return (*stages[:after_risk], _RiskFeatures(), *stages[after_risk:])


def test_friction_contact_after_risk_alert_shows_both_contexts():
    d = Driver(stages=_with_risk)
    d.interactions([contact("c-f", at(), wait_seconds=5.0)])
    out = d.transactions([f.transaction(customer_id="c-f", ts=at(hours=1), amount=1)])
    [risk] = [c for c in out.candidates if c.rule_id == "card_testing"]
    assert risk.context["service.contacts_24h"] == 1  # service side on the risk alert
    d.interactions([contact("c-f", at(hours=3))])
    [friction] = d.candidates(RULE_RISK_FRICTION)
    assert friction.context["risk.last_rule"] == "card_testing"  # risk side on the service alert
    assert friction.context["risk.hours_since"] == pytest.approx(2.0)
    rows = [r for o in d.outputs for r in o.rows.get(SERVICE_FRICTION_TABLE, [])]
    assert [(r[2], r[5], r[8]) for r in rows] == [("c-f", "card_testing", 7200.0)]
    # a day later the risk alert no longer counts
    d.interactions([contact("c-f", at(hours=26))])
    assert len(d.candidates(RULE_RISK_FRICTION)) == 1


def test_surveys_train_the_model_and_write_metrics():
    d = Driver(satisfaction_warmup=0)
    events = [
        contact(f"c-{k}", at(minutes=k), wait_seconds=5.0 if k % 2 else 400.0, resolved=k % 2 == 1)
        for k in range(40)
    ]
    out = d.interactions(events)
    ann = out.annotations[events[0]["event_id"]]["satisfaction"]
    assert 1.0 <= ann["predicted_csat"] <= 5.0 and ann["model_version"] == "satisfaction-1.0"
    surveys = [
        f.feedback(
            customer_id=e["customer_id"],
            ref_event_id=e["event_id"],
            ts=at(hours=2, minutes=k),
            value=5 if k % 2 else 1,
        )
        for k, e in enumerate(events)
    ]
    fb = d.feedback(surveys)
    assert d.stage.model.n_learned == 40
    cols = MODEL_METRICS_TABLE.columns
    metrics = {
        r[cols.index("metric")]: dict(zip(cols, r, strict=True))
        for r in fb.rows[MODEL_METRICS_TABLE]
    }
    assert {"mae", "mae_baseline", "auc"} <= set(metrics)
    assert metrics["mae"]["n"] == 40 and metrics["mae"]["model"] == "satisfaction"
    d.feedback([dict(s, event_id=s["event_id"] + "-dup") for s in surveys[:3]])
    assert d.stage.model.n_learned == 40  # each interaction's survey is learned once
    assert d.stage.counts["service.csat_unmatched"] == 3


def test_customer_status_lifecycle_and_health():
    d = Driver()
    opened = contact("c-h", at(), interaction_type="complaint", complaint_id="cmp-h")
    d.interactions([opened])
    ev_id = opened["event_id"]
    out = d.feedback([f.feedback(customer_id="c-h", ref_event_id=ev_id, ts=at(hours=1), value=1)])
    [row] = out.rows[CUSTOMER_STATUS_TABLE]
    r = dict(zip(CUSTOMER_STATUS_TABLE.columns, row, strict=True))
    assert r["lifecycle"] == "at_risk"  # dissatisfied with an open complaint
    assert r["open_complaints"] == 1 and r["last_csat"] == 1
    assert r["health_score"] < 50 and r["version"] == 2
    [alert] = d.candidates(RULE_CUSTOMER_AT_RISK)
    assert alert.subject_id == "c-h" and alert.evidence["lifecycle"] == "at_risk"


def test_one_batch_spanning_many_minutes_writes_every_minute_row():
    d = Driver()
    d.interactions([contact(f"c-{m}", at(minutes=m, seconds=30)) for m in range(20)])
    rows = _minute_rows(d)
    assert len(rows) == 20 and sum(r["contacts"] for r in rows.values()) == 20
    # minutes long closed are pruned from state, so a very late event is dropped, not rewritten
    d.interactions([contact("c-late", at(minutes=1, seconds=40))])
    assert d.stage.counts["service.late_dropped"] == 1
    assert _minute_rows(d)[next(iter(sorted(rows)))]["contacts"] == 1


def test_pending_surveys_in_the_previous_format_are_still_learned():
    """Upgrade: an interaction waiting for its survey in a record of an earlier release
    (inputs as a dict of named floats, the channel as a string) still learns."""
    d = Driver(satisfaction_warmup=0)
    events = [contact("c-1", at(minutes=k), wait_seconds=30.0 + k) for k in range(2)]
    d.interactions(events)
    cust = d.stage.customers.get("c-1")
    new = cust.awaiting_survey[events[0]["event_id"]]
    legacy = [new.scored_ms, new.inputs(), new.predicted_csat, new.p_dissatisfied, "app"]
    assert len(d.stage.customers.codec.encode(new)) * 3 < len(json.dumps(legacy))
    cust.awaiting_survey[events[0]["event_id"]] = survey_entry(legacy)
    surveys = [
        f.feedback(customer_id="c-1", ref_event_id=e["event_id"], ts=at(hours=1), value=4)
        for e in events
    ]
    d.feedback(surveys)
    assert d.stage.model.n_learned == 2 and d.stage.counts["service.csat_unmatched"] == 0
    assert d.stage.customers.get("c-1").awaiting_survey == {}
