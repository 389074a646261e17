"""Scoring, learning, metrics and the checkpoint of the satisfaction concept."""

from __future__ import annotations

from collections import Counter

import pytest

from finpulse.config.policy import load_policy
from finpulse.config.settings import Settings
from finpulse.sinks.checkpoints import MemoryCheckpoints
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE, MODEL_METRICS_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import SATISFACTION_EXAMPLES
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service.records import RiskAlert, ServiceCustomer
from finpulse.streams.stages.service.satisfaction import Satisfaction, customer_context

from ._events import feedback, interaction


def _sat(store: MemoryCheckpoints | None = None, **settings: object) -> Satisfaction:
    return Satisfaction(Settings(**settings), RuleEngine(load_policy()), Counter(), store)


def _raw(offset: int) -> RawRecord:
    return RawRecord("finpulse.feedback", 0, offset, b"")


def _stream(sat: Satisfaction, out: BatchOutput) -> None:
    """Learn the learning-stream records of ``out`` at consecutive offsets (the broker's
    part, done in process)."""
    for m in out.messages:
        if m.topic == SATISFACTION_EXAMPLES:
            sat.learn_examples(sat.position.next_offset, m.value, out)


def test_context_shrinks_past_answers_towards_the_prior():
    ctx = customer_context(ServiceCustomer(), 0, [RiskAlert(0, "r", "red", None)])
    assert ctx == {
        "contacts_24h": 0.0,
        "recent_wait_log": 0.0,
        "open_complaints": 0.0,
        "risk_friction": 1.0,
        "past_csat": 0.0,
    }
    answered = ServiceCustomer(csat_sum=2.0, csat_count=2)
    assert customer_context(answered, 0, [])["past_csat"] == -1.25


def test_score_keeps_the_interaction_for_its_survey_and_annotates():
    sat, cust, out = _sat(), ServiceCustomer(predicted_dissatisfaction=0.5), BatchOutput()
    ev = interaction(event_id="i-1", channel="chat", wait_seconds=30.0)
    predicted, p = sat.score(ev, cust, 1000, 0, [], 30.0, out)
    kept = cust.awaiting_survey["i-1"]
    assert (kept.scored_ms, kept.predicted_csat, kept.p_dissatisfied, kept.channel_name()) == (
        1000,
        round(predicted, 4),
        round(p, 4),
        "chat",
    )
    assert kept.inputs()["ch_chat"] == 1.0 and kept.inputs()["wait_log"] == pytest.approx(
        3.434, abs=1e-3
    )
    assert cust.recent_wait_logs == [0.6931]
    assert cust.predicted_dissatisfaction == round(0.7 * 0.5 + 0.3 * p, 4)
    ann = out.annotations["i-1"]["satisfaction"]
    assert ann["model_version"] == sat.version and ann["predicted_csat"] == predicted


def test_learn_once_per_survey_then_metrics():
    sat, cust, out = _sat(), ServiceCustomer(), BatchOutput()
    sat.score(interaction(event_id="i-1"), cust, 0, 0, [], 20.0, out)
    survey = feedback(ref_event_id="i-1", value=2)
    assert sat.learn(survey, _raw(0), cust) == "call_center"  # the interaction's channel
    assert sat.learn(survey, _raw(1), cust) is None  # its entry is gone
    assert (cust.csat_sum, cust.csat_count, cust.last_csat) == (2.0, 1, 2)
    assert sat.model.n_learned == 0  # learned from the stream, not at the join
    assert sat.counts["service.csat_unmatched"] == 1
    sat.publish(5000, out)
    assert {r[3] for r in out.rows[MODEL_METRICS_TABLE]} >= {"mae", "mae_baseline", "auc"}
    _stream(sat, out)
    assert sat.model.n_learned == 1
    _stream(sat, out)  # the same record again (a re-run batch): skipped
    assert sat.model.n_learned == 1 and sat.counts["service.csat_duplicate"] == 1


def test_checkpoint_every_n_surveys_as_a_row_and_restore_once():
    store = MemoryCheckpoints()
    sat, cust, out = _sat(store, satisfaction_checkpoint_every=2), ServiceCustomer(), BatchOutput()
    sat.restore()  # nothing yet: starts fresh, and may now write checkpoints
    for k in range(3):
        sat.score(interaction(event_id=f"i-{k}"), cust, k, 0, [], 20.0, out)
        sat.learn(feedback(ref_event_id=f"i-{k}", value=4), _raw(k), cust)
    sat.publish(3, out)
    _stream(sat, out)  # 3 learned from one record: crosses 2
    (row,) = out.rows[MODEL_CHECKPOINTS_TABLE]  # stored by the committer
    store.save_row(row)
    fresh = _sat(store, satisfaction_checkpoint_every=2)
    fresh.restore()
    assert fresh.model.n_learned == 3 and fresh.monitor.n == 3
    assert fresh.position.next_offset == 1 and fresh.position.sources[0].above == {0, 1, 2}
    fresh.model.learn_one({"wait_log": 1.0}, 5.0)
    fresh.restore()  # only once: nothing reloaded
    assert fresh.model.n_learned == 4
