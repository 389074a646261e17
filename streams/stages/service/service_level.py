"""Service level: per-partition minute aggregates and the SLA windows of each channel.

Each interaction adds to its minute aggregate (key ``{minute}|{channel}|{type}|{segment}`` in
the partition record's ``minute_aggregates``) and to its channel's SLA minute ring
(``sla.minutes``). At the end of a batch the touched aggregates are written whole as rows (the
record's ``version`` as version), the minutes the watermark has passed are judged
(``on: channel_minute`` rules) and aggregates older than :data:`AGG_RETENTION_MS`
before the last closed minute are dropped.

>>> from collections import Counter
>>> from finpulse.config.policy import load_policy
>>> from finpulse.config.settings import Settings
>>> from finpulse.streams.stages.rules import RuleEngine
>>> level = ServiceLevel(Settings(), RuleEngine(load_policy()), Counter())
>>> level.threshold("chat"), level.threshold("no_such_channel")
(30.0, 20.0)
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.alerts import AlertCandidate
from finpulse.models.events import Interaction
from finpulse.models.ids import no_card_runs
from finpulse.sinks.tables import SERVICE_MINUTES_TABLE
from finpulse.streams.core.batch import BatchOutput
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.records import PartitionRecord
from finpulse.streams.stages.service.windows import (
    AGG_FIELDS,
    MINUTE_MS,
    Contact,
    SlaCheck,
    add_contact,
    advance_sla,
    empty_agg,
    from_ms,
    minute_of,
    record_sla_contact,
)

log = logging.getLogger(__name__)

AGG_RETENTION_MS = 5 * MINUTE_MS  # minute aggregates kept for late events after closing
DEFAULT_THRESHOLD_S = 20.0  # answer-in-time threshold of a channel without a setting


def minute_row(
    key: str, agg: list[float], partition: int, version: int, threshold_s: float
) -> tuple[Any, ...]:
    """The ``service_channel_minutes`` row of one aggregate (whole, ``version`` as version).

    >>> row = minute_row("60000|chat|individual|retail", [2, 1] + [0] * 9, 3, 7, 20.0)
    >>> row[1:8], row[-2]
    (('chat', 'individual', 'retail', 3, 2, 1, 20.0), 7)
    """
    minute, channel, ctype, segment = key.split("|")
    counts = dict(zip(AGG_FIELDS, agg, strict=True))
    return (
        from_ms(int(minute)),
        channel,
        ctype,
        segment,
        partition,
        int(counts["contacts"]),
        int(counts["answered_in_sl"]),
        threshold_s,
        float(counts["wait_sum"]),
        float(counts["handle_sum"]),
        *(int(counts[f]) for f in AGG_FIELDS[4:]),
        version,
        no_card_runs(f"{key}|p{partition}|v{version}"),
    )


def prune_aggregates(meta: PartitionRecord) -> None:
    """Drop the aggregates older than the retention before the last closed minute.

    >>> meta = PartitionRecord(minute_aggregates={"0|c|t|s": [], "300000|c|t|s": []})
    >>> meta.sla.closed_minute_ms = 10 * MINUTE_MS
    >>> prune_aggregates(meta)
    >>> list(meta.minute_aggregates), meta.aggregate_floor_ms
    (['300000|c|t|s'], 300000)
    """
    closed = meta.sla.closed_minute_ms
    floor = meta.aggregate_floor_ms
    if closed is not None and closed - AGG_RETENTION_MS > (-1 if floor is None else floor):
        floor = closed - AGG_RETENTION_MS
        meta.aggregate_floor_ms = floor
        aggs = meta.minute_aggregates
        for key in [k for k in aggs if int(k.split("|", 1)[0]) < floor]:
            del aggs[key]


class ServiceLevel:
    """Minute aggregates and SLA judgement of the partitions a worker holds."""

    def __init__(self, settings: Settings, engine: RuleEngine, counts: Counter[str]) -> None:
        self.settings = settings
        self.engine = engine
        self.counts = counts  # shared with the stage
        self.thresholds = dict(settings.service_level_thresholds_s)
        self.sla_checks: list[tuple[int, SlaCheck]] = []  # (partition, check), for evaluation
        self.keep_sla_checks = False

    def threshold(self, channel: str) -> float:
        """Seconds within which a contact of ``channel`` counts as answered in time.

        >>> from collections import Counter
        >>> from finpulse.config.settings import Settings
        >>> ServiceLevel(Settings(), None, Counter()).threshold("chat")  # no rules needed
        30.0
        """
        return self.thresholds.get(channel, DEFAULT_THRESHOLD_S)

    def add(
        self,
        meta: PartitionRecord,
        ev: Interaction,
        record: RawRecord,
        ms: int,
        *,
        repeat: bool,
        complaint: bool,
        touched: set[tuple[int, str]],
    ) -> None:
        """Count one contact into its minute aggregate and SLA ring (late ones only counted).

        >>> from collections import Counter
        >>> from finpulse.models.events import Interaction
        >>> from tests.factories import encode, interaction
        >>> ev = Interaction.model_validate_json(encode(interaction()))
        >>> level = ServiceLevel(Settings(), None, Counter())  # no rules needed
        >>> meta, touched = PartitionRecord(), set()
        >>> rec = RawRecord("finpulse.interactions", 0, 41, b"", None, None)
        >>> level.add(meta, ev, rec, 5_000, repeat=False, complaint=False, touched=touched)
        >>> sorted(touched), meta.version, meta.sla.minutes
        ([(0, '0|call_center|individual|retail')], 42, {'call_center': {0: [1, 1]}})
        """
        contact = Contact(
            wait_s=ev.wait_seconds,
            handle_s=ev.handle_seconds,
            resolved=ev.resolved,
            fcr=ev.first_contact_resolution,
            transfers=ev.transfers or 0,
            complaint=complaint,
            repeat=repeat,
        )
        channel = ev.channel.value
        threshold = self.threshold(channel)
        minute = minute_of(ms)
        key = f"{minute}|{channel}|{ev.customer_type.value}|{ev.segment.value}"
        aggs = meta.minute_aggregates
        closed = meta.sla.closed_minute_ms
        floor = meta.aggregate_floor_ms
        if floor is not None and minute < floor:
            self.counts["service.late_dropped"] += 1
        else:
            add_contact(aggs.setdefault(key, empty_agg()), contact, threshold)
            touched.add((record.partition, key))
            meta.version = record.offset + 1
        if closed is None or minute > closed:
            in_sl = ev.wait_seconds <= threshold
            record_sla_contact(meta.sla, channel, minute, in_sl)
        else:
            self.counts["service.late_for_sla"] += 1

    def write_minutes(
        self, parts: BatchCache, touched: set[tuple[int, str]], out: BatchOutput
    ) -> None:
        """Queue the rows of the touched aggregates that still exist (sorted by key).

        >>> from collections import Counter
        >>> from finpulse.config.settings import Settings
        >>> from finpulse.streams.core.batch import BatchOutput
        >>> from finpulse.streams.core.state import MemoryState
        >>> parts = BatchCache(MemoryState("p"))
        >>> p0 = parts.get("p0", PartitionRecord)
        >>> p0.minute_aggregates["0|chat|individual|retail"], p0.version = [1] * 11, 5
        >>> out = BatchOutput()
        >>> level = ServiceLevel(Settings(), None, Counter())  # no rules needed
        >>> level.write_minutes(parts, {(0, "0|chat|individual|retail"), (0, "gone")}, out)
        >>> [(r[1], r[5], r[-2]) for r in out.rows[SERVICE_MINUTES_TABLE]]
        [('chat', 1, 5)]
        """
        rows = []
        for partition, key in sorted(touched):
            meta = parts.get(f"p{partition}", PartitionRecord)
            agg = meta.minute_aggregates.get(key)
            if agg is None:
                continue
            channel = key.split("|")[1]
            version = meta.version
            rows.append(minute_row(key, agg, partition, version, self.threshold(channel)))
        out.add_rows(SERVICE_MINUTES_TABLE, rows)

    def close_minutes(self, partition: int, meta: PartitionRecord, out: BatchOutput) -> None:
        """Judge the minutes the partition's watermark closed, then prune old aggregates.

        >>> from collections import Counter
        >>> from finpulse.config.policy import load_policy
        >>> from finpulse.config.settings import Settings
        >>> from finpulse.streams.core.batch import BatchOutput
        >>> from finpulse.streams.stages.rules import RuleEngine
        >>> level = ServiceLevel(Settings(), RuleEngine(load_policy()), Counter())
        >>> meta = PartitionRecord(watermark_ms=10 * MINUTE_MS)
        >>> meta.sla.minutes["chat"] = {0: [30, 2]}
        >>> level.close_minutes(0, meta, BatchOutput())
        >>> meta.sla.closed_minute_ms, meta.sla.breached_run
        (480000, {})
        """
        s = self.settings
        grace_ms = int(s.service_grace_s * 1000)
        wm = meta.watermark_ms
        if wm is None:
            return  # no event seen on the partition
        checks = advance_sla(
            meta.sla,
            wm,
            window_minutes=s.service_window_minutes,
            target=s.service_level_target,
            z=s.service_confidence_z,
            min_contacts=s.service_min_contacts,
            grace_ms=grace_ms,
        )
        for check in checks:
            if self.keep_sla_checks:
                self.sla_checks.append((partition, check))
            out.candidates.extend(self._judge(partition, check, wm, grace_ms))
        prune_aggregates(meta)

    def _judge(
        self, partition: int, check: SlaCheck, wm: int, grace_ms: int
    ) -> list[AlertCandidate]:
        """The ``on: channel_minute`` candidates of one closed minute of one channel."""
        s = self.settings
        # Event time at which the minute closed: independent of how events were batched,
        # so a replay raises the same alerts at the same times.
        ts = from_ms(min(wm, check.minute_ms + MINUTE_MS + grace_ms))
        features = {
            "channel": check.channel,
            "service_level": round(check.service_level, 4),
            "service_level_upper_bound": round(check.upper_bound, 4),
            "contacts": check.contacts,
            "answered_in_sl": check.answered,
            "breached": check.breached,
            "consecutive_below_target": check.consecutive,
            "target": s.service_level_target,
            "window_minutes": s.service_window_minutes,
            "minute": from_ms(check.minute_ms).isoformat(),
            "partition": partition,
        }
        return self.engine.evaluate(
            "channel_minute",
            features,
            subject_id=check.channel,
            ts=ts,
            source_event_id=no_card_runs(f"sla|{check.channel}|{check.minute_ms}|p{partition}"),
            channel=check.channel,
            score=round(100 * check.service_level, 2),
            context={
                "threshold_s": self.threshold(check.channel),
                "partition": partition,
                "partitions": s.topic_partitions,
            },
        )
