"""A worker whose input a transactional producer writes (finpulse.streams.worker.contiguity,
skipped_offsets): every committed transaction leaves a marker at an offset of each partition
it wrote, so the worker's batches cross holes. Every event is stored once, and those holes
are passed over without a question to the broker per batch."""

from __future__ import annotations

from typing import Any

import pytest

from finpulse.streams.core.topics import TRANSACTIONS
from tests import factories as f
from tests.conftest import Env
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

TRANSACTIONS_WRITTEN = 60
EVENTS_PER_TRANSACTION = 20


def _produce_in_transactions(env: Env, aborted_every: int = 0) -> int:
    """Write the transactions (every ``aborted_every``-th aborted); the events committed."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=env.settings.broker_bootstrap,
        transactional_id=f"upstream-{env.settings.clickhouse_database}",
        enable_idempotence=True,
    )
    producer.init_transactions()
    committed = 0
    for n in range(TRANSACTIONS_WRITTEN):
        producer.begin_transaction()
        for _ in range(EVENTS_PER_TRANSACTION):
            event = f.transaction()
            producer.send(TRANSACTIONS, value=f.encode(event), key=event["customer_id"].encode())
        if aborted_every and n % aborted_every == aborted_every - 1:
            producer.abort_transaction()  # its records stay in the log, marked aborted
        else:
            producer.commit_transaction()  # one marker in each partition written
            committed += EVENTS_PER_TRANSACTION
    producer.close()
    return committed


def _one_event_after_all_in_each_partition(env: Env) -> int:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=env.settings.broker_bootstrap)
    partitions = env.settings.topic_partitions
    for p in range(partitions):
        producer.send(TRANSACTIONS, value=f.encode(f.transaction()), partition=p)
    producer.flush()
    producer.close()
    return partitions


def _holes_after(worker: Any, events: int) -> dict[str, Any]:
    def settled() -> dict[str, Any] | None:
        stats = worker.stats()
        return stats if stats.get("processed", 0) >= events else None

    return wait_for(settled, 60, f"{events} events in the worker's stats")


def test_a_transactional_producers_markers_are_passed_over_without_a_question_per_batch(
    env: Env,
) -> None:
    events = TRANSACTIONS_WRITTEN * EVENTS_PER_TRANSACTION
    worker = env.worker()
    wait_for(lambda: worker.stats(), 60, "the worker's first stats")
    _produce_in_transactions(env)  # while the worker follows the topic

    assert env.wait_rows("transactions", events) == events
    stats = _holes_after(worker, events)
    holes, batches = stats.get("holes", {}), stats["batches"]["batch_events"]["n"]
    seen = f"{holes} in {batches} batches"
    # every marker the worker crossed is a hole passed over; each one used to be a question
    assert holes.get("passed", 0) >= TRANSACTIONS_WRITTEN, seen
    assert holes.get("probes", 0) * 10 <= holes["passed"], seen
    assert holes.get("read_again", 0) == 0, seen


@pytest.mark.parametrize("broker_kind", ["kafka"], indirect=True)  # Tansu hands aborted records out
def test_events_of_an_aborted_upstream_transaction_are_never_processed_on_kafka_only(
    env: Env,
) -> None:
    worker = env.worker()
    wait_for(lambda: worker.stats(), 60, "the worker's first stats")
    committed = _produce_in_transactions(env, aborted_every=3)
    assert committed < TRANSACTIONS_WRITTEN * EVENTS_PER_TRANSACTION
    committed += _one_event_after_all_in_each_partition(env)  # read past every aborted one

    assert env.wait_rows("transactions", committed) == committed
    stats = _holes_after(worker, committed)
    # the aborted records lie between the committed ones: the worker passed over them
    assert stats["processed"] == committed, stats.get("holes")
    assert env.row_count("transactions") == committed
