"""What a real broker holds from an offset on (finpulse.streams.worker.faust_adapter.first_offsets):
the answer the no-hole check (finpulse.streams.worker.contiguity) trusts before it passes over
offsets, on Apache Kafka and on Tansu."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

from finpulse.streams.core.topics import TRANSACTIONS
from finpulse.streams.worker.app import build_app
from finpulse.streams.worker.faust_adapter import first_offsets
from tests import factories as f
from tests.conftest import Env

pytestmark = pytest.mark.integration


def _produce_to(env: Env, partition: int, n: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=env.settings.broker_bootstrap, acks="all")
    for _ in range(n):
        producer.send(TRANSACTIONS, value=f.encode(f.transaction()), partition=partition)
    producer.flush()
    producer.close()


def test_first_offsets_answers_the_first_record_from_an_offset_or_none_past_the_end(
    env: Env,
) -> None:
    _produce_to(env, 0, 30)
    app = build_app(env.settings)
    p0, p1 = TP(TRANSACTIONS, 0), TP(TRANSACTIONS, 1)

    async def ask() -> dict[TP, int | None]:
        return await first_offsets(app.consumer, {p0: 17, p1: 0})

    assert asyncio.run(ask()) == {p0: 17, p1: None}  # partition 1 holds nothing yet
