"""The processing path of one batch, shared by the live agents and offline replay.

``Pipeline.process`` is pure computation: raw records in; rows per table, dead
letters, alert candidates and messages to publish out. Where results go
(ClickHouse, topics) is the job of :mod:`streams.runtime`.

Validation and the raw event rows are built in; everything else (features,
models, rules, service metrics, alerting) is a :class:`Stage`, run in order on
the valid events of each batch. Stages keep their state in :class:`KeyedState`
objects made by a factory: Faust tables live, dicts offline.

>>> from config.settings import Settings
>>> p = Pipeline(Settings())
>>> out = p.process("feedback", [RawRecord("finpulse.feedback", 0, 0, b"oops")])
>>> len(out.deadletters), out.rows
(1, {})
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from config.settings import Settings
from models.alerts import AlertCandidate
from models.events import DeadLetter
from models.masking import Masker
from sinks.tables import EVENT_TABLES, ROW_BUILDERS, Table
from streams.decode import RawRecord, decode
from streams.messages import Outgoing
from streams.state import KeyedState, MemoryState

__all__ = ["BatchOutput", "Outgoing", "Pipeline", "Stage", "default_stages"]

log = logging.getLogger(__name__)


@dataclass
class BatchOutput:
    """Everything one batch produced; stages append to it."""

    rows: dict[Table, list[tuple[Any, ...]]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    candidates: list[AlertCandidate] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)
    # The batch's keyed-state changes; published after everything else (see streams.runtime).
    changelog: list[Outgoing] = field(default_factory=list)
    # Per-event results shared between stages, e.g. annotations[event_id]["features"].
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    valid_count: int = 0

    def annotate(self, event_id: str, name: str, value: Any) -> None:
        self.annotations.setdefault(event_id, {})[name] = value

    def add_rows(self, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Queue ``rows`` (tuples in ``table.columns`` order) for ClickHouse."""
        if rows:
            self.rows.setdefault(table, []).extend(rows)


Valid = list[tuple[BaseModel, RawRecord]]
StateFactory = Callable[[str], KeyedState]


class Stage(Protocol):
    """One step after validation. ``state_names`` are the keyed states it owns."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    state_names: ClassVar[tuple[str, ...]]

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None: ...


StageBuilder = Callable[[Settings, StateFactory], Sequence[Stage]]


def default_stages(settings: Settings, state: StateFactory) -> Sequence[Stage]:
    """The stages of a finpulse worker, in order (alerting last)."""
    from config.policy import load_policy
    from streams.alerting import STATE_NAME, AlertStage
    from streams.risk_stage import risk_stages
    from streams.rules import RuleEngine, RuleStage
    from streams.service.stage import service_stages

    policy = load_policy(settings.policy_path)
    engine = RuleEngine(policy)
    service, service_context = service_stages(settings, state, engine)
    return (
        *risk_stages(settings, state, engine),
        service,
        RuleStage(engine),
        service_context,
        AlertStage(policy, state(STATE_NAME)),
    )


class Pipeline:
    """Validate a batch of one input kind, build its rows, then run the stages."""

    def __init__(
        self,
        settings: Settings,
        stages: StageBuilder = default_stages,
        state: StateFactory = MemoryState,
        defer_changelog: bool = False,
    ) -> None:
        self.settings = settings
        self.states: list[KeyedState] = []
        # Live, the group commit takes the changelog once per flush (take_changelog): each
        # key is then serialized once per flush, not once per batch that touched it.
        self.defer_changelog = defer_changelog

        def make_state(name: str) -> KeyedState:
            self.states.append(state(name))
            return self.states[-1]

        self.stages: Sequence[Stage] = stages(settings, make_state)
        self.counts: Counter[str] = Counter()
        # Input guard (hardening): PCI DSS masking and the future clock-skew limit. Offline
        # replay sets ``clock`` to a reference time so validation stays deterministic.
        self.masker = Masker.from_settings(settings)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        if self.masker.uses_development_key:
            log.warning("FINPULSE_PII_KEY is not set: tokens use the public development key")

    def process(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        out = BatchOutput()
        table = EVENT_TABLES[kind]
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
            rows.append(ROW_BUILDERS[type(result)](result, record.partition, record.offset))
        out.add_rows(table, rows)
        out.valid_count = len(valid)
        self.counts[f"valid.{kind}"] += len(valid)
        if valid:
            for stage in self.stages:
                if kind in stage.kinds:
                    stage.process(kind, valid, out)
            if not self.defer_changelog:  # the batch's state changes, published with it
                out.changelog.extend(self.take_changelog())
        return out

    def take_changelog(self) -> list[Outgoing]:
        """The state changes of every batch processed since the last call, one record per
        key (the newest value), as changelog messages."""
        return [record for st in self.states for record in st.changelog()]
