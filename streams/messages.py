"""A message for the broker, as produced by a batch (alerts, dead letters, changelogs).

>>> Outgoing("finpulse.alerts", b"k", b"{}").partition is None
True
"""

from __future__ import annotations

from dataclasses import dataclass


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
