"""Drive the service stages offline with explicit event times (a fake clock)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.settings import Settings
from finpulse.streams.core.batch import BatchOutput, StageBuilder
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import FEEDBACK, INPUT_TOPICS, INTERACTIONS, TRANSACTIONS
from finpulse.streams.stages.service.stage import ServiceStage
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.loopback import Loopback
from finpulse.streams.worker.pipeline import Pipeline
from tests import factories as f

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
_ids = itertools.count()


def at(**delta: float) -> str:
    """RFC 3339 time ``delta`` after T0, e.g. ``at(minutes=3, seconds=10)``."""
    return (T0 + timedelta(**delta)).isoformat()


class Driver:
    """A pipeline with the default stages, MemoryState, and per-topic offsets."""

    def __init__(self, stages: StageBuilder = default_stages, **settings: Any) -> None:
        values = {
            "satisfaction_checkpoint_every": 0,
            "restore_model_checkpoints": False,  # offline: no ClickHouse to restore from
            "topic_partitions": 2,
            **settings,
        }
        self.settings = Settings(**values)
        self.pipeline = Pipeline(self.settings, stages=stages, state=MemoryState)
        self.loop = Loopback(self.pipeline)  # channel minutes come back to their owner
        self.stage = next(s for s in self.pipeline.stages if isinstance(s, ServiceStage))
        self.offsets: Counter[tuple[str, int]] = Counter()
        self.outputs: list[BatchOutput] = []

    def record(self, topic: str, event: dict[str, Any], partition: int = 0) -> RawRecord:
        offset = self.offsets[(topic, partition)]
        self.offsets[(topic, partition)] += 1
        key = str(event.get("customer_id", "")).encode()
        return RawRecord(topic, partition, offset, f.encode(event), key, None)

    def send(self, topic: str, events: list[dict[str, Any]], partition: int = 0) -> BatchOutput:
        """The batch's output (the channel owner's outputs it caused go to ``outputs``)."""
        records = [self.record(topic, e, partition) for e in events]
        outs = self.loop.process(INPUT_TOPICS[topic], records)
        self.outputs.extend(outs)
        return outs[0]

    def interactions(self, events: list[dict[str, Any]], partition: int = 0) -> BatchOutput:
        return self.send(INTERACTIONS, events, partition)

    def transactions(self, events: list[dict[str, Any]], partition: int = 0) -> BatchOutput:
        return self.send(TRANSACTIONS, events, partition)

    def feedback(self, events: list[dict[str, Any]], partition: int = 0) -> BatchOutput:
        return self.send(FEEDBACK, events, partition)

    def candidates(self, rule_id: str) -> list[Any]:
        return [c for out in self.outputs for c in out.candidates if c.rule_id == rule_id]


def contact(customer: str, ts: str, **over: Any) -> dict[str, Any]:
    """An interaction of ``customer`` at ``ts``."""
    return f.interaction(customer_id=customer, ts=ts, event_id=f"i-s{next(_ids)}", **over)
