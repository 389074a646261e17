"""Apache Kafka that cannot serve fails fast and clearly: the log tail is in the error.

Separate from test_kafka_broker.py so that its module broker has stopped (one JVM at a time).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.local.kafka import KafkaBroker, fetch_kafka, stop_recorded
from finpulse.streams.local.stack import StackError, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def libs() -> Path:
    return fetch_kafka(cache_dir=Settings().kafka_cache_dir)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_not_ready_within_bound_raises_with_log_tail_and_stops(libs: Path, tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, libs, port=free_port())
    broker.format_storage()
    with pytest.raises(StackError, match=r"did not answer on .* within 0s") as err:
        broker.start(timeout_s=0.3)
    assert "its log:" in str(err.value)  # what it logged in 0.3 s (see the unit tests)
    assert broker.pid is None
    assert not (tmp_path / "kafka.json").exists()


def test_broker_that_exits_raises_with_log_tail(libs: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = KafkaBroker(tmp_path, libs, port=port)
        with pytest.raises(StackError, match=r"exited with \d+ before it served") as err:
            broker.start(timeout_s=60)
    message = str(err.value)
    assert "first error in kafka.log" in message
    assert "Address already in use" in message, message
    assert len(message.splitlines()) <= 1 + 2 * (1 + 3) + 2 * 20


def test_stop_recorded_stops_a_broker_started_elsewhere(libs: Path, tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path, libs, port=free_port()).start()
    pid = broker.pid
    assert pid is not None
    assert stop_recorded(tmp_path) is True
    assert broker._proc is not None and broker._proc.wait(timeout=5) == 143  # SIGTERM exit
    broker.stop()  # reaps the child; nothing left to signal
    assert _gone(pid)
