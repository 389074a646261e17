"""Typed events and records for the service concept tests."""

from __future__ import annotations

from typing import Any

from finpulse.models.events import Feedback, Interaction
from finpulse.streams.core.decode import RawRecord
from tests import factories as f


def interaction(**over: Any) -> Interaction:
    return Interaction.model_validate_json(f.encode(f.interaction(**over)))


def feedback(**over: Any) -> Feedback:
    return Feedback.model_validate_json(f.encode(f.feedback(**over)))


def record(partition: int = 0, offset: int = 0, topic: str = "finpulse.interactions") -> RawRecord:
    return RawRecord(topic, partition, offset, b"", None, None)
