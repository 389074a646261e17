"""Learned positions of a learning stream: duplicates by exact source position, in any
order; schemas; positions pickled by the previous release."""

from __future__ import annotations

import logging
import pickle

import pytest

from finpulse.models import learning as ln
from finpulse.models.learning import Example, ExampleBatch, LearnedPosition, RecentOffsets


def ex(partition: int, offset: int) -> Example:
    return Example(partition, offset, f"t-{partition}-{offset}", 0.0, b"")


def where(examples: list[Example]) -> list[tuple[int, int]]:
    return [(e.source_partition, e.source_offset) for e in examples]


def test_fresh_keeps_unlearned_source_positions_once_each():
    pos = LearnedPosition()
    pos.advance(4, [ex(0, 10), ex(1, 3)])
    batch = [ex(0, 9), ex(0, 10), ex(1, 4), ex(0, 11), ex(1, 4), ex(2, 0)]
    assert where(pos.fresh(batch)) == [(0, 9), (1, 4), (0, 11), (2, 0)]
    # fresh() changes nothing
    assert pos.next_offset == 5 and (pos.sources[0].above, pos.sources[1].above) == ({10}, {3})


def test_a_rerun_batch_that_reaches_the_stream_after_the_next_one_is_learned():
    """Batch N's publication failed while batch N+1's (same source partition) succeeded;
    the re-run of N comes after N+1 on the stream, and joins a label (offset 12) the first
    run left unmatched. Nothing of it was learned: all of it is learned now; then a second
    copy of N+1 is skipped whole."""
    pos = LearnedPosition()
    batch_n1 = [ex(0, 20), ex(0, 23)]
    batch_n_rerun = [ex(0, 11), ex(0, 12), ex(0, 15)]
    fresh = pos.read("t", 0, ln.encode_batch(ExampleBatch(batch_n1))).fresh
    pos.advance(0, fresh)
    unlearned = pos.read("t", 1, ln.encode_batch(ExampleBatch(batch_n_rerun)))
    assert where(unlearned.fresh) == [(0, 11), (0, 12), (0, 15)] and unlearned.duplicates == 0
    pos.advance(1, unlearned.fresh)
    again = pos.read("t", 2, ln.encode_batch(ExampleBatch([*batch_n1, ex(0, 24)])))
    assert where(again.fresh) == [(0, 24)] and again.duplicates == 2


def test_recent_offsets_stay_bounded_and_forgotten_ones_count_as_learned():
    seen = RecentOffsets(keep=3)
    for offset in range(100, 0, -1):  # newest first: the worst order
        seen.add(offset)
    assert 3 <= len(seen.above) <= 6 and all(o in seen for o in range(1, 101))
    assert 101 not in seen and seen.floor == min(seen.above) - 1


def test_advance_never_moves_back_and_move_to_does():
    pos = LearnedPosition()
    pos.advance(7, [ex(0, 5)])
    pos.advance(3, [ex(0, 2)])
    assert pos.next_offset == 8 and pos.sources[0].above == {2, 5}
    pos.move_to(2)  # e.g. the stream was recreated
    assert pos.next_offset == 2 and pos.learned(ex(0, 5))


def test_a_position_pickled_by_the_previous_release_loads_with_its_highest_as_floor():
    old = LearnedPosition.__new__(LearnedPosition)
    old.__dict__.update(next_offset=12, sources={0: 41, 3: 7})  # the previous attributes
    pos = pickle.loads(pickle.dumps(old))
    assert pos.next_offset == 12 and pos.learned(ex(0, 41)) and not pos.learned(ex(0, 42))
    assert pos.learned(ex(3, 2)) and not pos.learned(ex(1, 0))
    assert pickle.loads(pickle.dumps(pos)) == pos


def test_batches_of_another_schema_are_skipped_counted_and_logged_once(caplog):
    pos = LearnedPosition()
    value = ln.encode_batch(ExampleBatch([ex(0, 1), ex(0, 2)], schema="old"))
    with caplog.at_level(logging.ERROR):
        first = pos.read("finpulse.learning.risk", 0, value, schemas={"new"})
        second = pos.read("finpulse.learning.risk", 1, value, schemas={"new"})
    assert first.foreign == second.foreign == 2 and not first.fresh and not second.fresh
    assert caplog.text.count("schema 'old'") == 1
    mine = ln.encode_batch(ExampleBatch([ex(0, 1)], schema="new"))
    assert where(pos.read("t", 2, mine, schemas={"new"}).fresh) == [(0, 1)]
    assert where(pos.read("t", 2, value).fresh) == [(0, 1), (0, 2)]  # named inputs: any


def test_a_batch_written_before_schemas_decodes_with_none():
    class Unversioned(ln.msgspec.Struct, array_like=True):
        examples: list[Example]

    value = ln.msgspec.msgpack.encode(Unversioned([ex(0, 1)]))
    assert ln.decode_batch(value) == ExampleBatch([ex(0, 1)], schema="")


def test_dict_inputs_round_trip_and_bad_values_are_a_clear_error():
    batch = ExampleBatch([Example(0, 1, "i-1", 4.0, {"wait_log": 0.5}, 123, 0.25)], "s1")
    assert ln.decode_batch(ln.encode_batch(batch)) == batch
    with pytest.raises(ln.InvalidExamples, match="not an example batch"):
        ln.decode_batch(None)
    with pytest.raises(ln.InvalidExamples):
        ln.decode_batch(ln.encode_batch(ExampleBatch([]))[:-1] + b"\x01")
