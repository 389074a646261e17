"""The pipeline's one re-delivery guard: an event at or below the last offset applied in
its partition (for its kind) reaches no stage, and the guard is keyed state like the
stages' own, so it is committed with them."""

from __future__ import annotations

from typing import Any, ClassVar

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import BatchOutput, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import FEEDBACK, TRANSACTIONS
from finpulse.streams.worker.pipeline import OFFSETS_STATE, Pipeline
from tests import factories as f


class Seen:
    name: ClassVar[str] = "seen"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "feedback"})
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        self.events += [(kind, rec.partition, rec.offset) for _, rec in batch]


def _pipeline() -> tuple[Pipeline, Seen]:
    seen = Seen()
    return Pipeline(Settings(), stages=lambda s, st: (seen,)), seen


def _txns(partition: int, offsets: range) -> list[RawRecord]:
    return [RawRecord(TRANSACTIONS, partition, o, f.encode(f.transaction())) for o in offsets]


def test_a_redelivered_batch_reaches_no_stage_and_yields_no_rows() -> None:
    p, seen = _pipeline()
    p.process("transaction", _txns(0, range(0, 3)))
    again: Any = p.process("transaction", _txns(0, range(1, 5)))  # 1, 2 again; 3, 4 new
    assert seen.events == [("transaction", 0, o) for o in range(5)]
    assert again.valid_count == 2 and p.counts["redelivered_skipped"] == 2
    assert p.offsets.get("0") == {"transaction": 4}


def test_partitions_and_kinds_are_guarded_apart() -> None:
    p, seen = _pipeline()
    p.process("transaction", _txns(0, range(0, 3)))
    p.process("transaction", _txns(1, range(0, 2)))  # partition 1 starts at offset 0
    label = f.encode(f.feedback(kind="fraud_confirmed", ref_event_id="t-x"))
    p.process("feedback", [RawRecord(FEEDBACK, 0, 0, label)])  # another topic, offset 0
    assert len(seen.events) == 6 and p.counts["redelivered_skipped"] == 0
    assert p.offsets.get("0") == {"transaction": 2, "feedback": 0}
    assert [s.name for s in p.states] == [OFFSETS_STATE]
