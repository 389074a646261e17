"""Which partition a key goes to: Kafka's default partitioner (murmur2 of the key bytes).

The worker names the partition of the messages it re-keys itself (``finpulse.channel_minutes``),
and offline replay places simulated events the way a Kafka producer would; both use this.

>>> key_partition(b"call_center", 4) == key_partition(b"call_center", 4)
True
>>> key_partition(b"c1-000001", 1)
0
"""

from __future__ import annotations


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` among ``partitions`` (as Kafka's Java and Python clients).

    The hash is aiokafka's, which the worker has loaded already: importing kafka-python's
    package parses its protocol schemas (0.8-3 s on a loaded 2-core machine, 2026-12-07),
    and the first batch of a started worker paid that.
    """
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions
