"""Labelled examples on a model's learning stream, and the position a model has learned to.

A worker that joins a label to the inputs it scored does not learn from it itself: it
produces the **example** (the scored inputs, the label, where the label came from) to the
model's learning stream, a one-partition topic that every worker reads in full and learns
from in the same order, so every worker holds the same model. One stream record is one
:class:`ExampleBatch` (the examples one input batch joined), learned with one
``learn_many``.

At-least-once production can write a batch twice (a crash between publishing and
committing re-runs the input batch). Every example carries its **source**: the partition
and offset of the label event on the input topic. A model's :class:`LearnedPosition`
records the next stream offset it will read and, per source partition, the highest source
offset it has learned; an example at or below that is a duplicate and is skipped. Input
partitions are read in offset order, so a re-run batch only repeats offsets already seen.

>>> batch = ExampleBatch([Example(2, 40, "t-1", 1.0, b"\\x01"), Example(2, 41, "t-2", 0.0, b"")])
>>> decoded = decode_batch(encode_batch(batch))
>>> pos = LearnedPosition()
>>> [e.event_id for e in pos.fresh(decoded.examples)]
['t-1', 't-2']
>>> pos.advance(0, decoded.examples); pos.next_offset, pos.sources
(1, {2: 41})
>>> [e.event_id for e in pos.fresh(decoded.examples)]  # the same batch again: skipped
[]
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec

__all__ = [
    "Example",
    "ExampleBatch",
    "InvalidExamples",
    "LearnedPosition",
    "Unlearned",
    "decode_batch",
    "digest",
    "encode_batch",
]


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
    """The examples of one record of a learning stream (learned together)."""

    examples: list[Example]


class InvalidExamples(ValueError):
    """A learning-stream record that is not an :class:`ExampleBatch`."""


log = logging.getLogger(__name__)

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ExampleBatch)


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


class Unlearned(NamedTuple):
    """What a learning-stream record holds for a model (:meth:`LearnedPosition.read`)."""

    fresh: list[Example]  # not learned yet, in order
    duplicates: int  # learned before (skipped)
    invalid: bool  # the record is no example batch (logged)


class LearnedPosition:
    """How far a model has learned its stream (see the module text); pickled with the
    model in its checkpoint."""

    def __init__(self) -> None:
        self.next_offset = 0  # the next learning-stream offset to read
        self.sources: dict[int, int] = {}  # source partition -> highest offset learned

    def fresh(self, examples: Sequence[Example]) -> list[Example]:
        """The examples not learned yet, in order (each source offset once)."""
        seen = dict(self.sources)
        out = []
        for e in examples:
            if e.source_offset > seen.get(e.source_partition, -1):
                seen[e.source_partition] = e.source_offset
                out.append(e)
        return out

    def read(self, topic: str, offset: int, value: bytes | None) -> Unlearned:
        """The examples of the record at ``offset`` of ``topic`` still to learn; a record
        that is no example batch is logged and has none (the stream goes on after it).

        >>> LearnedPosition().read("finpulse.learning.risk", 3, b"junk")
        Unlearned(fresh=[], duplicates=0, invalid=True)
        """
        try:
            examples = decode_batch(value).examples
        except InvalidExamples as exc:
            log.error("%s offset %d: %s", topic, offset, exc)
            return Unlearned([], 0, True)
        fresh = self.fresh(examples)
        return Unlearned(fresh, len(examples) - len(fresh), False)

    def advance(self, offset: int, examples: Sequence[Example]) -> None:
        """Note the stream record at ``offset`` as learned, with its ``examples``."""
        self.next_offset = max(self.next_offset, offset + 1)
        for e in examples:
            if e.source_offset > self.sources.get(e.source_partition, -1):
                self.sources[e.source_partition] = e.source_offset

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, LearnedPosition) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"LearnedPosition(next_offset={self.next_offset}, sources={self.sources})"
