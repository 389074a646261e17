"""The processing path of one batch, shared by the live agents and offline replay.

``Pipeline.process`` is pure computation: raw records in, rows per table, dead
letters and messages to publish out. Where the results go (ClickHouse, topics) is
the job of :mod:`streams.runtime`.

>>> from config.settings import Settings
>>> p = Pipeline(Settings())
>>> out = p.process("feedback", [RawRecord("finpulse.feedback", 0, 0, b"oops")])
>>> len(out.deadletters), out.rows
(1, {})
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from config.settings import Settings
from models.events import DeadLetter
from sinks.tables import EVENT_TABLES, ROW_BUILDERS
from streams.decode import RawRecord, decode

log = logging.getLogger(__name__)


@dataclass
class Outgoing:
    """A message to publish: topic, key, JSON value."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass
class BatchOutput:
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)

    @property
    def valid_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


class Pipeline:
    """Validate a batch of one input kind and turn it into table rows."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.counts: Counter[str] = Counter()

    def process(self, kind: str, records: Sequence[RawRecord]) -> BatchOutput:
        out = BatchOutput()
        table = EVENT_TABLES[kind].name
        rows: list[tuple[Any, ...]] = []
        max_bytes = self.settings.max_event_bytes
        for record in records:
            result = decode(kind, record, max_bytes)
            if isinstance(result, DeadLetter):
                out.deadletters.append(result)
                self.counts[f"deadletter.{result.error_type}"] += 1
                continue
            rows.append(ROW_BUILDERS[type(result)](result, record.partition, record.offset))
        if rows:
            out.rows[table] = rows
        self.counts[f"valid.{kind}"] += len(rows)
        return out
