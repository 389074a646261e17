"""`finpulse evaluate` offline replay: deterministic, tells a good model from a broken one."""

from __future__ import annotations

import json
import random

import pytest

from finpulse.models.risk import RiskModel
from finpulse.streams.cli import main
from finpulse.streams.tools.evaluate import evaluate

SMALL = {"seed": 2, "n_events": 12_000, "n_customers": 800, "sim_days": 2.0, "warmup": 3000}
TIMING = {"scoring_events_per_s", "pipeline_events_per_s", "stage_seconds"}


@pytest.fixture(scope="module")
def small_run() -> dict:
    return evaluate(**SMALL)


def test_same_seed_gives_the_same_figures(small_run):
    again = evaluate(**SMALL)
    assert {k: v for k, v in again.items() if k not in TIMING} == {
        k: v for k, v in small_run.items() if k not in TIMING
    }


def test_the_risk_figures_clear_a_floor(small_run):
    r = small_run
    assert r["fraud_events_after_warmup"] > 30 and r["labels_learned"] > 50
    assert r["roc_auc"] >= 0.90
    assert r["pr_auc"] >= 0.2
    assert r["rule_case_recall"]["large_value"]["recall"] == 1.0
    assert r["rule_case_recall"]["structuring"]["recall"] == 1.0
    assert r["false_alert_rate_rules"] <= 0.01
    assert r["scoring_events_per_s"] > 0
    cases = r["cases"]
    for pattern, p in cases["patterns"].items():  # at most one case missed, at any time
        assert p["case_recall_any_time"] >= (p["cases"] - 1) / p["cases"], pattern
    for pattern in ("account_takeover", "card_testing"):  # and these within the hour
        p = cases["patterns"][pattern]
        assert p["case_recall_any_alert"] >= (p["cases"] - 1) / p["cases"], pattern
    assert cases["clean_customer_alert_rate"] <= 0.01
    assert set(cases["precision_by_severity"]) <= {"yellow", "orange", "red"}


def test_a_broken_model_fails_the_floor(monkeypatch):
    original = RiskModel.assess_batch
    rng = random.Random(0)

    def noise(self, X, XA=None):
        out, XS = original(self, X, XA)
        return [a._replace(score=100.0 * rng.random()) for a in out], XS

    monkeypatch.setattr(RiskModel, "assess_batch", noise)
    r = evaluate(**SMALL)
    assert r["roc_auc"] < 0.6


def test_cli_prints_one_json_object(capsys):
    assert main(["evaluate", "--seed", "3", "--events", "3000", "--customers", "300",
                 "--days", "0.5", "--warmup", "500", "--json"]) == 0  # fmt: skip
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    report = json.loads(out[0])
    assert report["seed"] == 3 and report["events"] == 3000 and "roc_auc" in report
