"""What a real broker holds from an offset on (finpulse.streams.worker.broker_probe, asked
through faust_adapter.held_offsets): the answer the no-hole check
(finpulse.streams.worker.contiguity) trusts before it passes over offsets, on Apache Kafka
and on Tansu, for plain and for transactional producers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from faust.types import TP

from finpulse.streams.core.aiokafka_options import aiokafka_options
from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker.broker_probe import BrokerProbe
from tests import factories as f
from tests.conftest import Env

pytestmark = pytest.mark.integration

P0, P1 = TP(TRANSACTIONS, 0), TP(TRANSACTIONS, 1)


def _probe(env: Env, isolation_level: str = "read_uncommitted") -> BrokerProbe:
    return BrokerProbe(
        aiokafka_options(env.settings),
        lambda: isolation_level,
        fetch_max_wait_ms=env.settings.consumer_fetch_max_wait_ms,
    )


def _produce_to(env: Env, partition: int, n: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=env.settings.broker_bootstrap, acks="all")
    for _ in range(n):
        producer.send(TRANSACTIONS, value=f.encode(f.transaction()), partition=partition)
    producer.flush()
    producer.close()


def test_the_probe_answers_the_records_from_an_offset_or_none_past_the_end(env: Env) -> None:
    _produce_to(env, 0, 30)

    async def ask() -> tuple[list[Any], int]:
        async with _probe(env) as probe:
            answers = [await probe.fetch({P0: 17, P1: 0}), await probe.fetch({P0: 29})]
            return answers, probe.fetches

    (first, again), fetches = asyncio.run(ask())
    assert first[P0].offsets == list(range(17, 30)) and first[P0].high_watermark == 30
    assert first[P1].offsets == []  # partition 1 holds nothing yet
    assert again[P0].offsets == [29] and fetches == 2  # one consumer, asked twice


def _produce_transactions(env: Env, plan: list[tuple[int, bool]]) -> None:
    """One transaction per (records, committed) of ``plan``, to partition 0."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=env.settings.broker_bootstrap,
        transactional_id=f"probe-test-{env.settings.clickhouse_database}",
        enable_idempotence=True,
    )
    producer.init_transactions()
    for records, committed in plan:
        producer.begin_transaction()
        for _ in range(records):
            producer.send(TRANSACTIONS, value=f.encode(f.transaction()), partition=0)
        producer.flush()  # written before the end: an aborted transaction's records too
        if committed:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()


def test_transaction_markers_hold_no_record_and_aborted_records_only_read_uncommitted(
    env: Env,
) -> None:
    # committed 0-4, marker 5, aborted 6-8, marker 9, committed 10-14, marker 15
    _produce_transactions(env, [(5, True), (3, False), (5, True)])

    async def ask(isolation_level: str) -> list[int]:
        async with _probe(env, isolation_level) as probe:
            return (await probe.fetch({P0: 0}))[P0].offsets

    committed = [*range(0, 5), *range(10, 15)]
    uncommitted = sorted([*committed, *range(6, 9)])
    assert asyncio.run(ask("read_uncommitted")) == uncommitted
    # Tansu writes the markers but reports no aborted transaction in its fetch responses:
    # a read_committed consumer is given the aborted records too
    tansu = env.settings.local_broker == "tansu"
    assert asyncio.run(ask("read_committed")) == (uncommitted if tansu else committed)
