"""A restarted worker resumes each input partition where its state stopped, whatever the
consumer group's committed offsets say (finpulse.streams.worker.positions).

On Apache Kafka only: the tests rewrite the idle group's offsets as an offset-reset tool
does, which Tansu refuses (a commit from outside the group: UnknownMemberId; joining with
another assignor: InconsistentGroupProtocol). The crash-equivalence property covers the
same path on both brokers."""

from __future__ import annotations

from typing import Any

import pytest

from finpulse.streams.core.topics import TRANSACTIONS
from tests import factories as f
from tests.conftest import Env
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_kind", ["kafka"], indirect=True),
]


def _produce_txns(env: Env, n: int) -> None:
    events = [f.transaction() for _ in range(n)]
    env.produce(
        TRANSACTIONS, [f.encode(e) for e in events], [e["customer_id"].encode() for e in events]
    )


def _commit_group_offsets(env: Env, where: str) -> dict[int, int]:
    """Overwrite the (idle) group's committed offsets of the transactions topic with each
    partition's ``"end"`` or ``"zero"``, as an offset reset tool would."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(
        bootstrap_servers=env.settings.broker_bootstrap,
        group_id=env.settings.app_id,
        enable_auto_commit=False,
    )
    try:
        parts = [TopicPartition(TRANSACTIONS, p) for p in range(env.settings.topic_partitions)]
        consumer.assign(parts)
        ends = consumer.end_offsets(parts) if where == "end" else dict.fromkeys(parts, 0)
        consumer.commit({tp: OffsetAndMetadata(int(o), None, -1) for tp, o in ends.items()})
        return {tp.partition: int(o) for tp, o in ends.items()}
    finally:
        consumer.close()


def _stats(worker: Any) -> dict[str, Any]:
    return dict(worker.stats().get("counts", {}))


def test_committed_offsets_past_the_state_do_not_skip_events_on_kafka_only(env: Env) -> None:
    first = env.worker(name="first")
    _produce_txns(env, 300)
    env.wait_rows("transactions", 300)
    first.stop()
    _produce_txns(env, 300)  # never processed
    _commit_group_offsets(env, "end")  # the group claims they were
    env.worker(name="second")
    assert env.wait_rows("transactions", 600, timeout_s=90) == 600


def test_without_committed_offsets_a_restart_reads_nothing_again_on_kafka_only(env: Env) -> None:
    """The restarted worker's first move waits until a fetch from offset 0 has reached its
    intake (``fetch_before_move``): what it holds below the state's position is not read."""
    first = env.worker(name="first")
    _produce_txns(env, 300)
    env.wait_rows("transactions", 300)
    first.stop()
    _commit_group_offsets(env, "zero")  # as if the worker died before committing any
    _produce_txns(env, 200)
    second = env.worker(name="second", module="tests.integration.fetch_before_move")
    assert env.wait_rows("transactions", 500, timeout_s=90) == 500
    wait_for(lambda: _stats(second).get("valid.transaction", 0) >= 200, 30, "second's stats")
    counts = _stats(second)
    # resumed at the state's position: none of the first 300 was taken and skipped again
    assert counts.get("redelivered_skipped", 0) == 0, counts
    assert counts["valid.transaction"] == 200, counts
