"""The learning feed's reading of fetches (finpulse.streams.worker.learning_feed): gaps the
stream's retention left, a recreated stream and records that cannot be learned are logged,
counted and passed; the risk stage learns what remains. The broker's part (fetched records,
the consumer's position, the high watermark) is given as plain values."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import numpy as np

from finpulse.config.settings import Settings
from finpulse.models.learning import Example, ExampleBatch, encode_batch
from finpulse.models.packing import pack_rows
from finpulse.models.risk import SUPERVISED_NAMES
from finpulse.streams.core.state import MemoryState
from finpulse.streams.stages.risk import EXAMPLE_SCHEMA, STATE_NAME, RiskStage
from finpulse.streams.worker.learning_feed import LearningFeed

SETTINGS = Settings(restore_model_checkpoints=False)


def record(offset: int, *labels_at: int, inputs: bytes | None = None) -> Any:
    """A fetched learning-stream record whose examples' labels sit at source offsets
    ``labels_at`` of feedback partition 0."""
    row = pack_rows(np.ones((1, len(SUPERVISED_NAMES))))[0] if inputs is None else inputs
    examples = [Example(0, o, f"t-{o}", 1.0, row) for o in labels_at]
    return SimpleNamespace(
        offset=offset, value=encode_batch(ExampleBatch(examples, EXAMPLE_SCHEMA))
    )


def feed() -> tuple[LearningFeed, RiskStage, list[Any]]:
    stage = RiskStage(SETTINGS, MemoryState(STATE_NAME))
    submitted: list[Any] = []
    return LearningFeed(SETTINGS, stage, submitted.append, None), stage, submitted


def test_records_in_order_are_learned_and_the_feed_catches_up_at_the_end():
    f, stage, _ = feed()
    assert f.follow([record(0, 1), record(1, 2)], 2, 3) is None
    assert stage.m.model.n_learned == 2 and not f.caught_up.is_set()
    f.follow([record(2, 3)], 3, 3)
    assert stage.m.model.n_learned == 3 and f.caught_up.is_set() and not f.counts


def test_a_gap_the_retention_left_is_logged_counted_and_learning_goes_on_after_it(caplog):
    f, stage, _ = feed()
    stage.move_learning_to(3)  # as a checkpoint restored it
    with caplog.at_level(logging.ERROR):
        f.follow([record(8, 10), record(9, 11)], 10, 10)  # the consumer reset to the first
    assert "offsets 3 to 7 are no longer on the stream" in caplog.text
    assert "5 records this worker's models never learned" in caplog.text
    assert f.counts == {"records_lost_to_retention": 5}
    assert stage.m.model.n_learned == 2 and stage.learning_offset() == 10 and f.caught_up.is_set()


def test_a_stream_whose_records_all_expired_is_a_gap_and_the_feed_catches_up(caplog):
    f, stage, _ = feed()
    stage.move_learning_to(2)
    with caplog.at_level(logging.ERROR):
        f.follow([], 7, 7)  # nothing left: the consumer's position moved to the end
    assert f.counts == {"records_lost_to_retention": 5} and stage.learning_offset() == 7
    assert f.caught_up.is_set()


def test_a_stream_shorter_than_the_position_was_recreated_and_is_learned_from_its_start(caplog):
    f, stage, _ = feed()
    stage.move_learning_to(40)
    with caplog.at_level(logging.ERROR):
        assert f.follow([], 40, 2) == 0  # read again from offset 0
    assert "ends at offset 2, before the position 40" in caplog.text
    assert f.counts == {"stream_restarts": 1} and stage.learning_offset() == 0
    f.follow([record(0, 1), record(1, 2)], 2, 2)
    assert stage.m.model.n_learned == 2 and f.caught_up.is_set()


def test_a_record_that_cannot_be_learned_is_logged_counted_and_passed_over(caplog):
    """Its inputs do not unpack: the stage raises; the feed goes on (no stall), and every
    worker passes the same record, so their models stay equal."""
    f, stage, _ = feed()
    with caplog.at_level(logging.ERROR):
        f.follow([record(0, 1), record(1, 2, inputs=b"\x07"), record(2, 3)], 3, 3)
    assert "offset 1 cannot be learned; passed over" in caplog.text
    assert f.counts == {"records_unlearnable": 1}
    assert stage.m.model.n_learned == 2 and stage.learning_offset() == 3 and f.caught_up.is_set()


def test_records_before_the_position_are_learned_once():
    f, stage, _ = feed()
    f.follow([record(0, 1), record(1, 2)], 2, 2)
    f.follow([record(1, 2), record(2, 3)], 3, 3)  # a fetch from before a reconnect
    assert stage.m.model.n_learned == 3 and not f.counts


def test_checkpoint_rows_learning_produces_go_to_the_committer():
    stage = RiskStage(Settings(restore_model_checkpoints=False, risk_checkpoint_every_labels=2),
                      MemoryState(STATE_NAME))  # fmt: skip
    submitted: list[Any] = []
    f = LearningFeed(SETTINGS, stage, submitted.append, None)
    f.follow([record(0, 1), record(1, 2)], 2, 2)
    (out,) = submitted
    assert [r[0] for rows in out.rows.values() for r in rows] == ["risk:risk-v1+2:@2"]
