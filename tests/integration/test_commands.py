"""The command-line entry points against real services: services, simulate, demo."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.core.topics import FEEDBACK, INTERACTIONS, TRANSACTIONS
from finpulse.streams.local.stack import clickhouse_ping, free_port
from finpulse.streams.simulator import run_simulation
from finpulse.streams.tools.demo import run_demo
from finpulse.streams.worker.process import settings_env

pytestmark = pytest.mark.integration


def _cli(args, settings, timeout=120):
    env = {**settings_env(settings), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "finpulse.streams.cli", *args],
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )


def test_services_up_and_down(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        local_broker_port=free_port(),
        local_clickhouse_http_port=free_port(),
        local_clickhouse_tcp_port=free_port(),
    )
    up = _cli(["services", "up"], settings)
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    try:
        assert clickhouse_ping(info["clickhouse_url"])
        again = _cli(["services", "up"], settings)  # ports taken: a clear error, exit 2
        assert again.returncode == 2 and "already in use" in again.stderr
    finally:
        down = _cli(["services", "down"], settings)
    assert down.returncode == 0
    assert sorted(json.loads(down.stdout)["stopped"]) == ["broker", "clickhouse"]
    assert not clickhouse_ping(info["clickhouse_url"])


def test_simulate_produces_every_event_to_the_broker(env, tmp_path):
    truth = tmp_path / "truth.jsonl"
    stats = run_simulation(
        env.settings, seed=3, rate=2000, duration_s=1.5, truth_path=truth, speedup=3600
    )
    assert stats["produced"] == 3000
    by_topic = stats["by_topic"]
    seen = sum(
        len(env.consume(t, by_topic.get(t, 0))) for t in (TRANSACTIONS, INTERACTIONS, FEEDBACK)
    )
    assert seen == 3000
    assert truth.exists()


def test_demo_accounts_for_every_event(tmp_path, capsys):
    settings = Settings(
        data_dir=tmp_path,
        local_broker_port=free_port(),
        local_clickhouse_http_port=free_port(),
        local_clickhouse_tcp_port=free_port(),
        web_port=free_port(),
    )
    summary = run_demo(settings, duration_s=6, rate=800, seed=2, as_json=True)
    assert summary["ok"], summary
    assert summary["produced"] == 4800
    assert summary["processed"] == summary["produced"] - summary["malformed"]
    assert summary["clickhouse_rows"] == summary["processed"]
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["produced"] == 4800
