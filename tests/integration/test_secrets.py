"""Secrets never leave as text: not in logs, error messages, stats files or CLI output.

A worker runs against a ClickHouse user with a password (the local stack's optional
password user), with every secret setting filled; then a worker and the CLI run with a
wrong ClickHouse password, so the secret is part of a failing connection.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pydantic import SecretStr

from finpulse.sinks.migrate import migrate
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.worker.process import settings_env
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SECRETS = {
    "clickhouse_password": "ch-pw-Zq81xK",
    "kafka_sasl_password": "sasl-pw-Lm44vR",
    "grafana_token": "glsa_tok_Hy27pW",
    "pii_key": "pii-key-Tn93bQ",
    "webhook_secret": "hook-key-Wd55cJ",
}
WRONG = "wrong-pw-Xv66sN"


ALL_SECRETS = (*SECRETS.values(), WRONG)


def _assert_clean(text: str, where: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text, f"secret {secret[:6]}... leaked into {where}"


def _cli(args, settings, timeout=60):
    env = {**settings_env(settings), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "finpulse.streams.cli", "-v", *args],
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )


def test_no_secret_reaches_logs_errors_stats_or_cli_output(env, tmp_path):
    own = LocalStack(
        env.settings.model_copy(
            update={
                "data_dir": tmp_path / "own-ch",
                "local_clickhouse_http_port": free_port(),
                "local_clickhouse_tcp_port": free_port(),
                "clickhouse_user": "finpulse",
                "clickhouse_password": SecretStr(SECRETS["clickhouse_password"]),
            }
        )
    )
    own.start_clickhouse()
    try:
        env.settings = env.settings.model_copy(
            update={
                "clickhouse_url": own.clickhouse_url,
                "clickhouse_user": "finpulse",
                **{k: SecretStr(v) for k, v in SECRETS.items()},
            }
        )
        assert env.settings.clickhouse_password.get_secret_value() == SECRETS["clickhouse_password"]
        migrate(env.settings)  # as the password user
        good = env.worker(name="good")
        events = [f.transaction() for _ in range(200)]
        env.produce(TRANSACTIONS, [f.encode(e) for e in events])
        assert env.wait_rows("transactions", 200) == 200  # the password user really works
        good.wait_for(lambda s: s["processed"] == 200, 20, "stats of the good worker")

        bad = env.worker(name="bad", clickhouse_password=SecretStr(WRONG), app_id="finpulse-bad")
        env.produce(TRANSACTIONS, [f.encode(f.transaction()) for _ in range(20)])
        bad.wait_for(  # first the model restore, then any insert, retried, never given up
            lambda s: s["restore_retries"] + s["sink_retries"] >= 2,
            30,
            "retries with a wrong password",
        )
        assert bad.alive()

        cli_runs = {
            "config": _cli(["config"], env.settings),
            "migrate (wrong password)": _cli(
                ["migrate"],
                env.settings.model_copy(update={"clickhouse_password": SecretStr(WRONG)}),
            ),
        }
        config = json.loads(cli_runs["config"].stdout)
        assert config["clickhouse_user"] == "finpulse"
        assert all(config[name] == "**********" for name in SECRETS)
        failed = cli_runs["migrate (wrong password)"]
        assert failed.returncode != 0 and "Authentication failed" in failed.stderr

        for w in (good, bad):
            w.stop(timeout_s=15)
        bad_log = bad.log_path.read_text()
        assert "AUTHENTICATION_FAILED" in bad_log  # the failure is reported, without the secret
        for w in (good, bad):
            _assert_clean(w.log_path.read_text(), f"log {w.log_path.name}")
            _assert_clean(w.stats_path.read_text(), f"stats {w.stats_path.name}")
        for name, run in cli_runs.items():
            _assert_clean(run.stdout + run.stderr, f"`finpulse {name}` output")
        _assert_clean(repr(env.settings) + str(env.settings), "Settings repr")
        for path in (own.root / "clickhouse").glob("*.xml"):
            _assert_clean(path.read_text(), f"ClickHouse config {path.name}")
        wait_for(lambda: not bad.alive(), 5, "bad worker stopped")
    finally:
        own.stop()
