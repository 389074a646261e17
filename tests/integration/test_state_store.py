"""A worker keeps its keyed state in RocksDB on local disk, with the changelog offset each
partition's records reached (finpulse.streams.worker.table_store): once it has stopped, its
state directory holds every table's changelog, the commit log's included, up to the end, so
a restart on the same host reads none of it again.

On Apache Kafka only: the test compares with the changelogs' end offsets, which Tansu
misreports (ListOffsets). The crash-equivalence property runs the same store on both."""

from __future__ import annotations

import pytest
from faust.types import TP

from finpulse.streams.core.topics import INTERACTIONS, TRANSACTIONS
from finpulse.streams.worker.app import build_app
from tests import factories as f
from tests.conftest import Env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("broker_kind", ["kafka"], indirect=True),
]


def _changelog_ends(env: Env) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=env.settings.broker_bootstrap)
    try:
        parts = [
            TopicPartition(t, p)
            for t in consumer.topics()
            if t.endswith("-changelog")
            for p in range(env.settings.topic_partitions)
        ]
        return {(tp.topic, tp.partition): int(o) for tp, o in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def test_a_stopped_worker_has_stored_every_changelog_to_its_end_on_kafka_only(env: Env) -> None:
    worker = env.worker(name="w")
    for topic, events in (
        (TRANSACTIONS, [f.transaction() for _ in range(300)]),
        (INTERACTIONS, [f.interaction() for _ in range(100)]),
    ):
        keys = [e["customer_id"].encode() for e in events]
        env.produce(topic, [f.encode(e) for e in events], keys)
    env.wait_rows("transactions", 300)
    env.wait_rows("interactions", 100)
    worker.stop()
    assert worker.proc is not None and worker.proc.returncode == 0
    # every key was written on one partition only (its events'): what reads rely on
    assert worker.stats()["state_moved_keys"] == {}

    ends = _changelog_ends(env)
    app = build_app(worker.settings)  # the worker's tables on its state directory
    stored: dict[tuple[str, int], int | None] = {}
    for table in app.tables.values():
        topic = table.changelog_topic.get_topic_name()
        for p in range(env.settings.topic_partitions):
            stored[(topic, p)] = table.data.persisted_offset(TP(topic, p))
    written = {tp: end - 1 for tp, end in ends.items() if end > 0}
    assert len({topic for topic, _ in written}) >= 4  # the commit log and the stages' tables
    assert {tp: stored.get(tp) for tp in written} == written
