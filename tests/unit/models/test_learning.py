"""Learned positions of a learning stream: duplicates by source position, in order."""

from __future__ import annotations

import pytest

from finpulse.models import learning as ln
from finpulse.models.learning import Example, ExampleBatch, LearnedPosition


def ex(partition: int, offset: int) -> Example:
    return Example(partition, offset, f"t-{partition}-{offset}", 0.0, b"")


def test_fresh_keeps_new_source_offsets_per_partition_in_order():
    pos = LearnedPosition()
    pos.advance(4, [ex(0, 10), ex(1, 3)])
    batch = [ex(0, 9), ex(0, 10), ex(1, 4), ex(0, 11), ex(1, 4), ex(2, 0)]
    assert [(e.source_partition, e.source_offset) for e in pos.fresh(batch)] == [
        (1, 4),
        (0, 11),
        (2, 0),
    ]
    assert pos.next_offset == 5 and pos.sources == {0: 10, 1: 3}  # fresh() changes nothing


def test_advance_never_moves_back():
    pos = LearnedPosition()
    pos.advance(7, [ex(0, 5)])
    pos.advance(3, [ex(0, 2)])
    assert pos == pos and (pos.next_offset, pos.sources) == (8, {0: 5})


def test_dict_inputs_round_trip_and_bad_values_are_a_clear_error():
    batch = ExampleBatch([Example(0, 1, "i-1", 4.0, {"wait_log": 0.5}, 123, 0.25)])
    assert ln.decode_batch(ln.encode_batch(batch)) == batch
    with pytest.raises(ln.InvalidExamples, match="not an example batch"):
        ln.decode_batch(None)
    with pytest.raises(ln.InvalidExamples):
        ln.decode_batch(ln.encode_batch(ExampleBatch([]))[:-1] + b"\x01")
