"""The model owner: a shared model's drift detections raised once, whatever the workers.

Every worker detects the same drifts of a shared model on its learning stream
(:mod:`finpulse.models.stream_drift`) and sends each as a :class:`ModelDetection` to
``finpulse.model_health`` (event kind ``model_detection``), keyed by the model's name. The
worker that owns that key's partition raises it here, through the alert manager that runs
after this stage (rule ``drift.<detector>``, subject the model). Its keyed state
(``model_health``, key: the model) keeps, per detector, the newest stream position raised:
a detection at or before it (another worker's copy, or one sent again by a worker
replaying the stream after a restart) changes nothing. The state is committed with the
re-delivery guard of this topic, like every stage's, so a restarted owner neither raises
again nor misses one.

>>> from finpulse.config.policy import load_policy
>>> from finpulse.streams.core.state import MemoryState
>>> stage = ModelHealthStage(load_policy(), MemoryState(STATE_NAME))
>>> stage.name, sorted(stage.kinds)
('model_health', ['model_detection'])
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import ClassVar

import msgspec

from finpulse.config.policy import Policy
from finpulse.models.alerts import AlertCandidate
from finpulse.models.events import ModelDetection
from finpulse.models.stream_drift import Detection
from finpulse.streams.core.batch import BatchOutput, KeyedState, Outgoing, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.topics import MODEL_HEALTH

log = logging.getLogger(__name__)

STATE_NAME = "model_health"


class ModelHealthRecord(msgspec.Struct, array_like=True):
    """What a model's owner has raised: detector -> newest ``[stream offset, index]``."""

    raised: dict[str, list[int]] = msgspec.field(default_factory=dict)

    def first_time(self, detector: str, position: tuple[int, int]) -> bool:
        """Note ``position`` as raised if it is newer than the last one; True if it was.

        >>> rec = ModelHealthRecord()
        >>> rec.first_time("supervised_error", (8, 3)), rec.first_time("supervised_error", (8, 3))
        (True, False)
        >>> rec.first_time("supervised_error", (7, 90)), rec.first_time("supervised_error", (9, 0))
        (False, True)
        """
        last = self.raised.get(detector)
        if last is not None and tuple(last) >= position:
            return False
        self.raised[detector] = list(position)
        return True


def detection_message(d: Detection, model_version: str | None, partitions: int) -> Outgoing:
    """The ``finpulse.model_health`` message of a detection, on its model's partition (the
    same bytes in every worker and on every replay), timed by its triggering example.

    >>> d = Detection("risk", "supervised_error", 8, 14, 1_767_607_200_000, {"error_mean": 0.41})
    >>> m = detection_message(d, "risk-v1+40", 2)
    >>> m.topic, m.key, m.partition == key_partition(b"risk", 2)
    ('finpulse.model_health', b'risk', True)
    """
    value = ModelDetection.model_validate(
        {
            "event_id": d.event_id,
            "ts": datetime.fromtimestamp(d.ts_ms / 1000, UTC),
            "model": d.model,
            "detector": d.detector,
            "stream_offset": d.offset,
            "index": d.index,
            "evidence": d.evidence,
            "model_version": model_version,
        },
        strict=False,
    )
    key = d.model.encode()
    return Outgoing(
        MODEL_HEALTH, key, value.model_dump_json().encode(), key_partition(key, partitions)
    )


class ModelHealthStage:
    """Raises each detection of a shared model once (module text)."""

    name: ClassVar[str] = "model_health"
    kinds: ClassVar[frozenset[str]] = frozenset({"model_detection"})
    state_names: ClassVar[tuple[str, ...]] = (STATE_NAME,)

    def __init__(self, policy: Policy, models: KeyedState) -> None:
        self.policy = policy
        self.models = models
        self.counts: Counter[str] = Counter()

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        touched: dict[str, tuple[ModelHealthRecord, RawRecord]] = {}
        for event, record in batch:
            assert isinstance(event, ModelDetection)
            rec = touched[event.model][0] if event.model in touched else self._record(event.model)
            if rec.first_time(event.detector, (event.stream_offset, event.index)):
                self.counts["model_health.raised"] += 1
                out.candidates.extend(self._candidates(event))
            else:
                self.counts["model_health.repeated"] += 1
            touched[event.model] = (rec, record)
        for model, (rec, record) in touched.items():
            self.models.put(model, rec, record)

    def _record(self, model: str) -> ModelHealthRecord:
        rec = self.models.get(model)
        return ModelHealthRecord() if rec is None else rec

    def _candidates(self, event: ModelDetection) -> list[AlertCandidate]:
        """The alert candidate of a detection (none while its rule is unknown or off)."""
        rule_id = f"drift.{event.detector}"
        try:
            rule = self.policy.rule(rule_id)
        except KeyError:
            log.warning("no policy rule %s: detection %s not raised", rule_id, event.event_id)
            return []
        if not rule.enabled:
            return []
        return [
            AlertCandidate(
                rule_id=rule_id,
                domain="model_health",
                severity=rule.severity,
                subject_type="model",
                subject_id=event.model,
                ts=event.ts,
                source_event_id=event.event_id,
                evidence={
                    **event.evidence,
                    "stream_offset": event.stream_offset,
                    "index": event.index,
                },
                model_version=event.model_version,
            )
        ]
