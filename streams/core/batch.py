"""The batch vocabulary of the delivery core: what a stage receives and what it returns.

A batch of one input kind is validated into :data:`Valid` pairs (event, raw record); each
:class:`Stage` appends its results to one :class:`BatchOutput` (rows per ClickHouse table,
dead letters, alert candidates, broker messages as :class:`Outgoing`). This module imports
no stage and no worker code, so every layer can use it.

>>> out = BatchOutput(valid_count=1)
>>> out.messages.append(Outgoing("finpulse.alerts", b"k", b"{}"))
>>> out.messages[0].partition is None, out.valid_count
(True, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from finpulse.config.settings import Settings
from finpulse.models.alerts import AlertCandidate
from finpulse.models.events import DeadLetter
from finpulse.sinks.tables import Table
from finpulse.streams.core.decode import RawRecord

__all__ = [
    "BatchOutput",
    "KeyedState",
    "LearningStage",
    "ModelStage",
    "Outgoing",
    "Stage",
    "StageBuilder",
    "StateFactory",
    "Valid",
]


@dataclass
class Outgoing:
    """A message to publish: topic, key, JSON value (``None`` = tombstone), partition.

    ``partition`` is ``None`` for the key's default partition; changelog records name the
    partition of the event that caused them.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None = None


@dataclass
class BatchOutput:
    """Everything one batch produced; stages append to it."""

    rows: dict[Table, list[tuple[Any, ...]]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    candidates: list[AlertCandidate] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)
    # Per-event results shared between stages, e.g. annotations[event_id]["features"].
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    valid_count: int = 0

    def annotate(self, event_id: str, name: str, value: Any) -> None:
        self.annotations.setdefault(event_id, {})[name] = value

    def add_rows(self, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """Queue ``rows`` (tuples in ``table.columns`` order) for ClickHouse."""
        if rows:
            self.rows.setdefault(table, []).extend(rows)


class KeyedState(Protocol):
    """What a stage may do with its state."""

    name: str

    def get(self, key: str, default: Any = None, *, partition: int) -> Any:
        """The value of ``key`` as seen from input ``partition``, that of the event the read
        is for (a key lives on the partition its writes come from)."""
        ...

    def put(self, key: str, value: Any, record: RawRecord | None) -> None: ...

    def delete(self, key: str, record: RawRecord | None) -> None: ...

    def items(self) -> Iterator[tuple[str, Any]]: ...

    def changelog(self) -> list[Outgoing]:
        """The changes since the last call, as broker messages (empty if not durable)."""
        ...

    def stored(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """The last changelog is acknowledged up to ``offsets`` ((topic, partition) -> last
        offset): its records can go to the local store."""
        ...


Valid = list[tuple[BaseModel, RawRecord]]


class StateFactory(Protocol):
    """Makes a stage's keyed state: its table ``name`` and the type of its values (a record
    type of :mod:`finpulse.streams.core.state_codec`, or ``Any`` for plain containers)."""

    def __call__(self, name: str, value_type: Any = Any) -> KeyedState: ...


class Stage(Protocol):
    """One step after validation. ``state_names`` are the keyed states it owns."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    state_names: ClassVar[tuple[str, ...]]

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None: ...


StageBuilder = Callable[[Settings, StateFactory], Sequence[Stage]]


@runtime_checkable
class ModelStage(Protocol):
    """A stage with online models: ``restore`` loads their latest checkpoints (blocking I/O),
    called off the event loop once, before the worker processes its first batch; it raises
    while the checkpoint store cannot be read (the worker retries)."""

    def restore(self) -> None: ...


@runtime_checkable
class LearningStage(Protocol):
    """A stage whose model learns from a learning stream (:mod:`finpulse.models.learning`):
    it produces labelled examples to ``learning_topic`` as messages of its outputs, and
    learns every record of that topic, in order, from ``learning_offset()`` on. ``learn``
    appends what learning produced (e.g. a checkpoint row) to ``out``; ``learned_digest``
    is equal in every worker that learned the same records. ``move_learning_to`` makes the
    models read on from another offset (past a record that cannot be learned or a gap the
    stream's retention left, or from the start of a recreated stream)."""

    learning_topic: ClassVar[str]

    def learning_offset(self) -> int: ...

    def move_learning_to(self, offset: int) -> None: ...

    def learned_digest(self) -> str: ...

    def learn(self, offset: int, value: bytes | None, out: BatchOutput) -> None: ...
