"""``finpulse bench`` end to end on a small load: every phase reconciles, figures are sane."""

from __future__ import annotations

import json

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.tools.bench import Bench, format_table

pytestmark = pytest.mark.integration


def test_bench_runs_its_phases_and_reports_the_contract_fields(tmp_path, broker_kind):
    result = Bench(
        Settings(topic_partitions=2),
        tmp_path,
        events=3000,
        rate=500,
        fixed_s=2,
        workers=(1,),
        broker=broker_kind,
    ).run()
    assert result["broker"] == broker_kind
    assert result["producer_linger_ms"] == {"kafka": 5.0, "tansu": 50.0}[broker_kind]
    assert result["reconciled"], [p["issues"] for p in result["phases"]]
    assert all(p["broker_cpu_s"] > 0 for p in result["phases"])
    assert [p["name"] for p in result["phases"]] == ["fixed", "saturation-1"]
    for key in ("events_per_s", "p50_ms", "p95_ms", "p99_ms"):
        assert result[key] > 0, key
    assert result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    assert result["scoring_events_per_s"] > 0 and result["bytes_per_customer"] > 0
    assert 50 < result["worker_rss_mb"] < 2000
    assert result["events_per_cpu_s"] > 0
    for p in result["phases"]:  # each worker's part: every event of the phase, at least once
        assert sum(p["worker_events"]) >= p["events"], p["name"]
        assert sum(p["worker_events_per_s"]) == pytest.approx(p["events_per_s"], rel=0.01)
    with_alerts = [p for p in result["phases"] if p["alerts"]]
    assert with_alerts, "no alert arrived on finpulse.alerts during the bench"
    for p in with_alerts:
        assert 0 < p["alert_p50_ms"] <= p["alert_p95_ms"] <= p["alert_p99_ms"] < 120_000
        windows = p["alert_windows"]  # by send time: every alert in exactly one window
        assert sum(w["alerts"] for w in windows) == p["alerts"]
        assert all(0 < w["p50_ms"] <= w["p99_ms"] for w in windows)
        # created by the worker before it reached the consumer: a part of the same wait
        assert 0 < p["alert_created_p50_ms"] <= p["alert_created_p99_ms"] <= p["alert_p99_ms"]
        assert p["alert_created_p50_ms"] <= p["alert_p50_ms"]
        assert all(w["created_p50_ms"] <= w["created_p99_ms"] <= w["p99_ms"] for w in windows)
    fixed = result["phases"][0]
    assert fixed["events"] == 1000 and 0.9 * 2 <= fixed["produce_s"] < 10  # paced, not flat out
    json.dumps(result)  # one JSON object
    assert "saturation-1" in format_table(result) and "broker CPU" in format_table(result)


def test_broker_bench_consumes_every_sent_event_and_reports_windows():
    from finpulse.streams.tools.bench_broker import run

    result = run(rate=300, seconds=3, linger_ms=20)
    assert result["linger_ms"] == 20
    windows = result["windows"]
    assert sum(w["events"] for w in windows) == result["sent"] > 800  # the probe is left out
    assert all(0 < w["p50_ms"] <= w["p99_ms"] < 60_000 for w in windows)
    assert windows[0]["from_s"] == 0.0
