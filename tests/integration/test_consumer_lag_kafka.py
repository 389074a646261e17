"""Consumer lag (finpulse.streams.worker.lag) of a real worker on real Apache Kafka: a paused
worker's recorded lag rises to about what was produced meanwhile and falls back to 0 once it
resumes.

Kafka only: the rows' ListOffsets ``end_offset`` is checked against the fetch responses' high
watermark, which Tansu gets wrong (its end offset is that of the last record batch's first
record). The broker is started here, one JVM, so the test does not depend on ``env``'s broker.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finpulse.config.settings import Settings, local_stack_settings
from finpulse.sinks.clickhouse import make_client
from finpulse.sinks.migrate import migrate
from finpulse.streams.cli import main
from finpulse.streams.core.topics import TRANSACTIONS, create_topics
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.worker.process import WorkerProcess, settings_env
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

WORKER = "lag-test"
N, M = 500, 3000  # events before the pause, events produced while paused
PAUSE_MAX_S = 5.0  # below the session timeout (6 s): no rebalance


@pytest.fixture
def kafka_settings(clickhouse: LocalStack, tmp_path: Path) -> Iterator[Settings]:
    broker = LocalStack(
        Settings(data_dir=tmp_path, local_broker_port=free_port(), local_broker="kafka")
    )
    broker.start_broker()  # raises (the test fails) when Kafka cannot start
    try:
        settings = local_stack_settings(
            local_broker="kafka",
            data_dir=tmp_path,
            broker_url=broker.broker_url,
            clickhouse_url=clickhouse.clickhouse_url,
            clickhouse_database=f"lag_{int(time.time())}",
            topic_partitions=1,
            stream_batch_max=200,  # many batches: the backlog drains over several commits
            lag_interval_s=0.5,
            worker_id=WORKER,
            web_port=free_port(),
        )
        create_topics(settings)
        migrate(settings)
        yield settings
    finally:
        broker.stop()


def produce(settings: Settings, count: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=settings.broker_bootstrap, acks="all", linger_ms=5)
    for _ in range(count):
        ev = f.transaction()
        producer.send(TRANSACTIONS, value=f.encode(ev), key=ev["customer_id"].encode())
    producer.flush()
    producer.close()


def lag_rows(settings: Settings, since: float = 0.0) -> list[dict[str, Any]]:
    client = make_client(settings)
    try:
        res = client.query(
            "SELECT at, next_offset, high_watermark, end_offset, lag_events, lag_s, "
            "events_per_s, batch_p99_ms FROM consumer_lag "
            "WHERE worker = %(w)s AND topic = %(t)s AND partition = 0 "
            "AND at >= fromUnixTimestamp64Milli(%(since)s) ORDER BY at",
            parameters={"w": WORKER, "t": TRANSACTIONS, "since": int(since * 1000)},
        )
        return [dict(zip(res.column_names, r, strict=True)) for r in res.result_rows]
    finally:
        client.close()


def backlog_waits(settings: Settings, end: int) -> bool:
    """While the worker is stopped: the broker holds the backlog up to ``end`` (ListOffsets,
    right on Kafka), and the worker's newest ``consumer_lag`` row is older than its interval,
    so on resume its next row is due at once, before it works through the backlog."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.broker_bootstrap, group_id=None)
    try:
        tp = TopicPartition(TRANSACTIONS, 0)
        if consumer.end_offsets([tp])[tp] < end:
            return False
    finally:
        consumer.close()
    client = make_client(settings)
    try:
        idle_ms = client.query(
            "SELECT dateDiff('millisecond', max(at), now64(3)) FROM consumer_lag "
            "WHERE worker = %(w)s",
            parameters={"w": WORKER},
        ).result_rows[0][0]
    finally:
        client.close()
    return bool(idle_ms > settings.lag_interval_s * 1000)


def caught_up_at(settings: Settings, offset: int, since: float = 0.0) -> dict[str, Any] | None:
    rows = lag_rows(settings, since)
    last = rows[-1] if rows else None
    if last and last["next_offset"] == last["high_watermark"] == offset:
        return last
    return None


def test_consumer_lag_of_a_paused_worker_rises_and_drains_on_kafka_only(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = kafka_settings
    worker = WorkerProcess(settings, name="lag").start()
    try:
        produce(settings, N)
        caught = wait_for(lambda: caught_up_at(settings, N), 120, f"the worker at offset {N}")
        assert caught["lag_events"] == 0 and caught["lag_s"] == 0.0
        assert worker.proc is not None
        os.kill(worker.proc.pid, signal.SIGSTOP)
        try:
            produce(settings, M)
            wait_for(
                lambda: backlog_waits(settings, N + M),
                PAUSE_MAX_S,
                f"the backlog to offset {N + M} on the broker, the stopped worker's lag row due",
            )
        finally:
            os.kill(worker.proc.pid, signal.SIGCONT)
        resumed_at = time.time()
        wait_for(
            lambda: caught_up_at(settings, N + M, since=resumed_at),
            60,
            f"the worker back at offset {N + M}",
        )
        after = lag_rows(settings, since=resumed_at - 0.5)
        behind = [r for r in after if r["lag_events"] > 0]
        assert behind, f"no row recorded the backlog: {after}"
        peak = max(r["lag_events"] for r in behind)
        assert 0.8 * M <= peak <= M, (peak, after)
        # event time: the newest fetched event was produced during the pause, the newest
        # processed one before it
        assert max(r["lag_s"] for r in behind) >= 1.0, after
        assert all(r["high_watermark"] == N + M for r in behind)
        final = after[-1]
        assert (final["lag_events"], final["lag_s"]) == (0, 0.0)
        assert any(r["events_per_s"] > 0 and r["batch_p99_ms"] > 0 for r in after)
        # Kafka only: ListOffsets agrees with the fetch responses' high watermark
        answered = [r for r in lag_rows(settings) if r["end_offset"] is not None]
        assert answered and all(r["end_offset"] >= r["high_watermark"] for r in answered)
        assert answered[-1]["end_offset"] == final["high_watermark"]

        # the same from the command line
        for name, value in settings_env(settings).items():
            monkeypatch.setenv(name, value)
        assert main(["status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        (row,) = [r for r in status["rows"] if r["topic"] == TRANSACTIONS]
        assert (row["worker"], row["partition"], row["lag_events"]) == (WORKER, 0, 0)
        assert main(["status"]) == 0
        table = capsys.readouterr().out
        assert table.startswith("worker") and WORKER in table
    finally:
        worker.stop(timeout_s=15)
