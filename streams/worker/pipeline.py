"""The processing path of one batch, shared by the live agents and offline replay.

``Pipeline.process`` is pure computation: raw records in; rows per table, dead
letters, alert candidates and messages to publish out. Where results go
(ClickHouse, topics) is the job of :mod:`finpulse.streams.worker.runtime`.

Validation and the raw event rows are built in; everything else (features,
models, rules, service metrics, alerting) is a :class:`Stage`, run in order on
the valid events of each batch. Stages keep their state in :class:`KeyedState`
objects made by a factory: Faust tables live, dicts offline.

A stage that learns from a learning stream (:class:`LearningStage`) puts its examples in
the output as messages; the live worker publishes them and every worker's learning feed
(:mod:`finpulse.streams.worker.learning_feed`) reads them back. Without a broker (offline
runs, ``learn_in_process=True``) the pipeline hands them to the stage at once, at
consecutive offsets, instead.

>>> from finpulse.config.settings import Settings
>>> p = Pipeline(Settings(), stages=lambda settings, state: ())
>>> out = p.process("feedback", [RawRecord("finpulse.feedback", 0, 0, b"oops")])
>>> len(out.deadletters), out.rows
(1, {})
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.events import DeadLetter
from finpulse.models.masking import Masker
from finpulse.sinks.tables import EVENT_TABLES, ROW_BUILDERS
from finpulse.streams.core.batch import (
    BatchOutput,
    KeyedState,
    LearningStage,
    ModelStage,
    Outgoing,
    Stage,
    StageBuilder,
    StateFactory,
    Valid,
)
from finpulse.streams.core.decode import RawRecord, decode
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import LEARNING_TOPICS

log = logging.getLogger(__name__)

OFFSETS_STATE = "input_offsets"


class Pipeline:
    """Validate a batch of one input kind, build its rows, then run the stages."""

    def __init__(
        self,
        settings: Settings,
        stages: StageBuilder,
        state: StateFactory = MemoryState,
        learn_in_process: bool = True,
    ) -> None:
        self.settings = settings
        self.states: list[KeyedState] = []

        def make_state(name: str, value_type: Any = Any) -> KeyedState:
            self.states.append(state(name, value_type))
            return self.states[-1]

        # The one re-delivery guard: per input partition, the last offset applied of each
        # kind, committed with every stage's state (finpulse.streams.worker.commit_log).
        self.offsets = make_state(OFFSETS_STATE, dict[str, int])
        self.stages: Sequence[Stage] = stages(settings, make_state)
        self.learners: dict[str, LearningStage] = {
            s.learning_topic: s for s in self.stages if isinstance(s, LearningStage)
        }
        self.learn_in_process = learn_in_process
        self.counts: Counter[str] = Counter()
        # Input guard (hardening): PCI DSS masking and the future clock-skew limit. Offline
        # replay sets ``clock`` to a reference time so validation stays deterministic.
        self.masker = Masker.from_settings(settings)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        if self.masker.uses_development_key:
            log.warning("FINPULSE_PII_KEY is not set: tokens use the public development key")

    def process(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        """The batch's results; events at or below the last applied offset of their
        partition (re-deliveries after a restart) are skipped before any stage sees them."""
        records = self._not_applied(kind, records)
        out = BatchOutput()
        table = EVENT_TABLES.get(kind)  # None: an internal topic's records are not stored
        rows: list[tuple[Any, ...]] = []
        valid: Valid = []
        max_bytes, masker = self.settings.max_event_bytes, self.masker
        skew = self.settings.max_future_skew_s
        max_ts = self.clock() + timedelta(seconds=skew) if skew is not None else None
        for record in records:
            result = decode(kind, record, max_bytes, masker, max_ts)
            if isinstance(result, DeadLetter):
                out.deadletters.append(result)
                self.counts[f"deadletter.{result.error_type}"] += 1
                continue
            valid.append((result, record))
            if table is not None:
                rows.append(ROW_BUILDERS[type(result)](result, record.partition, record.offset))
        if table is not None:
            out.add_rows(table, rows)
        out.valid_count = len(valid)
        self.counts[f"valid.{kind}"] += len(valid)
        if valid:
            for stage in self.stages:
                if kind in stage.kinds:
                    stage.process(kind, valid, out)
            if self.learn_in_process:
                self._learn_at_once(out)
        return out

    def _learn_at_once(self, out: BatchOutput) -> None:
        """Hand the output's learning-stream records to their stages (see the module text)."""
        kept = []
        for message in out.messages:
            learner = self.learners.get(message.topic)
            if learner is not None:
                learner.learn(learner.learning_offset(), message.value, out)
            elif message.topic in LEARNING_TOPICS:  # a wrapped stage hides its learner
                raise RuntimeError(f"no stage of this pipeline learns {message.topic}")
            else:
                kept.append(message)
        out.messages = kept

    def restore_models(self) -> None:
        """Restore every stage's online models from their checkpoints (blocking I/O: the
        live worker runs this in a thread before its first batch)."""
        for stage in self.stages:
            if isinstance(stage, ModelStage):
                stage.restore()

    def next_offset(self, kind: str, partition: int) -> int | None:
        """The offset after the last one applied of ``kind`` on ``partition`` (where the
        input resumes), ``None`` before any.

        >>> from finpulse.config.settings import Settings
        >>> p = Pipeline(Settings(), stages=lambda settings, state: ())
        >>> _ = p.process("feedback", [RawRecord("finpulse.feedback", 1, 41, b"{}")])
        >>> p.next_offset("feedback", 1), p.next_offset("feedback", 0)
        (42, None)
        """
        applied = (self.offsets.get(str(partition), partition=partition) or {}).get(kind)
        return None if applied is None else int(applied) + 1

    def _not_applied(self, kind: str, records: Sequence[RawRecord]) -> Sequence[RawRecord]:
        last: dict[int, int] = {}
        newest: dict[int, RawRecord] = {}
        fresh: list[RawRecord] = []
        for record in records:
            p = record.partition
            if p not in last:
                last[p] = (self.offsets.get(str(p), partition=p) or {}).get(kind, -1)
            if record.offset <= last[p]:
                continue
            last[p] = record.offset
            newest[p] = record
            fresh.append(record)
        for p, record in newest.items():
            applied = dict(self.offsets.get(str(p), partition=p) or {})
            applied[kind] = record.offset
            self.offsets.put(str(p), applied, record)
        if len(fresh) < len(records):
            self.counts["redelivered_skipped"] += len(records) - len(fresh)
        return fresh

    def take_changelog(self) -> list[Outgoing]:
        """The state changes of every batch processed since the last call, one record per
        key (the newest value), as changelog messages: the committer takes them once per
        commit, so each changed key is serialized once per commit, not once per batch."""
        return [record for st in self.states for record in st.changelog()]

    def state_stored(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """The last changelog taken is acknowledged up to ``offsets``: every state writes it
        to its local store."""
        for st in self.states:
            st.stored(offsets)
