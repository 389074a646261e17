"""Record-batch publishing against the real broker: every message once, in order, on the
partition that ``send`` would have chosen, also across batch boundaries and for a message
larger than a batch."""

from __future__ import annotations

import asyncio

import pytest
from kafka.partitioner.default import murmur2

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.core.topics import ALERTS, DEADLETTER
from finpulse.streams.worker.batch_publish import publish_batched

pytestmark = pytest.mark.integration

BATCH_BYTES = 16_384  # small batches, so a partition's messages span several


async def _publish(bootstrap: str, messages: list[Outgoing]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=BATCH_BYTES
    )
    await producer.start()
    try:
        await publish_batched(producer, messages)
    finally:
        await producer.stop()


def test_every_message_arrives_once_in_order_on_its_partition(env):
    pad = b"x" * 300
    keyed = [Outgoing(ALERTS, f"alert-{i}".encode(), b"%d|" % i + pad) for i in range(400)]
    placed = [Outgoing(DEADLETTER, f"dl-{i}".encode(), b"%d|" % i + pad, i % 2) for i in range(400)]
    big = Outgoing(DEADLETTER, b"dl-big", b"400|" + b"y" * (BATCH_BYTES * 2), 0)
    after_big = Outgoing(DEADLETTER, b"dl-after", b"401|" + pad, 0)
    asyncio.run(_publish(env.settings.broker_bootstrap, [*keyed, *placed, big, after_big]))

    alerts = env.consume(ALERTS, len(keyed))
    assert sorted(m.key for m in alerts) == sorted(m.key for m in keyed)  # each exactly once
    partitions = env.settings.topic_partitions
    for m in alerts:  # the key's partition, as send() (murmur2, Kafka's default) picks it
        assert m.partition == (murmur2(m.key) & 0x7FFFFFFF) % partitions

    dead = env.consume(DEADLETTER, len(placed) + 2)
    assert len(dead) == len(placed) + 2
    for p in (0, 1):
        order = [int(m.value.split(b"|")[0]) for m in dead if m.partition == p]
        expected = [i for i in range(400) if i % 2 == p] + ([400, 401] if p == 0 else [])
        assert order == expected  # the big message took its turn, and the next one followed
