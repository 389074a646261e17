"""The offline service figures on a short simulator run (deterministic for a seed)."""

from __future__ import annotations

import json

import pytest

from finpulse.streams.cli import main
from finpulse.streams.tools.evaluate_service import partition_of, service_figures


def test_short_run_detects_its_outage_without_false_alarms():
    figs = service_figures(1, n_events=12000, sim_span_s=5400, n_customers=500)
    [outage] = figs["outages"]
    assert outage["channel"] == "chat"
    assert 0 < outage["detection_delay_min"] <= 5
    assert figs["sla_false_alarms"] == {"alerts": 0, "candidate_minutes": 0, "by_channel": {}}
    sat = figs["satisfaction"]
    assert sat["surveys_learned"] > 150
    assert sat["mae"] < sat["mae_baseline"]
    assert "mae_after_warmup" not in sat  # fewer surveys than the warm-up


@pytest.mark.parametrize("partitions", [1, 12])
def test_the_outage_is_seen_on_one_partition_or_many(partitions):
    # with 12 partitions each sees a twelfth of the failing channel's contacts: pooled
    figs = service_figures(
        1, n_events=12000, sim_span_s=5400, n_customers=500, partitions=partitions, risk=False
    )
    [outage] = figs["outages"]
    assert 0 < outage["detection_delay_min"] <= 5
    assert figs["sla_false_alarms"]["alerts"] == 0


def test_the_sla_figures_do_not_depend_on_the_risk_stage():
    run = {"n_events": 4000, "sim_span_s": 3600, "n_customers": 300}
    full = service_figures(2, **run)
    fast = service_figures(2, **run, risk=False)
    assert fast["outages"] == full["outages"] and full["outages"]
    assert fast["sla_false_alarms"] == full["sla_false_alarms"]


def test_keys_spread_over_partitions_and_keyless_records_round_robin():
    from collections import Counter

    counts = Counter(partition_of(f"c1-{i:06d}".encode(), 4, 0) for i in range(2000))
    assert sorted(counts) == [0, 1, 2, 3] and min(counts.values()) > 400
    assert [partition_of(None, 4, n) for n in range(5)] == [0, 1, 2, 3, 0]


def test_cli_prints_the_figures_as_json(capsys):
    args = ["evaluate-service", "--seed", "2", "--events", "3000", "--span", "3600", "--json"]
    assert main([*args, "--customers", "300", "--partitions", "2"]) == 0
    figs = json.loads(capsys.readouterr().out)
    assert figs["seed"] == 2 and figs["partitions"] == 2 and figs["events"] == 3000
    assert set(figs["targets"]) == {
        "all_outages_detected_within_5_min",
        "no_sla_alert_in_clean_periods",
        "mae_20pct_below_baseline",
    }
