"""The model owner: a shared model's drift raised once, whatever the workers.

Two kinds of messages, both keyed by the model's name, so the worker owning that key's
partition is the one place a model's health is judged; the alert manager, after this
stage, raises what it finds (rule ``drift.<detector>``, subject the model).

**Detections on the learning stream.** Every worker detects the same drifts of a shared
model on its learning stream (:mod:`finpulse.models.stream_drift`) and sends each as a
:class:`ModelDetection` to ``finpulse.model_health`` (event kind ``model_detection``). The
owner's keyed state (``model_health``, key: the model) keeps, per detector, the newest
stream position raised: a detection at or before it (another worker's copy, or one sent
again by a worker replaying the stream after a restart) changes nothing.

**Input minutes.** Each partition sends the minute sums of the inputs it scored
(``finpulse.model_inputs``, kind ``model_input_minute``); the owner pools them and runs the
input-drift detectors on the complete minutes (:mod:`~finpulse.streams.stages.input_drift`),
their state in the same record.

The record is committed with the re-delivery guard of these topics, like every stage's
state, so a restarted owner neither raises again nor misses one.

>>> from finpulse.config.policy import load_policy
>>> from finpulse.streams.core.state import MemoryState
>>> stage = ModelHealthStage(Settings(), load_policy(), MemoryState(STATE_NAME))
>>> stage.name, sorted(stage.kinds)
('model_health', ['model_detection', 'model_input_minute'])
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from finpulse.config.policy import Policy
from finpulse.config.settings import Settings
from finpulse.models.alerts import AlertCandidate
from finpulse.models.events import ModelDetection, ModelInputMinutes
from finpulse.models.stream_drift import Detection
from finpulse.streams.core.batch import BatchOutput, KeyedState, Outgoing, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.topics import MODEL_HEALTH
from finpulse.streams.stages.input_drift import InputDrift, InputPool, detect_inputs, pool_inputs
from finpulse.streams.stages.minute_pool import MINUTE_MS

log = logging.getLogger(__name__)

STATE_NAME = "model_health"


class ModelHealthRecord(msgspec.Struct, array_like=True):
    """What a model's owner keeps (key: the model)."""

    raised: dict[str, list[int]] = msgspec.field(default_factory=dict)
    # ^ learning-stream detector -> the newest [stream offset, index] raised
    inputs: InputPool = msgspec.field(default_factory=InputPool)  # pooled input minutes

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
    kinds: ClassVar[frozenset[str]] = frozenset({"model_detection", "model_input_minute"})
    state_names: ClassVar[tuple[str, ...]] = (STATE_NAME,)

    def __init__(self, settings: Settings, policy: Policy, models: KeyedState) -> None:
        self.settings = settings
        self.policy = policy
        self.models = models
        self.counts: Counter[str] = Counter()

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        touched: dict[str, tuple[ModelHealthRecord, str, RawRecord]] = {}
        for event, record in batch:
            assert isinstance(event, ModelDetection | ModelInputMinutes)
            rec = (
                touched[event.model][0]
                if event.model in touched
                else self._record(event.model, record.partition)
            )
            if isinstance(event, ModelInputMinutes):
                self.counts["model_health.late_input_minutes"] += pool_inputs(rec.inputs, event)
            elif rec.first_time(event.detector, (event.stream_offset, event.index)):
                self.counts["model_health.raised"] += 1
                out.candidates.extend(self._detected(event))
            else:
                self.counts["model_health.repeated"] += 1
            touched[event.model] = (rec, event.event_id, record)
        s = self.settings
        for model, (rec, event_id, record) in sorted(touched.items()):
            if kind == "model_input_minute":
                wait_ms = int(s.drift_pool_wait_s * 1000)
                found = detect_inputs(rec.inputs, partitions=s.topic_partitions, wait_ms=wait_ms)
                for d in found:
                    self.counts["model_health.input_drift"] += 1
                    out.candidates.extend(self._input_drift(model, d, event_id))
            self.models.put(model, rec, record)

    def _record(self, model: str, partition: int) -> ModelHealthRecord:
        rec = self.models.get(model, partition=partition)
        return ModelHealthRecord() if rec is None else rec

    def _detected(self, event: ModelDetection) -> list[AlertCandidate]:
        """The alert candidate of a detection on the learning stream."""
        evidence = {**event.evidence, "stream_offset": event.stream_offset, "index": event.index}
        return self._candidate(
            event.detector, event.model, event.ts, event.event_id, evidence, event.model_version
        )

    def _input_drift(self, model: str, d: InputDrift, event_id: str) -> list[AlertCandidate]:
        """The alert candidate of an input drift in one pooled minute, timed when the minute
        closed (its end plus the grace), whatever the batching: a re-run gives the same id.
        ``event_id`` (the message that completed the minute) puts the alert's state on the
        model's partition."""
        closed_ms = d.minute_ms + MINUTE_MS + int(self.settings.drift_grace_s * 1000)
        evidence = {
            "detector": "PageHinkley",
            "input": d.detector,
            "minute": datetime.fromtimestamp(d.minute_ms / 1000, UTC).isoformat(),
            "minute_mean": d.mean,
            "transactions": d.transactions,
        }
        ts = datetime.fromtimestamp(closed_ms / 1000, UTC)
        return self._candidate(d.detector, model, ts, event_id, evidence, None)

    def _candidate(
        self,
        detector: str,
        model: str,
        ts: datetime,
        event_id: str,
        evidence: dict[str, Any],
        model_version: str | None,
    ) -> list[AlertCandidate]:
        """The candidate of rule ``drift.<detector>`` (none while it is unknown or off)."""
        rule_id = f"drift.{detector}"
        try:
            rule = self.policy.rule(rule_id)
        except KeyError:
            log.warning("no policy rule %s: detection %s not raised", rule_id, event_id)
            return []
        if not rule.enabled:
            return []
        return [
            AlertCandidate(
                rule_id=rule_id,
                domain="model_health",
                severity=rule.severity,
                subject_type="model",
                subject_id=model,
                ts=ts,
                source_event_id=event_id,
                evidence=evidence,
                model_version=model_version,
            )
        ]
