"""Publish many messages as record batches, one future per batch instead of per message.

``AIOKafkaProducer.send`` queues one message and returns a future for it; when the broker
acknowledges a batch, the producer resolves every message's future, and each resolution
schedules the callbacks of whoever awaits it. Faust's ``Producer.send`` adds its own
bookkeeping per call. For a flush's changelog (thousands of records a second at saturation)
that per-message path was costly in a saturated worker (docs/benchmarks.md: Faust's ``send``,
aiokafka's ``MessageBatch.done``, the event loop's ``call_soon``).

:func:`publish_batched` groups the messages by partition (a message without one gets the
producer's partitioner, as ``send`` would) and fills aiokafka record batches
(``create_batch``, ``send_batch``) with them, in order. Partitions are submitted
concurrently; within one, batches are submitted in order (aiokafka queues a partition's
batches and sends them in turn). An empty batch takes any message, so one larger than the
batch size goes alone in its own batch, as ``send`` would put it.

>>> from finpulse.streams.core.batch import Outgoing
>>> groups = by_partition([Outgoing("t", b"a", b"1", 0), Outgoing("t", b"b", b"2", 1),
...                        Outgoing("t", b"c", b"3", 0)], lambda m: 9)
>>> {tp: [m.key for m in ms] for tp, ms in groups.items()}
{('t', 0): [b'a', b'c'], ('t', 1): [b'b']}
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from finpulse.streams.core.batch import Outgoing
from finpulse.streams.worker.faust_adapter import default_partition, wait_on_metadata

TopicPartition = tuple[str, int]


def by_partition(
    messages: Sequence[Outgoing], partition_of: Callable[[Outgoing], int]
) -> dict[tuple[str, int], list[Outgoing]]:
    """``messages`` by (topic, partition), in order; ``partition_of`` for those without one."""
    groups: dict[tuple[str, int], list[Outgoing]] = {}
    for m in messages:
        partition = m.partition if m.partition is not None else partition_of(m)
        groups.setdefault((m.topic, partition), []).append(m)
    return groups


async def publish_batched(producer: Any, messages: Sequence[Outgoing]) -> dict[TopicPartition, int]:
    """Publish ``messages`` with the aiokafka ``producer``; returns once the broker has
    acknowledged all of them (raises as ``send`` would if any failed), with the offset of
    the last message on each (topic, partition)."""
    if not messages:
        return {}
    for topic in {m.topic for m in messages if m.partition is None}:
        await wait_on_metadata(producer, topic)

    def partition_of(m: Outgoing) -> int:
        return default_partition(producer, m.topic, m.key, m.value)

    groups = by_partition(messages, partition_of)
    submitted = await asyncio.gather(
        *(_submit(producer, topic, p, ms) for (topic, p), ms in groups.items())
    )
    acked = await asyncio.gather(*(f for batches in submitted for _, f in batches))
    last: dict[TopicPartition, int] = {}
    i = 0
    for tp, batches in zip(groups, submitted, strict=True):
        i += len(batches)
        last[tp] = acked[i - 1].offset + batches[-1][0] - 1  # the batch's base offset + its size
    return last


async def _submit(
    producer: Any, topic: str, partition: int, messages: list[Outgoing]
) -> list[tuple[int, asyncio.Future[Any]]]:
    """Queue one partition's messages in order; each batch's size and future."""
    batches: list[tuple[int, asyncio.Future[Any]]] = []
    batch, n = producer.create_batch(), 0
    for m in messages:
        if batch.append(key=m.key, value=m.value, timestamp=None) is None:  # full
            batches.append((n, await producer.send_batch(batch, topic, partition=partition)))
            batch, n = producer.create_batch(), 0
            batch.append(key=m.key, value=m.value, timestamp=None)  # an empty batch takes it
        n += 1
    batches.append((n, await producer.send_batch(batch, topic, partition=partition)))
    return batches
