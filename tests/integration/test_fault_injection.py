"""Fault injection on real services, on Apache Kafka and on Tansu, each ending with an exact
count reconciliation: broker restarted mid-stream, worker SIGKILLed with dead letters, a
worker killed while ClickHouse is down, a second worker joining and leaving mid-stream
(rebalances under load)."""

from __future__ import annotations

import time

import pytest

from finpulse.config.settings import Settings
from finpulse.streams.core.topics import TRANSACTIONS, create_topics
from finpulse.streams.local.durable_storage import TANSU_STORAGE, SeaweedS3
from finpulse.streams.local.stack import LocalStack, free_port
from finpulse.streams.tools.reconcile import Reconciliation, wait_reconciled
from tests import factories as f
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

MALFORMED = [
    b"{not json",
    b"\xff\xfe",
    f.encode(f.transaction(amount=-1)),
    f.encode(f.transaction(channel="fax")),
    b"[]",
]


def _mixed(n_valid: int, every: int = 50) -> tuple[list[bytes], int]:
    """``n_valid`` valid transactions with a malformed payload after every ``every``."""
    values: list[bytes] = []
    bad = 0
    for i in range(n_valid):
        values.append(f.encode(f.transaction()))
        if i % every == every - 1:
            values.append(MALFORMED[bad % len(MALFORMED)])
            bad += 1
    return values, bad


def _reconciled(env, produced: int, timeout_s: float = 90.0) -> Reconciliation:
    client = env.client()
    try:
        return wait_reconciled(client, env.settings.clickhouse_database, produced, timeout_s)
    finally:
        client.close()


def _durable_broker(env, tmp_path) -> tuple[LocalStack, SeaweedS3 | None]:
    """A broker whose records survive its restart: Kafka's own disk log; for Tansu (memory
    storage by default) a second Tansu on S3 storage (SeaweedFS)."""
    if env.broker.broker_kind == "kafka":
        return env.broker, None
    s3 = SeaweedS3(tmp_path / "s3").start()
    broker = LocalStack(
        Settings(data_dir=tmp_path / "durable", local_broker_port=free_port()),
        broker_storage=TANSU_STORAGE,
        broker_env=s3.tansu_env(),
    )
    broker.start_broker()
    env.settings = env.settings.model_copy(update={"broker_url": broker.broker_url})
    create_topics(env.settings)
    return broker, s3


def test_broker_restart_mid_stream_every_event_accounted_for(env, tmp_path):
    broker, s3 = _durable_broker(env, tmp_path)
    try:
        worker = env.worker()
        first, bad_first = _mixed(3000)
        env.produce(TRANSACTIONS, first)
        wait_for(lambda: env.row_count("transactions") >= 300, 60, "some rows before the fault")

        broker.stop_service("broker")  # mid-stream: part of the first wave is unprocessed
        broker.start_broker()
        second, bad_second = _mixed(1500)
        env.produce(TRANSACTIONS, second)

        result = _reconciled(env, len(first) + len(second))
        assert result.ok, result.issues()
        assert result.deadletters == bad_first + bad_second
        assert result.rows["transactions"] == 4500
        assert worker.alive(), "the worker must ride out the broker restart"
    finally:
        for w in env.workers:  # while their broker is still up, so they stop cleanly
            w.stop(timeout_s=10)
        broker.stop()
        if s3 is not None:
            s3.stop()


def test_worker_sigkill_keeps_rows_and_deadletter_counts_exact(env):
    first = env.worker(name="first")
    wave1, bad1 = _mixed(4000, every=20)
    env.produce(TRANSACTIONS, wave1)
    wait_for(lambda: env.row_count("transactions") >= 500, 60, "some rows written")
    first.kill()  # SIGKILL: offsets of processed batches may not be committed
    wave2, bad2 = _mixed(2000, every=20)
    env.produce(TRANSACTIONS, wave2)
    second = env.worker(name="second")

    result = _reconciled(env, len(wave1) + len(wave2))
    assert result.ok, result.issues()
    assert result.rows["transactions"] == 6000
    assert result.deadletters == bad1 + bad2  # re-delivered dead letters collapse to one
    # The second worker handled at least everything produced after the kill (plus whatever
    # the first had not committed); its stats file is written once a second.
    second.wait_for(
        lambda s: s["processed"] + s["deadletters"] >= len(wave2), 15, "second worker counters"
    )


def test_sigkill_while_clickhouse_is_down_commits_nothing_undelivered(env, own_clickhouse):
    # Batches are computed ahead of their delivery; none may be committed before it lands.
    own = own_clickhouse
    try:
        first = env.worker(name="first")
        wave1, bad1 = _mixed(1000, every=25)
        env.produce(TRANSACTIONS, wave1)
        first.wait_for(lambda s: s["processed"] >= 1000, 60, "first wave delivered")

        own.stop_service("clickhouse")
        wave2, bad2 = _mixed(3000, every=25)
        env.produce(TRANSACTIONS, wave2)
        # Blocked longer than Faust's commit interval (2.8 s): a wrongly acked batch would be
        # committed by now.
        first.wait_for(lambda s: s["sink_retries"] >= 7, 30, "deliveries blocked > 3 s")
        first.kill()  # with batches computed but undelivered
        own.start_clickhouse()
        env.worker(name="second")

        result = _reconciled(env, len(wave1) + len(wave2))
        assert result.ok, result.issues()
        assert result.rows["transactions"] == 4000
        assert result.deadletters == bad1 + bad2
    finally:
        own.stop()


def test_a_second_worker_joining_and_leaving_mid_stream_loses_nothing(env):
    first = env.worker(name="first")
    values, bad = _mixed(1000)
    produced, malformed = len(values), bad
    env.produce(TRANSACTIONS, values)
    first.wait_for(lambda s: s["processed"] > 0, 60, "first worker processing")
    second = env.worker(name="second")  # joins: the group rebalances while events flow
    deadline = time.monotonic() + 90
    while not second.stats().get("processed"):  # keep producing through the rebalance
        assert time.monotonic() < deadline, "the second worker never processed an event"
        values, bad = _mixed(100)
        env.produce(TRANSACTIONS, values)
        produced, malformed = produced + len(values), malformed + bad
    values, bad = _mixed(1000)  # and after it, to partitions of both workers
    env.produce(TRANSACTIONS, values)
    produced, malformed = produced + len(values), malformed + bad
    second.stop()  # leaves: the first takes its partitions back while events flow
    values, bad = _mixed(1000)
    env.produce(TRANSACTIONS, values)
    produced, malformed = produced + len(values), malformed + bad

    result = _reconciled(env, produced)
    assert result.ok, result.issues()
    assert result.deadletters == malformed
    assert first.alive()

    # Re-delivery after the rebalance may process an event twice (absorbed by idempotent
    # rows); it must never process fewer than were produced.
    def counted() -> int:
        return sum(
            s.get("processed", 0) + s.get("deadletters", 0) for s in (first.stats(), second.stats())
        )

    wait_for(lambda: counted() >= produced, 15, f"both workers' counters to reach {produced}")
