"""Service level: per-partition minute aggregates and the SLA minute counts of each channel.

Each interaction adds to its minute aggregate (key ``{minute}|{channel}|{type}|{segment}`` in
the partition record's ``minute_aggregates``) and to its channel's SLA minute ring
(``sla.minutes``). At the end of a batch the touched aggregates are written whole as rows (the
record's ``version`` as version), the minutes the watermark has passed (with their survey answers,
:mod:`~finpulse.streams.stages.service.csat_drop`) are sent to their
channels' owners on ``finpulse.channel_minutes`` (judged there:
:mod:`~finpulse.streams.stages.service.channel_level`) and aggregates older than
:data:`AGG_RETENTION_MS` before the last closed minute are dropped.

>>> from collections import Counter
>>> from finpulse.config.settings import Settings
>>> level = ServiceLevel(Settings(), Counter())
>>> level.threshold("chat"), level.threshold("no_such_channel")
(30.0, 20.0)
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.events import (
    ChannelMinutes,
    Interaction,
    MinuteCount,
    MinuteSurveys,
    ServiceChannel,
)
from finpulse.models.ids import no_card_runs
from finpulse.sinks.tables import SERVICE_MINUTES_TABLE
from finpulse.streams.core.batch import BatchOutput, Outgoing
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.topics import CHANNEL_MINUTES
from finpulse.streams.stages.service.cache import BatchCache
from finpulse.streams.stages.service.records import PartitionRecord
from finpulse.streams.stages.service.windows import (
    AGG_FIELDS,
    MINUTE_MS,
    Contact,
    add_contact,
    close_minutes,
    empty_agg,
    from_ms,
    minute_of,
    record_sla_contact,
    take_through,
)

log = logging.getLogger(__name__)

AGG_RETENTION_MS = 5 * MINUTE_MS  # minute aggregates kept for late events after closing
DEFAULT_THRESHOLD_S = 20.0  # answer-in-time threshold of a channel without a setting
CHANNELS = tuple(c.value for c in ServiceChannel)  # every channel hears of every close


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
    """Minute aggregates and SLA minute counts of the partitions a worker holds."""

    def __init__(self, settings: Settings, counts: Counter[str]) -> None:
        self.settings = settings
        self.counts = counts  # shared with the stage
        self.thresholds = dict(settings.service_level_thresholds_s)

    def threshold(self, channel: str) -> float:
        """Seconds within which a contact of ``channel`` counts as answered in time.

        >>> from collections import Counter
        >>> from finpulse.config.settings import Settings
        >>> ServiceLevel(Settings(), Counter()).threshold("chat")
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
        >>> level = ServiceLevel(Settings(), Counter())
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
        >>> p0 = parts.get("p0", PartitionRecord, partition=0)
        >>> p0.minute_aggregates["0|chat|individual|retail"], p0.version = [1] * 11, 5
        >>> out = BatchOutput()
        >>> level = ServiceLevel(Settings(), Counter())
        >>> level.write_minutes(parts, {(0, "0|chat|individual|retail"), (0, "gone")}, out)
        >>> [(r[1], r[5], r[-2]) for r in out.rows[SERVICE_MINUTES_TABLE]]
        [('chat', 1, 5)]
        """
        rows = []
        for partition, key in sorted(touched):
            meta = parts.get(f"p{partition}", PartitionRecord, partition=partition)
            agg = meta.minute_aggregates.get(key)
            if agg is None:
                continue
            channel = key.split("|")[1]
            version = meta.version
            rows.append(minute_row(key, agg, partition, version, self.threshold(channel)))
        out.add_rows(SERVICE_MINUTES_TABLE, rows)

    def close_minutes(self, partition: int, meta: PartitionRecord, out: BatchOutput) -> None:
        """Send the minutes the partition's watermark closed to their channels' owners, then
        prune old aggregates.

        Every channel gets a message on each close, with or without contacts: the owner
        learns how far this partition has closed (:mod:`.pooling`). The messages are part
        of the batch's output, so they are published before its offsets commit, and a
        re-run after a crash sends the same minutes again (the owner sets, never adds).

        >>> from collections import Counter
        >>> from finpulse.config.settings import Settings
        >>> from finpulse.streams.core.batch import BatchOutput
        >>> level = ServiceLevel(Settings(topic_partitions=4), Counter())
        >>> t0 = 1_767_607_200_000  # 2026-01-05T10:00Z
        >>> meta = PartitionRecord(watermark_ms=t0 + 10 * MINUTE_MS)
        >>> meta.sla.minutes["chat"] = {t0: [30, 2]}
        >>> out = BatchOutput()
        >>> level.close_minutes(3, meta, out)
        >>> meta.sla.closed_minute_ms - t0, meta.sla.minutes, len(out.messages)
        (480000, {}, 6)
        >>> [m for m in out.messages if m.key == b"chat"][0].value[:40]
        b'{"event_id":"chat|p3|2026-01-05T10:08:00'
        """
        wm = meta.watermark_ms
        if wm is None:
            return  # no event seen on the partition
        grace_ms = int(self.settings.service_grace_s * 1000)
        closed = close_minutes(meta.sla, wm, grace_ms)
        if closed is not None:
            through, cells = closed
            surveys = take_through(meta.sla.surveys, through)
            out.messages.extend(
                channel_minutes_message(
                    channel,
                    partition,
                    through,
                    cells.get(channel, {}),
                    surveys.get(channel, {}),
                    ts_ms=through + MINUTE_MS + grace_ms,
                    partitions=self.settings.topic_partitions,
                )
                for channel in CHANNELS
            )
        prune_aggregates(meta)


def channel_minutes_message(
    channel: str,
    source: int,
    through: int,
    cells: dict[int, list[int]],
    surveys: dict[int, list[int]],
    *,
    ts_ms: int,
    partitions: int,
) -> Outgoing:
    """The ``finpulse.channel_minutes`` message of one channel's closed minutes, on the
    channel's partition (the same bytes whenever the same minutes are closed again).

    >>> t0 = 1_767_607_200_000  # 2026-01-05T10:00Z
    >>> m = channel_minutes_message("app", 1, t0, {t0: [3, 2]}, {t0: [7, 2]}, ts_ms=t0 + 80_000,
    ...                             partitions=2)
    >>> m.topic, m.key, m.partition == key_partition(b"app", 2)
    ('finpulse.channel_minutes', b'app', True)
    """
    closed = from_ms(through).isoformat()
    value = ChannelMinutes(
        event_id=f"{channel}|p{source}|{closed}",
        ts=from_ms(ts_ms),
        channel=ServiceChannel(channel),
        source_partition=source,
        closed_minute=from_ms(through),
        minutes=[
            MinuteCount(minute=from_ms(m), contacts=n, answered=a)
            for m, (n, a) in sorted(cells.items())
        ],
        surveys=[
            MinuteSurveys(minute=from_ms(m), answers=n, answer_sum=total)
            for m, (total, n) in sorted(surveys.items())
        ],
    )
    key = channel.encode()
    return Outgoing(
        CHANNEL_MINUTES, key, value.model_dump_json().encode(), key_partition(key, partitions)
    )
