"""Session fixtures: a real ClickHouse server, and per test a real broker on a free loopback
port: Apache Kafka and Tansu, every broker-facing test running on both (``broker_kind``).

Integration tests fail (never skip) when a service cannot start: the fixtures raise.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from finpulse.config.settings import Settings, local_stack_settings
from finpulse.sinks.clickhouse import count_rows, make_client
from finpulse.sinks.migrate import migrate
from finpulse.streams.core.topics import create_topics
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.worker.process import WorkerProcess
from tests.waiting import wait_for

_db_ids = itertools.count()


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One real ClickHouse server for the session (databases keep tests apart)."""
    root = tmp_path_factory.mktemp("clickhouse")
    stack = LocalStack(
        Settings(
            data_dir=root,
            local_broker_port=free_port(),
            local_clickhouse_http_port=free_port(),
            local_clickhouse_tcp_port=free_port(),
        )
    )
    stack.start_clickhouse()
    yield stack
    stack.stop()


@dataclass
class Env:
    """A fresh broker, a fresh ClickHouse database and helpers to drive a worker."""

    settings: Settings
    broker: LocalStack
    clickhouse: LocalStack
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(
        self, name: str = "worker", module: str = "finpulse.streams.cli", **overrides: Any
    ) -> WorkerProcess:
        """A started worker process, ``overrides`` on the settings (``module``: what runs
        it with ``python -m``)."""
        # one state directory per worker name (a restarted worker finds its own again)
        state_dir = self.settings.data_dir / f"state-{name}"
        settings = self.settings.model_copy(
            update={"web_port": free_port(), "state_dir": state_dir, **overrides}
        )
        w = WorkerProcess(settings, name=name, module=module)
        self.workers.append(w)
        return w.start()

    def client(self) -> Any:
        return make_client(self.settings)

    def counts(self, *tables: str) -> dict[str, int]:
        client = self.client()
        try:
            return count_rows(client, self.settings.clickhouse_database, tables)
        finally:
            client.close()

    def produce(
        self, topic: str, values: list[bytes], keys: list[bytes | None] | None = None
    ) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            bootstrap_servers=self.settings.broker_bootstrap, acks="all", linger_ms=5
        )
        for i, value in enumerate(values):
            producer.send(topic, value=value, key=keys[i] if keys else None)
        producer.flush()
        producer.close()

    def consume(self, topic: str, count: int, timeout_s: float = 30.0) -> list[Any]:
        """Read ``count`` messages of ``topic`` from the beginning (waits on the count)."""
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=self.settings.broker_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=500,
        )
        seen: list[Any] = []
        deadline = time.monotonic() + timeout_s
        try:
            while len(seen) < count and time.monotonic() < deadline:
                seen.extend(consumer)
        finally:
            consumer.close()
        return seen

    def row_count(self, table: str) -> int:
        """Rows in ``table`` (FINAL), -1 while ClickHouse is unreachable; fails if a worker died."""
        for w in self.workers:
            if w.proc is not None and not w.alive() and not w.stopped_on_purpose:
                raise AssertionError(
                    f"worker died; log {w.log_path}:\n" + w.log_path.read_text()[-3000:]
                )
        try:
            return self.counts(table)[table]
        except Exception:  # ClickHouse down during a fault test
            return -1

    def wait_rows(self, table: str, expected: int, timeout_s: float = 60.0) -> int:
        """Wait until ``table`` (FINAL) holds at least ``expected`` rows; returns the count."""
        wait_for(
            lambda: self.row_count(table) >= expected, timeout_s, f"{expected} rows in {table}"
        )
        return self.row_count(table)


@dataclass
class OwnStack:
    """A broker, topics and a migrated database of a run's own, and the workers started on
    them (:func:`own_stack`)."""

    settings: Settings
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, name: str, **overrides: Any) -> WorkerProcess:
        """A started worker on its own web port, ``overrides`` on the settings."""
        settings = self.settings.model_copy(update={"web_port": free_port(), **overrides})
        self.workers.append(WorkerProcess(settings, name=name).start())
        return self.workers[-1]


@contextlib.contextmanager
def own_stack(
    clickhouse: LocalStack, root: Path, broker_kind: str, db_prefix: str, **overrides: Any
) -> Iterator[OwnStack]:
    """A fresh ``broker_kind`` broker on a free port (its files under ``root / "broker"``), the
    topics created, and a new migrated database on ``clickhouse`` named after ``db_prefix`` and
    ``root``; the settings (data under ``root``, ``overrides`` applied) reach them. On exit the
    workers started and the broker stop."""
    broker = LocalStack(
        Settings(data_dir=root / "broker", local_broker_port=free_port(), local_broker=broker_kind)
    )
    broker.start_broker()
    db = f"{db_prefix}_{root.name.replace('-', '_')}_{os.getpid()}_{int(time.time() * 1000)}"
    stack = OwnStack(
        local_stack_settings(
            local_broker=broker_kind,
            data_dir=root,
            broker_url=broker.broker_url,
            clickhouse_url=clickhouse.clickhouse_url,
            clickhouse_database=db,
            **overrides,
        )
    )
    try:
        create_topics(stack.settings)
        migrate(stack.settings)
        yield stack
    finally:
        for w in stack.workers:
            w.stop(timeout_s=10)
        broker.stop()


BROKERS = ("kafka", "tansu")


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    """The broker a test runs on: each test using ``env`` runs on both. A test that applies
    to one broker only parametrizes this fixture itself and says why."""
    return str(request.param)


@pytest.fixture
def env(clickhouse: LocalStack, tmp_path: Path, broker_kind: str) -> Iterator[Env]:
    """A fresh broker (Apache Kafka on disk, or Tansu in memory), topics created, a new
    migrated database."""
    broker = LocalStack(
        Settings(data_dir=tmp_path, local_broker_port=free_port(), local_broker=broker_kind)
    )
    broker.start_broker()
    settings = local_stack_settings(
        local_broker=broker_kind,
        data_dir=tmp_path,
        broker_url=broker.broker_url,
        clickhouse_url=clickhouse.clickhouse_url,
        clickhouse_database=f"test_{int(time.time())}_{next(_db_ids)}",
        topic_partitions=2,
        stream_batch_within_s=0.05,
        sink_retry_max_s=1.0,
    )
    create_topics(settings)
    migrate(settings)
    e = Env(settings, broker, clickhouse)
    yield e
    for w in e.workers:
        w.stop(timeout_s=10)
    broker.stop()


@pytest.fixture
def own_clickhouse(env: Env, tmp_path: Path) -> Iterator[LocalStack]:
    """A ClickHouse server owned by one test, so it can stop and restart it; ``env`` points
    at it (migrated)."""
    own = LocalStack(
        env.settings.model_copy(
            update={
                "data_dir": tmp_path / "own-ch",
                "local_clickhouse_http_port": free_port(),
                "local_clickhouse_tcp_port": free_port(),
            }
        )
    )
    own.start_clickhouse()
    env.settings = env.settings.model_copy(update={"clickhouse_url": own.clickhouse_url})
    migrate(env.settings)
    yield own
    own.stop()


def loads(message: Any) -> dict[str, Any]:
    return dict(json.loads(message.value))
