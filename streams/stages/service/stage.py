"""The service stages: metrics, complaints, satisfaction, customer view, service x risk.

Three stages, built together by :func:`service_stages` (the first and last share the customer
state):

* :class:`ServiceStage` runs **before** the rule stage. Per batch it updates, for every
  partition it touches, the minute aggregates per (channel, segment), the SLA windows and
  the complaint book, and per customer the service context; it scores each interaction
  with the satisfaction model, learns from surveys, and annotates each interaction's
  ``features`` (``contacts_24h``, ``risk_alert_24h``, ...) so the policy's ``on: interaction``
  rules see them. It evaluates the ``complaint``, ``customer`` and ``model`` rules itself
  and sends each closed minute's per-channel counts to the channel's owner.
* :class:`~finpulse.streams.stages.service.channel_level.ChannelLevelStage` runs on the
  channel minutes the service stages send (``finpulse.channel_minutes``) and evaluates the
  ``channel_minute`` rules for the channels whose partition the worker owns.
* :class:`ServiceContextStage` runs **after** the rule stage (before alerting). It records
  the risk alerts raised on each customer's transactions (the "last risk alert" state that
  friction needs) and puts the other side's context on every candidate of a customer: the
  service context on risk alerts, the risk context on service alerts.

**Where the SLA is judged.** Interactions are keyed by customer, so each partition holds a
share of every channel's contacts. Each partition counts its share per minute and, when its
event time closes a minute, sends the counts to the channel's owner through the internal
topic ``finpulse.channel_minutes`` (keyed by channel). The owner pools every partition's
counts and judges the channel once
(:mod:`~finpulse.streams.stages.service.channel_level`), so a channel raises one alert
whatever the number of workers and partitions, and the judgement sees all the channel's
contacts. ClickHouse holds the exact channel-wide minute metrics as SUM over the
per-partition rows (view ``service_channel_minutes``).

**One module per concept**, run in this order over a batch by :class:`ServiceStage`:
:mod:`~finpulse.streams.stages.service.service_level` (minute aggregates, SLA windows),
:mod:`~finpulse.streams.stages.service.complaints`,
:mod:`~finpulse.streams.stages.service.friction`,
:mod:`~finpulse.streams.stages.service.satisfaction` (model, surveys, checkpoint) and
:mod:`~finpulse.streams.stages.service.customer_status` (lifecycle and health rows).

**Exactly-once effect on state.** A re-delivered event never reaches this stage: the
pipeline's one re-delivery guard, committed with this stage's state, skips it. Counters
therefore never double count, and the minute rows, rewritten whole with the offset as
version, stay exact.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from finpulse.config.settings import Settings
from finpulse.models.events import Feedback, Interaction, Transaction
from finpulse.models.learning import digest
from finpulse.models.satisfaction import SatisfactionModel, SatisfactionMonitor
from finpulse.sinks.checkpoints import CheckpointStore
from finpulse.streams.core.batch import BatchOutput, KeyedState, StateFactory, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import SATISFACTION_EXAMPLES
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service import customers as cu
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.channel_level import ChannelLevelStage
from finpulse.streams.stages.service.complaints import (
    ComplaintBook,
    ComplaintChange,
    Complaints,
    is_complaint,
)
from finpulse.streams.stages.service.context import ServiceContextStage
from finpulse.streams.stages.service.csat_drop import record_survey
from finpulse.streams.stages.service.customer_status import CustomerStatus
from finpulse.streams.stages.service.friction import record_friction
from finpulse.streams.stages.service.names import (
    CHANNELS_STATE,
    CUSTOMERS_STATE,
    PARTITIONS_STATE,
    RISK_STATE,
)
from finpulse.streams.stages.service.records import (
    PARTITION_VALUE,
    ChannelRecord,
    PartitionRecord,
    RecentRiskAlerts,
    RiskAlert,
    ServiceCustomer,
)
from finpulse.streams.stages.service.satisfaction import Satisfaction
from finpulse.streams.stages.service.service_level import ServiceLevel
from finpulse.streams.stages.service.windows import to_ms

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    """What one batch touched, read through once and written back at its end."""

    out: BatchOutput
    parts: BatchCache  # partition records p{partition} and complaint buckets
    custs: BatchCache  # customer records
    book: ComplaintBook
    touched_parts: dict[int, RawRecord] = field(default_factory=dict)
    touched_aggs: set[tuple[int, str]] = field(default_factory=set)
    touched_custs: dict[str, tuple[RawRecord, int]] = field(default_factory=dict)
    changes: list[ComplaintChange] = field(default_factory=list)
    learned: int = 0
    last_ms: int = 0


def rule_features(
    features: dict[str, Any],
    ms: int,
    prior: int,
    open_complaints: int,
    risks: list[RiskAlert],
    scored: tuple[float, float],
    threshold_s: float,
    wait_s: float,
) -> dict[str, Any]:
    """An interaction's ``features`` for the ``on: interaction`` rules, added to ``features``.

    >>> f = rule_features({"x": 1}, 3_600_000, 1, 0, [RiskAlert(0, "card_testing", "red", None)],
    ...                   (3.21, 0.123456), 20.0, 25.0)
    >>> f["x"], f["contacts_24h"], f["last_risk_rule"], f["hours_since_risk_alert"]
    (1, 2, 'card_testing', 1.0)
    >>> f["p_dissatisfied"], f["answered_in_sl"]
    (0.1235, False)
    """
    predicted, p_dissat = scored
    last_risk = risks[-1] if risks else None
    return {
        **features,
        "contacts_24h": prior + 1,
        "repeat_contact": prior > 0,
        "open_complaints": open_complaints,
        "risk_alert_24h": bool(risks),
        "last_risk_rule": last_risk.rule_id if last_risk else None,
        "hours_since_risk_alert": round((ms - last_risk.ms) / 3.6e6, 3) if last_risk else None,
        "predicted_csat": round(predicted, 3),
        "p_dissatisfied": round(p_dissat, 4),
        "service_level_threshold_s": threshold_s,
        "answered_in_sl": wait_s <= threshold_s,
    }


class ServiceStage:
    """Service metrics, complaints, satisfaction and customer view (see module doc)."""

    name: ClassVar[str] = "service"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "interaction", "feedback"})
    state_names: ClassVar[tuple[str, ...]] = (PARTITIONS_STATE, CUSTOMERS_STATE, RISK_STATE)
    learning_topic: ClassVar[str] = SATISFACTION_EXAMPLES

    def __init__(
        self,
        settings: Settings,
        engine: RuleEngine,
        partitions: KeyedState,
        customers: KeyedState,
        risks: KeyedState,
        checkpoints: CheckpointStore | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.partitions = partitions
        self.customers = customers
        self.risks = risks
        self.counts: Counter[str] = Counter()  # shared by the concepts
        self.level = ServiceLevel(settings, self.counts)
        self.complaints = Complaints(settings, engine, self.counts)
        self.satisfaction = Satisfaction(settings, engine, self.counts, checkpoints)
        self.status = CustomerStatus(engine, risks)

    # ------------------------------------------------------------------ what others read
    @property
    def model(self) -> SatisfactionModel:
        return self.satisfaction.model

    @property
    def monitor(self) -> SatisfactionMonitor:
        return self.satisfaction.monitor

    @property
    def version(self) -> str:
        return self.satisfaction.version

    # ------------------------------------------------------------------------------ batch
    def restore(self) -> None:
        """Restore the satisfaction model from its latest checkpoint (see ModelStage)."""
        self.satisfaction.restore()

    # ---------------------------------------------------------- learning (LearningStage)
    def learning_offset(self) -> int:
        """The next offset of the satisfaction learning stream the model learns."""
        return self.satisfaction.position.next_offset

    def move_learning_to(self, offset: int) -> None:
        """Read the satisfaction learning stream from ``offset`` on (see LearningStage)."""
        self.satisfaction.position.move_to(offset)

    def learned_digest(self) -> str:
        """The digest of the satisfaction model (what its learning stream taught)."""
        return digest(self.satisfaction.model.learned_state())

    def learn(self, offset: int, value: bytes | None, out: BatchOutput) -> None:
        """Learn one record of the satisfaction learning stream (in stream order)."""
        self.satisfaction.learn_examples(offset, value, out)

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        parts = BatchCache(self.partitions)
        b = _Batch(out, parts, BatchCache(self.customers), self.complaints.book(parts))
        for event, record in batch:
            self._event(kind, event, record, b)
        self._finish(b)

    def _event(self, kind: str, event: Any, record: RawRecord, b: _Batch) -> None:
        meta, ms = self._admit(event, record, b)
        cid = event.customer_id
        cust = b.custs.get(cid, ServiceCustomer, partition=record.partition)
        if isinstance(event, Interaction):
            self._interaction(event, record, ms, meta, cust, b)
            b.touched_custs[cid] = (record, ms)
        elif isinstance(event, Transaction):
            cu.note_activity(cust, ms, event.customer_type.value, event.segment.value)
            b.touched_custs[cid] = (record, ms)
        elif isinstance(event, Feedback) and (
            cust.customer_type is not None or event.kind.value == "complaint_closed"
        ):
            if self._feedback(event, record, ms, meta, cust, b):
                b.learned += 1
            last_seen = cust.last_seen_ms
            b.touched_custs[cid] = (record, ms if last_seen is None else max(ms, last_seen))

    def _admit(self, event: Any, record: RawRecord, b: _Batch) -> tuple[PartitionRecord, int]:
        """The partition record and event time of an event (re-delivered events never get
        here: the pipeline's one guard skips them)."""
        meta = b.parts.get(f"p{record.partition}", PartitionRecord, partition=record.partition)
        ms = to_ms(event.ts)
        b.last_ms = max(b.last_ms, ms)
        wm = meta.watermark_ms
        meta.watermark_ms = ms if wm is None else max(wm, ms)
        b.parts.touch(f"p{record.partition}", record)
        b.touched_parts[record.partition] = record
        return meta, ms

    def _interaction(
        self,
        ev: Interaction,
        record: RawRecord,
        ms: int,
        meta: PartitionRecord,
        cust: ServiceCustomer,
        b: _Batch,
    ) -> None:
        cu.note_activity(cust, ms, ev.customer_type.value, ev.segment.value)
        prior = cu.note_contact(cust, ms)
        complaint = is_complaint(ev)
        self.level.add(
            meta, ev, record, ms, repeat=prior > 0, complaint=complaint, touched=b.touched_aggs
        )
        if complaint:
            b.changes.extend(self.complaints.on_interaction(b.book, cust, ev, record, ms))
        risks = cu.recent_risk(self.risks.get(ev.customer_id, partition=record.partition), ms)
        record_friction(ev, ms, risks, record.partition, b.out, self.counts)
        threshold = self.level.threshold(ev.channel.value)
        scored = self.satisfaction.score(ev, cust, ms, prior, risks, threshold, b.out)
        features = b.out.annotations.get(ev.event_id, {}).get("features", {})
        n_open = len(cust.open_complaints)
        features = rule_features(
            features, ms, prior, n_open, risks, scored, threshold, ev.wait_seconds
        )
        b.out.annotate(ev.event_id, "features", features)

    def _feedback(
        self,
        fb: Feedback,
        record: RawRecord,
        ms: int,
        meta: PartitionRecord,
        cust: ServiceCustomer,
        b: _Batch,
    ) -> bool:
        """Learn from a survey and count it into its channel's survey minute (True when
        learned), or close a complaint."""
        kind = fb.kind.value
        if kind == "csat_survey" and fb.value is not None:
            channel = self.satisfaction.learn(fb, record, cust)
            if channel is not None:
                record_survey(meta.sla, channel, ms, int(fb.value))
            return channel is not None
        if kind == "complaint_closed":
            b.changes.extend(self.complaints.on_close(b.book, cust, fb, record, ms))
        return False

    def _finish(self, b: _Batch) -> None:
        # rows first: closing minutes prunes old aggregates, even ones this batch touched
        self.level.write_minutes(b.parts, b.touched_aggs, b.out)
        for partition, record in b.touched_parts.items():
            meta = b.parts.get(f"p{partition}", PartitionRecord, partition=partition)
            self.level.close_minutes(partition, meta, b.out)
            b.changes.extend(b.book.age(partition, meta.watermark_ms or 0, record))
        self.complaints.publish(b.changes, b.out)
        self.status.publish(b.custs, b.touched_custs, b.out)
        if b.learned:
            self.satisfaction.publish(b.last_ms, b.out)
        b.parts.flush()
        b.custs.flush()


def service_stages(
    settings: Settings,
    state: StateFactory,
    engine: RuleEngine,
    store: CheckpointStore | None = None,
) -> tuple[ServiceStage, ChannelLevelStage, ServiceContextStage]:
    """The service stages over shared states: before the rule stage (the service stage
    and the channel owner's), and after it.

    >>> from finpulse.config.policy import load_policy
    >>> from finpulse.streams.core.state import MemoryState
    >>> s = Settings(satisfaction_checkpoint_every=0)
    >>> [stage.name for stage in service_stages(s, MemoryState, RuleEngine(load_policy()))]
    ['service', 'channel_level', 'service_context']
    """
    customers = state(CUSTOMERS_STATE, ServiceCustomer)
    risks = state(RISK_STATE, RecentRiskAlerts)
    partitions = state(PARTITIONS_STATE, PARTITION_VALUE)
    before = ServiceStage(settings, engine, partitions, customers, risks, store)
    channels = ChannelLevelStage(settings, engine, state(CHANNELS_STATE, ChannelRecord))
    return before, channels, ServiceContextStage(customers, risks)
