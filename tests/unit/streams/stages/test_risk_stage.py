"""The risk stage through the real Pipeline offline: scores, label join, state, checkpoints."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.models.alerts import Severity
from finpulse.sinks.checkpoints import MemoryCheckpoints, checkpoint_row
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE, MODEL_METRICS_TABLE, RISK_SCORES_TABLE
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import FEEDBACK, TRANSACTIONS
from finpulse.streams.stages.risk import STATE_NAME, RiskCustomer, RiskStage, risk_stages
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.worker.pipeline import Pipeline
from tests.factories import encode, feedback, transaction

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
COLS = RISK_SCORES_TABLE.columns


class CountingState(MemoryState):
    def __init__(self, name: str, value_type: Any = Any) -> None:
        super().__init__(name, value_type)
        self.puts: list[str] = []

    def put(self, key: str, value: Any, record: RawRecord | None) -> None:
        self.puts.append(key)
        super().put(key, value, record)


def settings(**over: Any) -> Settings:
    return Settings(restore_model_checkpoints=False, **over)


_offsets: dict[str, itertools.count[int]] = {}


def records(topic: str, events: list[dict[str, Any]]) -> list[RawRecord]:
    """Records at the next offsets of partition 0 of ``topic``, as a broker hands them out."""
    offsets = _offsets.setdefault(topic, itertools.count())
    return [
        RawRecord(topic, 0, next(offsets), encode(e), e["customer_id"].encode()) for e in events
    ]


def txn(i: int, at_s: float, **over: Any) -> dict[str, Any]:
    return transaction(event_id=f"t-{i}", ts=(T0 + timedelta(seconds=at_s)).isoformat(), **over)


def label(ref: str, customer: str, at_s: float, fraud: bool) -> dict[str, Any]:
    return feedback(
        ref_event_id=ref,
        customer_id=customer,
        kind="fraud_confirmed" if fraud else "fraud_cleared",
        ts=(T0 + timedelta(seconds=at_s)).isoformat(),
        value=None,
    )


def make(**over: Any) -> tuple[Pipeline, RiskStage, dict[str, CountingState]]:
    states: dict[str, CountingState] = {}

    def factory(name: str, value_type: Any = Any) -> CountingState:
        return states.setdefault(name, CountingState(name, value_type))

    pipeline = Pipeline(settings(**over), stages=risk_stages, state=factory)
    stage = pipeline.stages[0]
    assert isinstance(stage, RiskStage)
    return pipeline, stage, states


def test_every_transaction_is_scored_annotated_and_written():
    pipeline, _, _ = make()
    events = [txn(i, 60 * i, customer_id=f"c-{i % 3}") for i in range(9)]
    out = pipeline.process("transaction", records(TRANSACTIONS, events))
    rows = out.rows[RISK_SCORES_TABLE]
    assert [r[0] for r in rows] == [e["event_id"] for e in events]
    for e in events:
        ann = out.annotations[e["event_id"]]
        assert 0.0 <= ann["risk"]["score"] <= 100.0
        assert ann["risk"]["model_version"] == "risk-v1+0"
        assert ann["features"]["txn_count_1h"] >= 1
    last = dict(zip(COLS, rows[-1], strict=True))
    assert last["txn_count_24h"] == 3 and last["label"] is None and last["row_version"] == 0


def test_one_state_write_per_customer_per_batch():
    pipeline, _, states = make()
    events = [txn(i, 10 * i, customer_id=f"c-{i % 4}") for i in range(40)]
    pipeline.process("transaction", records(TRANSACTIONS, events))
    assert sorted(states[STATE_NAME].puts) == ["c-0", "c-1", "c-2", "c-3"]


def test_label_joins_the_pending_transaction_and_rewrites_its_row():
    pipeline, stage, states = make()
    pipeline.process("transaction", records(TRANSACTIONS, [txn(1, 0, customer_id="c-7")]))
    states[STATE_NAME].puts.clear()
    labelled = records(FEEDBACK, [label("t-1", "c-7", 600, True)])
    out = pipeline.process("feedback", labelled)
    assert stage.counts["labels"] == 1 and stage.m.model.supervised.n_seen == [0, 1]
    (row,) = out.rows[RISK_SCORES_TABLE]
    row_d = dict(zip(COLS, row, strict=True))
    assert (row_d["event_id"], row_d["label"], row_d["row_version"]) == ("t-1", 1, 1)
    assert row_d["ts"] == T0  # same ReplacingMergeTree key as the scored row
    assert states[STATE_NAME].puts == ["c-7"]
    assert states[STATE_NAME].get("c-7").pending == []  # no longer pending
    metrics = {(r[2], r[3]) for r in out.rows[MODEL_METRICS_TABLE]}
    assert ("risk", "labels") in metrics and ("risk", "recall_yellow") in metrics
    # the same label re-delivered (same offset) is skipped; sent again (a new offset), it
    # finds nothing pending: counted, not learnt twice
    pipeline.process("feedback", labelled)
    assert pipeline.counts["redelivered_skipped"] == 1
    pipeline.process("feedback", records(FEEDBACK, [label("t-1", "c-7", 602, True)]))
    assert stage.counts["labels"] == 1 and stage.counts["labels_unmatched"] == 1


def test_redelivered_transactions_do_not_count_twice_in_the_features():
    pipeline, stage, _ = make()
    batch = records(TRANSACTIONS, [txn(i, 60 * i, customer_id="c-9") for i in range(3)])
    pipeline.process("transaction", batch)
    out = pipeline.process("transaction", batch[1:])  # re-delivered after a crash
    assert stage.counts["scored"] == 3 and pipeline.counts["redelivered_skipped"] == 2
    assert RISK_SCORES_TABLE not in out.rows
    new = records(TRANSACTIONS, [txn(3, 240, customer_id="c-9")])
    out = pipeline.process("transaction", new)
    assert out.annotations["t-3"]["features"]["txn_count_1h"] == 4


def test_pending_features_expire_after_the_ttl():
    pipeline, stage, _ = make(risk_pending_ttl_s=3600.0)
    pipeline.process("transaction", records(TRANSACTIONS, [txn(1, 0, customer_id="c-8")]))
    # a later transaction of the customer, past the TTL, drops the pending entry of t-1
    pipeline.process("transaction", records(TRANSACTIONS, [txn(2, 3601, customer_id="c-8")]))
    assert stage.counts["pending_expired"] == 1
    pipeline.process("feedback", records(FEEDBACK, [label("t-1", "c-8", 3700, True)]))
    assert stage.counts["labels"] == 0 and stage.counts["labels_unmatched"] == 1
    pipeline.process("feedback", records(FEEDBACK, [label("t-2", "c-8", 3700, False)]))
    assert stage.counts["labels"] == 1


def test_non_fraud_feedback_is_ignored():
    pipeline, stage, states = make()
    fb = feedback(customer_id="c-1", kind="csat_survey", value=4)
    pipeline.process("feedback", records(FEEDBACK, [fb]))
    assert stage.counts["labels_unmatched"] == 0 and states[STATE_NAME].puts == []


def test_checkpoint_restores_in_a_fresh_stage():
    pipeline, _, _ = make(risk_checkpoint_every_labels=3)
    events = [txn(i, 30 * i, customer_id=f"c-{i % 5}") for i in range(30)]
    pipeline.process("transaction", records(TRANSACTIONS, events))
    labels = [
        label(e["event_id"], e["customer_id"], 4000, i % 3 == 0) for i, e in enumerate(events)
    ]
    out = pipeline.process("feedback", records(FEEDBACK, labels[:4]))
    (ck,) = out.rows[MODEL_CHECKPOINTS_TABLE]
    assert ck[1] == "risk" and ck[3] == "risk-v1+4" and ck[4] == 4
    store = MemoryCheckpoints()
    store.save_row(ck)
    fresh = RiskStage(settings(), MemoryState(STATE_NAME), checkpoints=store)
    probe = [txn(99, 5000, customer_id="c-new")]
    a = pipeline.process("transaction", records(TRANSACTIONS, probe)).annotations["t-99"]["risk"]
    fresh_pipeline = Pipeline(settings(), stages=lambda s, st: (fresh,))
    fresh_pipeline.restore_models()  # what the worker runs off the loop before a batch
    b = fresh_pipeline.process("transaction", records(TRANSACTIONS, probe)).annotations["t-99"]
    assert b["risk"]["model_version"] == "risk-v1+4" == a["model_version"]
    assert b["risk"]["score"] == a["score"]
    assert fresh.m.model.n_learned == 4


def test_an_unreachable_checkpoint_store_fails_the_restore_and_is_never_overwritten():
    class Down:
        def load_latest(self, model: str) -> Any:
            raise ConnectionError("ClickHouse down")

    stage = RiskStage(
        settings(risk_checkpoint_every_events=1), MemoryState(STATE_NAME), checkpoints=Down()
    )
    pipeline = Pipeline(settings(), stages=lambda s, st: (stage,))
    with pytest.raises(ConnectionError):  # the worker retries it before any batch
        pipeline.restore_models()
    out = pipeline.process("transaction", records(TRANSACTIONS, [txn(1, 0)]))
    assert RISK_SCORES_TABLE in out.rows and MODEL_CHECKPOINTS_TABLE not in out.rows


def test_model_score_alerts_come_from_the_policy_thresholds():
    policy = load_policy()
    lowered = policy.models["risk_score"].model_copy(
        update={"thresholds": {Severity.YELLOW: 30.0, Severity.ORANGE: 40.0, Severity.RED: 95.0}}
    )
    engine = RuleEngine(policy.model_copy(update={"models": {"risk_score": lowered}}))
    stage = risk_stages(settings(), MemoryState, engine)[0]
    pipeline = Pipeline(settings(), stages=lambda s, st: (stage,))
    quiet = [txn(i, 60 * i, customer_id=f"c-{i % 50}", amount=100.0) for i in range(600)]
    pipeline.process("transaction", records(TRANSACTIONS, quiet))
    odd = txn(
        1000, 40000, customer_id="c-1", amount=450000.0, txn_type="transfer",
        device_id="d-new", ip_country="KH", counterparty_id="p-new",
    )  # fmt: skip
    out = pipeline.process("transaction", records(TRANSACTIONS, [odd]))
    score = out.annotations["t-1000"]["risk"]["score"]
    assert 40 <= score < 95
    (cand,) = [c for c in out.candidates if c.rule_id == "model.risk_score"]
    assert cand.subject_id == "c-1" and cand.score == score and cand.reason_codes
    assert cand.severity == Severity.ORANGE
    assert cand.model_version == "risk-v1+0"


# A customer's record as the previous release wrote it to the changelog (JSON; two card
# payments of 120.50 at T0 - 60 s and T0 - 30 s, device d-1, account a-1, counterparty shop-1).
LEGACY_RECORD = (
    b'{"f":{"v":3,"n":2,"last":1796003970.0,"h":[[5986679,2,0,24100]],"ht":[2,0,24100],'
    b'"d":[[498889,2,0,0,0,24100]],"dt":[2,0,0,0,24100],"day":[20787,0,0],"tiny":[],"cr":[],'
    b'"dev":["gjpkgmco"],"cty":["CN"],"cp":["polilkbh"],"acct":["gfmkmkin"],'
    b'"amt":{"4":[2,4.79991,0.0]}},"p":["AaBGLSqiARFUwJoMAIknAQGSXgAk.z.AAADAABAAzUSMOYw(zURwQm'
    b'LLzUQ t-old-0",["AdC*LSqiARFUwJoMAIknAgKSXgAk//.AAADAABAAzURYAGU.ZTx:RXBC%sKMOX#F t-old-1",'
    b'"risk-v1+0"]]}'
)


def test_a_record_of_the_previous_release_keeps_its_history_and_its_pending_labels():
    """Upgrade: a JSON record restored from the changelog is migrated on read: its pending
    entries still match labels (the row re-written with the stored values), the feature
    history goes on, and the record is written back as a typed record."""
    pipeline, stage, states = make()
    state = states[STATE_NAME]
    state.data["c-5"] = state.codec.decode(LEGACY_RECORD)  # as FaustTableState.get does
    out = pipeline.process("feedback", records(FEEDBACK, [label("t-old-0", "c-5", 30, True)]))
    assert stage.counts["labels"] == 1 and stage.m.model.supervised.n_seen == [0, 1]
    (row,) = out.rows[RISK_SCORES_TABLE]
    r = dict(zip(COLS, row, strict=True))
    assert r["ts"] == T0 - timedelta(seconds=60) and (r["label"], r["row_version"]) == (1, 1)
    assert (r["segment"], r["channel"], r["txn_type"], r["amount_cny"]) == (
        "retail", "pos", "card_payment", 120.5,
    )  # fmt: skip
    assert (r["model_version"], r["txn_count_1h"]) == ("risk-v1+0", 1)
    t = txn(9, 0, customer_id="c-5", counterparty_id="shop-1", account_id="a-1", device_id="d-1")
    t.update(txn_type="card_payment", amount=120.5)
    out = pipeline.process("transaction", records(TRANSACTIONS, [t]))
    f = out.annotations["t-9"]["features"]
    assert f["history_count"] == 2 and f["txn_count_1h"] == 3
    assert not (f["new_device"] or f["new_counterparty"] or f["new_account"])
    assert abs(f["amount_zscore"]) < 1  # the card payment statistics carried over
    stored = state.get("c-5")
    assert isinstance(stored, RiskCustomer)
    assert [e.event_id for e in stored.pending] == ["t-old-1", "t-9"]
    assert state.codec.decode(state.codec.encode(stored)) == stored


@pytest.mark.parametrize(
    "old", [{"w": 1.0}, {"format": 1, "models": None}], ids=["bare-pickle", "format-1"]
)
def test_a_checkpoint_of_another_format_is_ignored_with_a_log_line(old, caplog):
    store = MemoryCheckpoints()
    store.save_row(checkpoint_row("risk", "risk-v1+9", 9, old))
    stage = RiskStage(
        settings(risk_checkpoint_every_events=1), MemoryState(STATE_NAME), checkpoints=store
    )
    pipeline = Pipeline(settings(), stages=lambda s, st: (stage,))
    with caplog.at_level("WARNING"):
        pipeline.restore_models()
    assert "ignoring a risk checkpoint of format" in caplog.text
    out = pipeline.process("transaction", records(TRANSACTIONS, [txn(1, 0)]))
    (ck,) = out.rows[MODEL_CHECKPOINTS_TABLE]  # the fresh models checkpoint over it
    assert stage.m.model.n_learned == 0 and ck[3] == "risk-v1+0"
