"""The service stages' keyed state as typed records (written by the one state codec,
:mod:`finpulse.streams.core.state_codec`, each as an array of its fields in order).

* ``service_customers`` (key: customer id): a :class:`ServiceCustomer`;
* ``service_partitions`` (keys ``p{partition}`` and ``p{partition}|c{open day}``): a
  :class:`PartitionRecord`, or a :class:`ComplaintBucket` of the complaints opened that day
  (the two are told apart by their tag, the first element of the array);
* ``service_last_risk`` (key: customer id): the customer's :class:`RecentRiskAlerts`;
* ``service_channels`` (key: channel): the channel's pooled service level, a
  :class:`ChannelRecord` (kept by the owner of the channel's partition of
  ``finpulse.channel_minutes``).

New fields go only at the end of a record, with a default, so records written before them
still decode. The records of earlier releases (dicts with short keys, as JSON objects or
MessagePack maps) are read by each record's ``from_legacy``.

>>> from finpulse.streams.core.state_codec import StateCodec
>>> codec = StateCodec("service_partitions", PARTITION_VALUE)
>>> bucket = ComplaintBucket({"k-1": BookedComplaint(0, "i-1", "open", 0, "c-1")})
>>> codec.encode(bucket)[:2], codec.decode(codec.encode(bucket)) == bucket  # tag 2 first
(b'\\x92\\x02', True)
>>> old = codec.decode(b'{"k-1": {"o": 0, "e": "i-1", "s": "open", "d": 0}}')
>>> old.complaints["k-1"].event_id, codec.decode(b'{"wm": 5}').watermark_ms
('i-1', 5)
"""

from __future__ import annotations

from typing import Any

import msgspec

from finpulse.streams.stages.service.legacy import survey_entries
from finpulse.streams.stages.service.pending import AwaitingSurvey

# ----------------------------------------------------------------- service_customers


class OpenComplaint(msgspec.Struct, array_like=True, gc=False):
    """An open complaint as the customer's record knows it."""

    open_day: int  # day index (epoch ms // DAY_MS) it opened, which names its bucket
    event_ids: list[str]  # the newest interactions about it (complaints.REFS_KEPT)


class EarlyClose(msgspec.Struct, array_like=True, gc=False):
    """A ``complaint_closed`` feedback that arrived before its complaint."""

    closed_ms: int
    event_id: str  # the feedback's


class ServiceCustomer(msgspec.Struct, array_like=True):
    """A customer's service context (module :mod:`~finpulse.streams.stages.service.customers`
    says what each part feeds). Fresh: nothing seen yet."""

    customer_type: str | None = None  # None until an event of the customer was seen
    segment: str | None = None
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    events_per_day: dict[int, int] = msgspec.field(default_factory=dict)  # last 60 days
    contact_ms: list[int] = msgspec.field(default_factory=list)  # contacts of the last 24 h
    recent_wait_logs: list[float] = msgspec.field(default_factory=list)  # the last 5
    csat_sum: float = 0.0  # survey answers
    csat_count: int = 0
    last_csat: int | None = None
    predicted_dissatisfaction: float | None = None  # moving average of P(dissatisfied)
    awaiting_survey: dict[str, AwaitingSurvey] = msgspec.field(default_factory=dict)
    open_complaints: dict[str, OpenComplaint] = msgspec.field(default_factory=dict)
    early_closes: dict[str, EarlyClose] = msgspec.field(default_factory=dict)  # by ref id
    lifecycle_stage: str | None = None  # as last written
    status_signature: tuple[str, int, int | None, int, int, int | None, int] | None = None
    status_version: int = 0  # version of the last customer_status row

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> ServiceCustomer:
        """The record of the previous release (a JSON object with short keys)."""
        csat_sum, csat_count = old.get("cs", [0.0, 0])
        sig = old.get("sig")
        return cls(
            customer_type=old.get("ct"),
            segment=old.get("sg"),
            first_seen_ms=old.get("f"),
            last_seen_ms=old.get("l"),
            events_per_day={int(day): n for day, n in old.get("dy", {}).items()},
            contact_ms=old.get("cn", []),
            recent_wait_logs=old.get("wt", []),
            csat_sum=float(csat_sum),
            csat_count=csat_count,
            last_csat=old.get("lc"),
            predicted_dissatisfaction=old.get("pd"),
            awaiting_survey=survey_entries(old.get("pe", {})),
            open_complaints={
                cid: OpenComplaint(day, refs) for cid, (day, refs) in old.get("cm", {}).items()
            },
            early_closes={ref: EarlyClose(ms, eid) for ref, (ms, eid) in old.get("cx", {}).items()},
            lifecycle_stage=old.get("st"),
            status_signature=None if sig is None else tuple(sig),  # type: ignore[arg-type]
            status_version=old.get("v", 0),
        )


# ---------------------------------------------------------------- service_partitions


class SlaState(msgspec.Struct, array_like=True):
    """Service-level minute counts: a partition's open minutes, or a channel owner's pooled
    judgement (:mod:`~finpulse.streams.stages.service.pooling`)."""

    closed_minute_ms: int | None = None  # the last minute closed (a partition) or judged
    minutes: dict[str, dict[int, list[int]]] = msgspec.field(default_factory=dict)
    # ^ channel -> minute start ms -> [contacts, answered in time]
    breached_run: dict[str, int] = msgspec.field(default_factory=dict)
    # ^ channel -> consecutive breached minutes (the owner's; unused by a partition)
    surveys: dict[str, dict[int, list[int]]] = msgspec.field(default_factory=dict)
    # ^ a partition's open survey minutes: channel -> minute -> [sum of answers, answers]

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> SlaState:
        return cls(
            closed_minute_ms=old.get("closed"),
            minutes={
                ch: {int(m): cell for m, cell in ring.items()}
                for ch, ring in old.get("win", {}).items()
            },
            breached_run=old.get("run", {}),
        )


class PartitionRecord(msgspec.Struct, array_like=True, tag=1):
    """What a partition's service level and complaint book keep (key ``p{partition}``)."""

    watermark_ms: int | None = None  # newest event time seen on the partition
    minute_aggregates: dict[str, list[int | float]] = msgspec.field(default_factory=dict)
    # ^ "{minute}|{channel}|{customer type}|{segment}" -> windows.AGG_FIELDS counters
    sla: SlaState = msgspec.field(default_factory=SlaState)
    version: int = 0  # the minute rows' version: the last counted offset + 1
    aggregate_floor_ms: int | None = None  # older minutes are dropped and not counted
    complaint_days: list[int] = msgspec.field(default_factory=list)  # days with open ones
    next_sweep_ms: int = 0  # watermark at which the complaints are aged next

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> PartitionRecord | ComplaintBucket:
        """A record of the previous release: a partition record (it always had ``wm``) or a
        complaint bucket (complaint id -> entry)."""
        if "wm" not in old:
            return ComplaintBucket.from_legacy(old)
        return cls(
            watermark_ms=old["wm"],
            minute_aggregates=old.get("agg", {}),
            sla=SlaState.from_legacy(old.get("sla", {})),
            version=old.get("ver", 0),
            aggregate_floor_ms=old.get("agg_floor"),
            complaint_days=old.get("cdays", []),
            next_sweep_ms=old.get("sweep", 0),
        )


class BookedComplaint(msgspec.Struct, array_like=True, gc=False):
    """An open complaint in its partition's book."""

    opened_ms: int
    event_id: str  # the interaction that opened it
    status: str  # open, due_soon or overdue
    days_reported: int  # whole days open at its last check
    customer_id: str | None = None
    customer_type: str | None = None
    segment: str | None = None
    channel: str | None = None

    def info(self) -> dict[str, Any]:
        """Who and where, as complaint rows and rules read it."""
        return {
            "customer_id": self.customer_id,
            "customer_type": self.customer_type,
            "segment": self.segment,
            "channel": self.channel,
        }


class ComplaintBucket(msgspec.Struct, array_like=True, tag=2):
    """The open complaints of one partition opened on one day (key ``p{partition}|c{day}``)."""

    complaints: dict[str, BookedComplaint] = msgspec.field(default_factory=dict)

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> ComplaintBucket:
        return cls(
            {
                cid: BookedComplaint(
                    opened_ms=e["o"],
                    event_id=e["e"],
                    status=e["s"],
                    days_reported=e["d"],
                    customer_id=e.get("customer_id"),
                    customer_type=e.get("customer_type"),
                    segment=e.get("segment"),
                    channel=e.get("channel"),
                )
                for cid, e in old.items()
            }
        )


PARTITION_VALUE = PartitionRecord | ComplaintBucket  # the value type of service_partitions


# ------------------------------------------------------------------ service_channels


class ChannelRecord(msgspec.Struct, array_like=True):
    """One channel's pooled service level, kept by the channel's owner (key: the channel;
    module :mod:`~finpulse.streams.stages.service.pooling`)."""

    sources: dict[int, int] = msgspec.field(default_factory=dict)
    # ^ source partition -> newest minute it has closed
    cells: dict[int, dict[int, list[int]]] = msgspec.field(default_factory=dict)
    # ^ minute start ms -> source partition -> [contacts, answered in time]
    sla: SlaState = msgspec.field(default_factory=SlaState)  # the pooled judgement
    cells_from_ms: int | None = None  # older minutes no window needs: their cells are dropped
    surveys: dict[int, dict[int, list[int]]] = msgspec.field(default_factory=dict)
    # ^ minute -> source partition -> [sum of answers, answers], until fed to the detector
    csat: CsatDetector = msgspec.field(default_factory=lambda: CsatDetector())


class CsatDetector(msgspec.Struct, array_like=True):
    """The state of a channel's CSAT-drop detector (river's ``PageHinkley``, mode down;
    :mod:`~finpulse.streams.stages.service.csat_drop`). Fresh: nothing fed yet. The fields
    of :class:`~finpulse.models.page_hinkley.PageHinkleyState` after ``fed_through_ms``,
    flat: the layout records already stored have."""

    fed_through_ms: int | None = None  # the newest minute fed to it
    n: int = 0  # answers fed since its last reset
    mean: float = 0.0
    sum_increase: float = 0.0
    sum_decrease: float = 0.0
    min_increase: float = float("inf")
    max_decrease: float = -1.0
    detected: bool = False  # a drop at the last answer (it resets on the next one)


# ----------------------------------------------------------------- service_last_risk


class RiskAlert(msgspec.Struct, array_like=True, gc=False):
    """A risk alert raised on one of the customer's transactions."""

    ms: int  # its event time, epoch ms
    rule_id: str
    severity: str
    score: float | None


class RecentRiskAlerts(msgspec.Struct, array_like=True):
    """The customer's risk alerts of the last 24 h, oldest first (at most 10)."""

    alerts: list[RiskAlert] = msgspec.field(default_factory=list)

    @classmethod
    def from_legacy(cls, old: dict[str, Any]) -> RecentRiskAlerts:
        """``{"a": [[ms, rule_id, severity, score], ...]}`` of the previous release."""
        return cls([RiskAlert(*a) for a in old.get("a", [])])
