"""The risk learning stream offline: examples produced at the label join, learned by every
worker in stream order, duplicates skipped, checkpoints restored and replayed after."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from finpulse.config.settings import Settings
from finpulse.models.learning import ExampleBatch, decode_batch, encode_batch
from finpulse.models.risk import SUPERVISED_NAMES
from finpulse.sinks.checkpoints import MemoryCheckpoints, checkpoint_row
from finpulse.sinks.tables import MODEL_CHECKPOINTS_TABLE
from finpulse.streams.core.batch import BatchOutput, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import FEEDBACK, RISK_EXAMPLES, TRANSACTIONS
from finpulse.streams.stages.risk import EXAMPLE_SCHEMA, STATE_NAME, RiskModels, RiskStage
from finpulse.streams.worker.pipeline import Pipeline
from tests.factories import encode, feedback, transaction

T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def settings(**over: Any) -> Settings:
    return Settings(restore_model_checkpoints=False, **over)


class Worker:
    """One worker's risk stage on the input partitions it owns; the broker's part (the
    learning stream) is a list the test passes around."""

    def __init__(self, store: MemoryCheckpoints | None = None, **over: Any) -> None:
        self.stage = RiskStage(settings(**over), MemoryState(STATE_NAME), checkpoints=store)
        self.pipeline = Pipeline(settings(), lambda s, st: (self.stage,), learn_in_process=False)
        self.offsets: dict[tuple[str, int], itertools.count[int]] = {}

    def feed(self, topic: str, partition: int, events: list[dict[str, Any]]) -> BatchOutput:
        kind = "transaction" if topic == TRANSACTIONS else "feedback"
        offsets = self.offsets.setdefault((topic, partition), itertools.count())
        raws = [RawRecord(topic, partition, next(offsets), encode(e)) for e in events]
        return self.pipeline.process(kind, raws)

    def learn(self, stream: list[Outgoing]) -> BatchOutput:
        """Learn the stream from the stage's position on (as the learning feed does)."""
        out = BatchOutput()
        for offset in range(self.stage.learning_offset(), len(stream)):
            self.stage.learn(offset, stream[offset].value, out)
        return out

    def probe(self) -> list[float]:
        X = np.linspace(-1.0, 2.0, 6 * len(SUPERVISED_NAMES)).reshape(6, -1)
        return [float(p) for p in self.stage.m.model.predict_labelled(X)]


def txns(prefix: str, n: int) -> list[dict[str, Any]]:
    return [
        transaction(
            event_id=f"{prefix}-{i}",
            customer_id=f"{prefix}-c{i % 4}",
            ts=(T0 + timedelta(seconds=30 * i)).isoformat(),
            amount=50.0 + 700.0 * (i % 5 == 0) + i,
        )
        for i in range(n)
    ]


def labels(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        feedback(
            ref_event_id=e["event_id"],
            customer_id=e["customer_id"],
            kind="fraud_confirmed" if i % 5 == 0 else "fraud_cleared",
            ts=(T0 + timedelta(hours=2)).isoformat(),
            value=None,
        )
        for i, e in enumerate(events)
    ]


def examples(out: BatchOutput) -> list[Outgoing]:
    return [m for m in out.messages if m.topic == RISK_EXAMPLES]


def two_workers_and_their_stream(**over: Any) -> tuple[Worker, Worker, list[Outgoing]]:
    """Workers a (partition 0) and b (partition 1) join their own labels; the stream holds
    their example records interleaved, as the broker would order them."""
    a, b = Worker(**over), Worker(**over)
    ta, tb = txns("a", 20), txns("b", 20)
    a.feed(TRANSACTIONS, 0, ta)
    b.feed(TRANSACTIONS, 1, tb)
    la, lb = labels(ta), labels(tb)
    stream: list[Outgoing] = []
    for k in range(0, 20, 5):
        stream += examples(a.feed(FEEDBACK, 0, la[k : k + 5]))
        stream += examples(b.feed(FEEDBACK, 1, lb[k : k + 5]))
    return a, b, stream


def test_the_join_produces_one_example_record_and_learns_nothing_itself():
    a = Worker()
    events = txns("a", 6)
    a.feed(TRANSACTIONS, 0, events)
    out = a.feed(FEEDBACK, 0, labels(events))
    (record,) = examples(out)
    batch = decode_batch(record.value).examples
    assert [(e.source_partition, e.source_offset, e.event_id) for e in batch] == [
        (0, k, f"a-{k}") for k in range(6)
    ]
    assert [e.label for e in batch] == [1.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert record.key == f"{FEEDBACK}/0/0".encode()
    assert a.stage.m.model.n_learned == 0 and a.stage.counts["labels"] == 6


def test_workers_that_learn_one_stream_hold_the_same_supervised_part():
    a, b, stream = two_workers_and_their_stream()
    assert len(stream) == 8
    a.learn(stream)
    b.learn(stream)
    assert a.stage.m.model.n_learned == b.stage.m.model.n_learned == 40
    assert a.probe() == b.probe()
    # each estimated the label sampling rate from its own half of the traffic
    assert a.stage.m.model.n_joined == b.stage.m.model.n_joined == [16, 4]


def test_a_duplicate_example_is_learned_once():
    a, _, stream = two_workers_and_their_stream()
    a.learn(stream)
    before = a.probe()
    # a crash re-ran worker a's second label batch: its record is on the stream again,
    # with one example that is new
    rerun = decode_batch(stream[2].value).examples
    assert {e.source_partition for e in rerun} == {0}
    a.stage.learn(len(stream), stream[2].value, BatchOutput())
    assert a.stage.counts["examples_duplicate"] == 5 and a.probe() == before
    assert a.stage.learning_offset() == len(stream) + 1


def test_an_invalid_record_is_counted_and_the_stream_goes_on(caplog):
    a, _, stream = two_workers_and_their_stream()
    with caplog.at_level("ERROR"):
        a.stage.learn(0, b"\xc1 not msgpack", BatchOutput())
    assert a.stage.counts["examples_invalid"] == 1 and "not an example batch" in caplog.text
    for offset, record in enumerate(stream, start=1):
        a.stage.learn(offset, record.value, BatchOutput())
    assert a.stage.m.model.n_learned == 40


def test_a_new_worker_restores_the_checkpoint_and_replays_the_stream_after_it():
    a, _, stream = two_workers_and_their_stream(risk_checkpoint_every_labels=15)
    # a checkpoints when its labels learned pass 15 and 30 (records 3 and 6: 15 and 30)
    out = a.learn(stream[:7])
    rows = out.rows[MODEL_CHECKPOINTS_TABLE]
    assert [(r[0], r[4]) for r in rows] == [("risk:risk-v1+15:@3", 15), ("risk:risk-v1+30:@6", 30)]
    store = MemoryCheckpoints()
    store.save_row(rows[-1])
    fresh = Worker(store)
    fresh.pipeline.restore_models()
    assert fresh.stage.learning_offset() == 6
    assert fresh.stage.m.model.n_learned == 30
    a.learn(stream)
    fresh.learn(stream)  # replays records 6 and 7 only
    assert fresh.stage.counts["examples_learned"] == 10
    assert fresh.probe() == a.probe()
    assert fresh.stage.m.model.n_learned == 40


def test_a_checkpoint_from_before_the_learning_stream_is_migrated(caplog):
    old = RiskModels(settings())
    old.model.learn_labels(np.zeros((3, len(SUPERVISED_NAMES))), [1, 0, 0])
    old.labels = 3
    del old.position  # as a format-2 pickle has it
    store = MemoryCheckpoints()
    store.save_row(checkpoint_row("risk", "risk-v1+3", 3, {"format": 2, "models": old}))
    fresh = Worker(store)
    with caplog.at_level("INFO"):
        fresh.pipeline.restore_models()
    assert "migrating a risk checkpoint of format 2" in caplog.text
    assert fresh.stage.m.model.n_learned == 3 and fresh.stage.learning_offset() == 0
    assert fresh.stage.m.model.n_joined == [2, 1]


def test_a_format_3_checkpoint_loads_with_its_highest_source_offsets_as_floors():
    a, _, stream = two_workers_and_their_stream(risk_checkpoint_every_labels=15)
    a.learn(stream[:3])
    old = a.stage.m
    highest = {p: max(r.above) for p, r in old.position.sources.items()}
    # the previous release pickled the highest source offset learned per partition
    old.position.__dict__["sources"] = highest
    store = MemoryCheckpoints()
    store.save_row(checkpoint_row("risk", "risk-v1+15", 15, {"format": 3, "models": old}))
    fresh = Worker(store)
    fresh.pipeline.restore_models()
    assert fresh.stage.learning_offset() == 3 and fresh.stage.m.model.n_learned == 15
    assert {p: r.floor for p, r in fresh.stage.m.position.sources.items()} == highest
    fresh.learn(stream)
    assert fresh.stage.counts["examples_learned"] == 25


def test_example_batches_of_another_schema_are_skipped_and_unversioned_ones_learned():
    a, _, stream = two_workers_and_their_stream()
    batch = decode_batch(stream[0].value)
    assert batch.schema == EXAMPLE_SCHEMA
    foreign = encode_batch(ExampleBatch(batch.examples, schema="other-inputs"))
    a.stage.learn(0, foreign, BatchOutput())
    assert a.stage.counts["examples_other_schema"] == 5 and a.stage.m.model.n_learned == 0
    assert a.stage.learning_offset() == 1  # passed over
    unversioned = encode_batch(ExampleBatch(batch.examples))  # the previous release's
    a.stage.learn(1, unversioned, BatchOutput())
    assert a.stage.m.model.n_learned == 5  # the inputs have not changed since


def test_offline_the_pipeline_learns_the_examples_at_once():
    stage = RiskStage(settings(), MemoryState(STATE_NAME))
    pipeline = Pipeline(settings(), lambda s, st: (stage,))  # learn_in_process by default
    events = txns("a", 10)
    pipeline.process(
        "transaction", [RawRecord(TRANSACTIONS, 0, i, encode(e)) for i, e in enumerate(events)]
    )
    out = pipeline.process(
        "feedback", [RawRecord(FEEDBACK, 0, i, encode(e)) for i, e in enumerate(labels(events))]
    )
    assert examples(out) == []  # learned, not published
    assert stage.m.model.n_learned == 10 and stage.learning_offset() == 1


def test_offline_a_learning_record_no_stage_learns_is_an_error():
    class Wrapped:  # a stage wrapper that hides the learner
        def __init__(self, inner: RiskStage) -> None:
            self.inner, self.name, self.kinds = inner, inner.name, inner.kinds
            self.state_names = inner.state_names

        def process(self, kind: str, batch: Any, out: BatchOutput) -> None:
            self.inner.process(kind, batch, out)

    wrapped = Wrapped(RiskStage(settings(), MemoryState(STATE_NAME)))
    pipeline = Pipeline(settings(), lambda s, st: (wrapped,))
    events = txns("a", 3)
    pipeline.process(
        "transaction", [RawRecord(TRANSACTIONS, 0, i, encode(e)) for i, e in enumerate(events)]
    )
    with pytest.raises(RuntimeError, match="no stage of this pipeline learns"):
        pipeline.process("feedback", [RawRecord(FEEDBACK, 0, 0, encode(labels(events)[0]))])
