"""Kafka's default partitioner (finpulse.streams.core.partitioning), from the hash the worker
has loaded already."""

from __future__ import annotations

import random
import subprocess
import sys

from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from finpulse.streams.core.partitioning import key_partition


def test_partitions_agree_with_kafka_pythons_default_partitioner() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(5000)] + [b"", b"call_center"]
    for partitions in (1, 3, 4, 12):
        for key in keys:
            expected = (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions
            assert key_partition(key, partitions) == expected


def test_a_partition_loads_no_kafka_python() -> None:
    """kafka-python's package parses its protocol schemas on import (seconds on a loaded
    machine); the worker's first batch names partitions and must not pay that."""
    code = (
        "import sys; from finpulse.streams.core.partitioning import key_partition; "
        "key_partition(b'k', 4); print('kafka' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert out.stdout.strip() == b"False"
