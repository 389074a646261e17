"""Labelled examples on a model's learning stream, and the position a model has learned to.

A worker that joins a label to the inputs it scored does not learn from it itself: it
produces the **example** (the scored inputs, the label, where the label came from) to the
model's learning stream, a one-partition topic that every worker reads in full and learns
from in the same order, so every worker holds the same model. One stream record is one
:class:`ExampleBatch` (the examples one input batch joined), learned with one
``learn_many``. A batch names the **schema** of its inputs (:func:`schema_id` of the input
names, for inputs packed by position): a reader skips batches of another schema, e.g. from
a worker of another release during a rolling upgrade.

At-least-once production can write a batch twice (a crash between publishing and
committing re-runs the input batch), and a re-run can reach the stream after a later
batch of the same source partition (a failed publication, a rebalance) or join a label the
first run left unmatched. Every example carries its **source**: the partition and offset
of the label event on the input topic. A model's :class:`LearnedPosition` records the next
stream offset it will read and, per source partition, the exact source offsets it learned
recently (:class:`RecentOffsets`); an example whose source offset is among them is a
duplicate and is skipped, whatever order it comes in.

>>> batch = ExampleBatch([Example(2, 41, "t-2", 0.0, b""), Example(2, 40, "t-1", 1.0, b"\\x01")])
>>> decoded = decode_batch(encode_batch(batch))
>>> pos = LearnedPosition()
>>> [e.event_id for e in pos.fresh(decoded.examples)]
['t-2', 't-1']
>>> pos.advance(0, decoded.examples[:1]); pos.next_offset, pos.sources
(1, {2: RecentOffsets(floor=-1, above=[41])})
>>> [e.event_id for e in pos.fresh(decoded.examples)]  # 41 again is a duplicate, 40 is not
['t-1']
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec

__all__ = [
    "Example",
    "ExampleBatch",
    "InvalidExamples",
    "LearnedPosition",
    "RecentOffsets",
    "Unlearned",
    "decode_batch",
    "digest",
    "encode_batch",
    "schema_id",
]

RECENT_OFFSETS = 1024
"""Source offsets remembered exactly per source partition (:class:`RecentOffsets`)."""


class Example(msgspec.Struct, array_like=True, frozen=True):
    """One labelled example: its label event's source position, the scored event's id, the
    label and the model inputs as scored (a model-specific encoding, e.g. a packed row of
    :mod:`finpulse.models.packing` or a dict of named inputs), then optional fields a
    model's evaluation reads (e.g. the score it was given)."""

    source_partition: int
    source_offset: int
    event_id: str
    label: float
    inputs: bytes | dict[str, float]
    ts_ms: int = 0  # the scored event's time, epoch ms
    score: float | None = None


class ExampleBatch(msgspec.Struct, array_like=True):
    """The examples of one record of a learning stream (learned together), and the schema
    of their inputs (:func:`schema_id`; ``""``: written before batches named one)."""

    examples: list[Example]
    schema: str = ""


class InvalidExamples(ValueError):
    """A learning-stream record that is not an :class:`ExampleBatch`."""


log = logging.getLogger(__name__)

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ExampleBatch)


def schema_id(names: Iterable[str]) -> str:
    """The schema of inputs packed in the order of ``names``: equal for equal names in equal
    order, different as soon as one is added, removed, renamed or moved.

    >>> schema_id(["amount", "velocity"]) == schema_id(("amount", "velocity"))
    True
    >>> schema_id(["amount", "velocity"]) == schema_id(["velocity", "amount"])
    False
    """
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]


def encode_batch(batch: ExampleBatch) -> bytes:
    """The record value of ``batch`` (MessagePack)."""
    return _ENCODER.encode(batch)


def decode_batch(value: bytes | None) -> ExampleBatch:
    """The batch of a record value; :class:`InvalidExamples` says why one is not.

    >>> try:
    ...     decode_batch(b"junk")
    ... except InvalidExamples as exc:
    ...     print(exc)
    not an example batch: Expected `array`, got `int`
    """
    try:
        return _DECODER.decode(value or b"")
    except msgspec.DecodeError as exc:
        raise InvalidExamples(f"not an example batch: {exc}") from exc


def digest(learned: Any) -> str:
    """A short digest of a model's learned numbers in a canonical form (e.g.
    ``learned_state()`` of :class:`~finpulse.models.online.RiverLogistic`): equal in every
    worker whose model learned the same stream records (the worker reports it, so operators
    and tests can compare).

    >>> digest((("a", 0.5), 1.0)) == digest((("a", 0.5), 1.0)) != digest((("a", 0.5), 2.0))
    True
    """
    return hashlib.sha256(repr(learned).encode()).hexdigest()[:16]


class RecentOffsets:
    """The source offsets of one source partition learned so far: exactly the newest
    ``keep`` to ``2 * keep`` of them, and a ``floor`` at or below which every offset counts
    as learned (the highest one forgotten). A label that comes back more than ``keep``
    learned labels of its partition late is taken for a duplicate.

    >>> seen = RecentOffsets(keep=2)
    >>> for offset in (5, 9, 7, 3, 8):
    ...     seen.add(offset)
    >>> seen, 6 in seen, 8 in seen, 10 in seen  # 3, 5 and 7 forgotten: 7 is the floor
    (RecentOffsets(floor=7, above=[8, 9]), True, True, False)
    """

    def __init__(self, keep: int = RECENT_OFFSETS, floor: int = -1) -> None:
        self.keep = keep
        self.floor = floor
        self.above: set[int] = set()

    def __contains__(self, offset: object) -> bool:
        return isinstance(offset, int) and (offset <= self.floor or offset in self.above)

    def add(self, offset: int) -> None:
        """Note ``offset`` as learned (forgetting the oldest ones beyond twice ``keep``)."""
        if offset in self:
            return
        self.above.add(offset)
        if len(self.above) > 2 * self.keep:
            ordered = sorted(self.above)
            cut = len(ordered) - self.keep
            self.floor = ordered[cut - 1]
            self.above = set(ordered[cut:])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RecentOffsets) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"RecentOffsets(floor={self.floor}, above={sorted(self.above)})"


class Unlearned(NamedTuple):
    """What a learning-stream record holds for a model (:meth:`LearnedPosition.read`)."""

    fresh: list[Example]  # not learned yet, in order
    duplicates: int  # learned before (skipped)
    invalid: bool  # the record is no example batch (logged)
    foreign: int = 0  # examples of another schema (skipped; logged once per schema)


class LearnedPosition:
    """How far a model has learned its stream (see the module text); pickled with the
    model in its checkpoint. A position pickled before :class:`RecentOffsets` (per source
    partition the highest offset learned) loads with that offset as the floor.

    >>> old = LearnedPosition.__new__(LearnedPosition)
    >>> old.__setstate__({"next_offset": 9, "sources": {0: 41}})
    >>> old
    LearnedPosition(next_offset=9, sources={0: RecentOffsets(floor=41, above=[])})
    """

    def __init__(self) -> None:
        self.next_offset = 0  # the next learning-stream offset to read
        self.sources: dict[int, RecentOffsets] = {}  # source partition -> offsets learned
        self._foreign_logged: set[str] = set()  # schemas met and logged (not pickled)

    def __getstate__(self) -> dict[str, Any]:
        return {"next_offset": self.next_offset, "sources": self.sources}

    def __setstate__(self, state: dict[str, Any]) -> None:
        sources = state.get("sources") or {}
        self.next_offset = state.get("next_offset", 0)
        self.sources = {
            p: s if isinstance(s, RecentOffsets) else RecentOffsets(floor=s)
            for p, s in sources.items()
        }
        self._foreign_logged = set()

    def learned(self, example: Example) -> bool:
        """Whether the example's source offset was learned already."""
        seen = self.sources.get(example.source_partition)
        return seen is not None and example.source_offset in seen

    def fresh(self, examples: Sequence[Example]) -> list[Example]:
        """The examples not learned yet, in order (each source position once)."""
        taken: set[tuple[int, int]] = set()
        out = []
        for e in examples:
            where = (e.source_partition, e.source_offset)
            if where not in taken and not self.learned(e):
                taken.add(where)
                out.append(e)
        return out

    def read(
        self, topic: str, offset: int, value: bytes | None, schemas: Collection[str] | None = None
    ) -> Unlearned:
        """The examples of the record at ``offset`` of ``topic`` still to learn; a record
        that is no example batch is logged and has none (the stream goes on after it), and
        so is a batch whose schema is not one of ``schemas`` (None: inputs are named, any).

        >>> pos = LearnedPosition()
        >>> pos.read("finpulse.learning.risk", 3, b"junk")
        Unlearned(fresh=[], duplicates=0, invalid=True, foreign=0)
        >>> other = encode_batch(ExampleBatch([Example(0, 1, "t", 1.0, b"")], schema="b2"))
        >>> pos.read("finpulse.learning.risk", 4, other, schemas={"a1"})
        Unlearned(fresh=[], duplicates=0, invalid=False, foreign=1)
        """
        try:
            batch = decode_batch(value)
        except InvalidExamples as exc:
            log.error("%s offset %d: %s", topic, offset, exc)
            return Unlearned([], 0, True)
        examples = batch.examples
        if schemas is not None and batch.schema not in schemas:
            if batch.schema not in self._foreign_logged:
                self._foreign_logged.add(batch.schema)
                log.error(
                    "%s offset %d: examples of schema %r, this release learns %s: skipped "
                    "(logged once per schema)",
                    *(topic, offset, batch.schema, sorted(schemas)),
                )
            return Unlearned([], 0, False, len(examples))
        fresh = self.fresh(examples)
        return Unlearned(fresh, len(examples) - len(fresh), False)

    def advance(self, offset: int, examples: Sequence[Example]) -> None:
        """Note the stream record at ``offset`` as learned, with its ``examples``."""
        self.move_to(max(self.next_offset, offset + 1))
        for e in examples:
            seen = self.sources.get(e.source_partition)
            if seen is None:
                seen = self.sources[e.source_partition] = RecentOffsets()
            seen.add(e.source_offset)

    def move_to(self, offset: int) -> None:
        """Read the stream from ``offset`` on (past a record that cannot be learned, past a
        gap the stream's retention left, back to the start of a recreated stream)."""
        self.next_offset = offset

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, LearnedPosition) and self.__getstate__() == other.__getstate__()

    def __repr__(self) -> str:
        return f"LearnedPosition(next_offset={self.next_offset}, sources={self.sources})"
