"""The learning feed against a real broker (finpulse.streams.worker.learning_feed): a
record that cannot be learned, a position past the stream's end (a recreated stream) and,
on Apache Kafka, records removed from the stream's head are logged, counted and passed,
and the feed still catches up."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from finpulse.models.learning import Example, ExampleBatch, encode_batch
from finpulse.models.packing import pack_rows
from finpulse.models.risk import SUPERVISED_NAMES
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import RISK_EXAMPLES
from finpulse.streams.stages.risk import EXAMPLE_SCHEMA, STATE_NAME, RiskStage
from finpulse.streams.worker.learning_feed import LearningFeed
from tests.conftest import Env

pytestmark = pytest.mark.integration

CATCH_UP_S = 30.0


def _record(source_offset: int, inputs: bytes | None = None) -> bytes:
    row = pack_rows(np.ones((1, len(SUPERVISED_NAMES))))[0] if inputs is None else inputs
    example = Example(0, source_offset, f"t-{source_offset}", 1.0, row)
    return encode_batch(ExampleBatch([example], EXAMPLE_SCHEMA))


def _follow(env: Env, start: int) -> tuple[RiskStage, LearningFeed]:
    """A risk stage at learning-stream offset ``start`` (as a checkpoint restored it), fed
    until the feed has caught up with the stream's end."""
    settings = env.settings.model_copy(update={"restore_model_checkpoints": False})
    stage = RiskStage(settings, MemoryState(STATE_NAME))
    stage.move_learning_to(start)
    submitted: list[Any] = []
    feed = LearningFeed(settings, stage, submitted.append, None)

    async def run() -> None:
        task = asyncio.ensure_future(feed.run())
        try:
            await asyncio.wait_for(feed.caught_up.wait(), CATCH_UP_S)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    return stage, feed


def test_a_record_that_cannot_be_learned_is_passed_over_and_the_feed_catches_up(env: Env):
    env.produce(RISK_EXAMPLES, [_record(1), _record(2), _record(3, inputs=b"\x07"), _record(4)])
    stage, feed = _follow(env, 0)
    assert feed.counts == {"records_unlearnable": 1}
    assert stage.m.model.n_learned == 3 and stage.learning_offset() == 4


def test_a_position_past_the_streams_end_learns_the_stream_from_its_start(env: Env):
    env.produce(RISK_EXAMPLES, [_record(1), _record(2)])
    stage, feed = _follow(env, 50)  # a checkpoint of a stream since recreated
    assert feed.counts == {"stream_restarts": 1}
    assert stage.m.model.n_learned == 2 and stage.learning_offset() == 2


@pytest.mark.parametrize("broker_kind", ["kafka"], indirect=True)  # Tansu: no DeleteRecords
def test_records_removed_from_the_streams_head_are_counted_as_lost(env: Env):
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    env.produce(RISK_EXAMPLES, [_record(k) for k in range(5)])
    admin = KafkaAdminClient(bootstrap_servers=env.settings.broker_bootstrap)
    try:
        admin.delete_records({TopicPartition(RISK_EXAMPLES, 0): 3})  # as retention would
    finally:
        admin.close()
    stage, feed = _follow(env, 1)  # a checkpoint older than the stream's first record
    assert feed.counts == {"records_lost_to_retention": 2}
    assert stage.m.model.n_learned == 2 and stage.learning_offset() == 5
