"""The channel owner: one judgement of each channel's service level over all its contacts.

Runs on ``finpulse.channel_minutes`` (event kind ``channel_minute``), keyed by channel, so the
worker that owns a channel's partition of that topic is the one place the channel is judged.
Per batch, every message's counts are pooled into its channel's :class:`ChannelRecord`
(:mod:`~finpulse.streams.stages.service.pooling`: set per source partition and minute, so a
re-delivered message changes nothing), the minutes that became complete are judged and
the ``on: channel_minute`` rules (``service.sla_breach``) evaluated. The minutes' survey
answers are pooled the same way and the judged minutes fed to the channel's CSAT-drop
detector (:mod:`~finpulse.streams.stages.service.csat_drop`, ``service.csat_drop``). The
record is state like any other (table ``service_channels``, changelog, committed with the
re-delivery guard of this topic), so a restarted owner resumes both judgements where they
were.

A candidate's time is the event time at which its minute closed (its end plus the grace),
whatever the batching, so a re-run raises the same alerts with the same ids.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import ClassVar

from finpulse.config.settings import Settings
from finpulse.models.alerts import AlertCandidate
from finpulse.models.events import ChannelMinutes
from finpulse.streams.core.batch import BatchOutput, KeyedState, Valid
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.stages.rules import RuleEngine
from finpulse.streams.stages.service.csat_drop import detect, pool_surveys
from finpulse.streams.stages.service.names import CHANNELS_STATE
from finpulse.streams.stages.service.pooling import judge, pool
from finpulse.streams.stages.service.records import ChannelRecord
from finpulse.streams.stages.service.service_level import DEFAULT_THRESHOLD_S
from finpulse.streams.stages.service.windows import MINUTE_MS, SlaCheck, from_ms, to_ms

log = logging.getLogger(__name__)


class ChannelLevelStage:
    """Pools the channel minutes of every source partition and judges them (module text).

    >>> from finpulse.config.policy import load_policy
    >>> from finpulse.streams.core.state import MemoryState
    >>> stage = ChannelLevelStage(Settings(topic_partitions=1), RuleEngine(load_policy()),
    ...                           MemoryState(CHANNELS_STATE))
    >>> stage.name, sorted(stage.kinds)
    ('channel_level', ['channel_minute'])
    """

    name: ClassVar[str] = "channel_level"
    kinds: ClassVar[frozenset[str]] = frozenset({"channel_minute"})
    state_names: ClassVar[tuple[str, ...]] = (CHANNELS_STATE,)

    def __init__(self, settings: Settings, engine: RuleEngine, channels: KeyedState) -> None:
        self.settings = settings
        self.engine = engine
        self.channels = channels
        self.counts: Counter[str] = Counter()
        self.checks: list[SlaCheck] = []  # every judged minute, when kept (evaluation)
        self.keep_checks = False

    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        touched: dict[str, tuple[ChannelRecord, ChannelMinutes, RawRecord]] = {}
        for event, record in batch:
            assert isinstance(event, ChannelMinutes)
            channel = event.channel.value
            rec = (
                touched[channel][0]
                if channel in touched
                else self._record(channel, record.partition)
            )
            cells = {to_ms(c.minute): [c.contacts, c.answered] for c in event.minutes}
            late = pool(
                rec,
                source=event.source_partition,
                closed=to_ms(event.closed_minute),
                cells=cells,
            )
            self.counts["service.pooled_late_cells"] += late
            surveys = {to_ms(c.minute): [c.answer_sum, c.answers] for c in event.surveys}
            late = pool_surveys(rec, source=event.source_partition, cells=surveys)
            self.counts["service.pooled_late_surveys"] += late
            touched[channel] = (rec, event, record)
        s = self.settings
        for channel, (rec, event, record) in sorted(touched.items()):
            checks = judge(
                rec,
                channel,
                partitions=s.topic_partitions,
                wait_ms=int(s.service_pool_wait_s * 1000),
                window_minutes=s.service_window_minutes,
                target=s.service_level_target,
                z=s.service_confidence_z,
                min_contacts=s.service_min_contacts,
            )
            for check in checks:
                if self.keep_checks:
                    self.checks.append(check)
                out.candidates.extend(self._candidates(check, rec, event.event_id))
            if rec.sla.closed_minute_ms is not None:
                for minute, mean in detect(rec, rec.sla.closed_minute_ms):
                    self.counts["service.csat_drift"] += 1
                    out.candidates.extend(self._csat_drop(channel, minute, mean, event.event_id))
            self.channels.put(channel, rec, record)

    def _record(self, channel: str, partition: int) -> ChannelRecord:
        rec = self.channels.get(channel, partition=partition)
        return ChannelRecord() if rec is None else rec

    def _csat_drop(
        self, channel: str, minute_ms: int, mean: float, event_id: str
    ) -> list[AlertCandidate]:
        """The ``service.csat_drop`` candidates of a drop detected in one pooled minute."""
        closed_ms = minute_ms + MINUTE_MS + int(self.settings.service_grace_s * 1000)
        return self.engine.evaluate(
            "model",
            {"csat_drift_detected": True, "channel": channel, "csat": mean},
            subject_id=channel,
            ts=from_ms(closed_ms),
            source_event_id=event_id,
            channel=channel,
            context={"minute": from_ms(minute_ms).isoformat(), "detector": "page_hinkley"},
        )

    def _candidates(
        self, check: SlaCheck, rec: ChannelRecord, event_id: str
    ) -> list[AlertCandidate]:
        """The ``on: channel_minute`` candidates of one judged minute of one channel.
        ``event_id`` (the message that completed it) puts the alert's state on the
        channel's partition."""
        s = self.settings
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
            "source_partitions": len(rec.sources),
        }
        closed_ms = check.minute_ms + MINUTE_MS + int(s.service_grace_s * 1000)
        return self.engine.evaluate(
            "channel_minute",
            features,
            subject_id=check.channel,
            ts=from_ms(closed_ms),
            source_event_id=event_id,
            channel=check.channel,
            score=round(100 * check.service_level, 2),
            context={
                "threshold_s": s.service_level_thresholds_s.get(check.channel, DEFAULT_THRESHOLD_S),
                "partitions": s.topic_partitions,
                "contacts": check.contacts,  # pooled over the window and every partition
                "answered_in_sl": check.answered,
            },
        )
