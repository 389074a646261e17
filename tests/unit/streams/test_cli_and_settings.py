"""The command line and the settings, offline."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from finpulse.config.settings import Settings
from finpulse.streams.cli import main
from finpulse.streams.worker.process import settings_env


def test_schema_command_prints_every_json_schema(capsys):
    assert main(["schema"]) == 0
    schemas = json.loads(capsys.readouterr().out)
    assert set(schemas) == {
        "transaction",
        "interaction",
        "feedback",
        "channel_minute",
        "model_detection",
        "model_input_minute",
        "deadletter",
        "alert",
    }
    assert "severity" in schemas["alert"]["required"]
    tx = schemas["transaction"]
    assert tx["additionalProperties"] is False
    assert {"event_id", "ts", "customer_id", "amount", "currency"} <= set(tx["required"])


def test_schema_policy_prints_the_policy_files_schema(capsys):
    assert main(["schema", "policy"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "finpulse policy" and "Condition" in schema["$defs"]
    assert schema["properties"]["rules"]["items"] == {"$ref": "#/$defs/Rule"}


def test_settings_come_from_finpulse_env(monkeypatch):
    monkeypatch.setenv("FINPULSE_TOPIC_PARTITIONS", "8")
    monkeypatch.setenv("FINPULSE_CLICKHOUSE_PASSWORD", "s3cret")
    s = Settings()
    assert s.topic_partitions == 8
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())
    assert s.clickhouse_password.get_secret_value() == "s3cret"


def test_settings_are_frozen_and_validated():
    s = Settings()
    with pytest.raises(ValidationError):
        s.topic_partitions = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Settings(clickhouse_database="drop table;")
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_child_process_env_round_trips_settings(monkeypatch):
    s = Settings(topic_partitions=3, clickhouse_database="x1", sink_max_rows=7)
    for key, value in settings_env(s).items():
        monkeypatch.setenv(key, value)
    assert Settings() == s


def test_worker_logging_keeps_its_level_without_the_spinner() -> None:
    """Faust's spinner would lower the root logger to DEBUG (costly debug records)."""
    import logging

    from finpulse.streams.worker.launch import make_worker

    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    try:
        make_worker(Settings(), "warning")._setup_logging()
        assert root.level == logging.WARNING
        assert not logging.getLogger("aiokafka").isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(before[0])
        root.handlers[:] = before[1]


def test_worker_tuning_sets_the_gil_switch_interval() -> None:
    import gc
    import sys

    from finpulse.streams.worker.launch import tune_gc

    before = (sys.getswitchinterval(), gc.get_threshold())
    try:
        tune_gc(Settings(gil_switch_interval_s=0.002))
        assert abs(sys.getswitchinterval() - 0.002) < 1e-9
        assert gc.get_threshold()[0] == Settings().gc_threshold0
    finally:
        sys.setswitchinterval(before[0])
        gc.set_threshold(*before[1])


def test_status_without_clickhouse_exits_2_with_a_message(capsys, monkeypatch):
    from finpulse.streams.local.stack import free_port

    monkeypatch.setenv("FINPULSE_CLICKHOUSE_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["status", "--json"]) == 2
    assert capsys.readouterr().err.startswith("finpulse: status: ")


def test_lag_settings_defaults():
    s = Settings()
    assert s.lag_interval_s == 5.0 and s.worker_id is None
    with pytest.raises(ValidationError):
        Settings(lag_interval_s=0)
