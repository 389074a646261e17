"""Service figures of a simulator run, replayed offline through the worker's own stages.

The simulated stream goes through the same :class:`~finpulse.streams.worker.pipeline.Pipeline` as
live (``default_stages``, :class:`~finpulse.streams.core.state.MemoryState`), partitioned like the
Kafka producer (murmur2 of the key), in small event-time slices processed per topic the way the
agents batch them. Figures:

* ``outages``: for each injected ``channel_outage``, the detection delay (simulated minutes
  from its start to the first SLA alert candidate on that channel, i.e. the event time at
  which the channel's owner judged the third breached minute), or ``None`` if missed;
* ``sla_false_alarms``: SLA alerts (as published by the alert manager, after dedup) and SLA
  candidate firings outside every outage window (window = outage start to its end plus the
  minutes the pooled window needs to recover);
* ``satisfaction``: online MAE of the model and of the running-mean baseline after warm-up,
  the relative improvement, ROC AUC of P(dissatisfied), and satisfaction-drift alerts (those
  on an outage's channel within 4 h after it are attributed to it: surveys come late);
* ``friction``: contacts within 24 h of a risk alert on the customer, per risk rule.

>>> figs = service_figures(1, n_events=3000, sim_span_s=3600, n_customers=300)
>>> sorted(figs)  # doctest: +NORMALIZE_WHITESPACE
['complaints', 'events', 'friction', 'outages', 'partitions', 'risk_scoring', 'satisfaction',
 'seed', 'sla_false_alarms', 'targets']
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from finpulse.config.settings import Settings
from finpulse.sinks.tables import COMPLAINTS_TABLE, SERVICE_FRICTION_TABLE
from finpulse.streams.core.batch import BatchOutput, Stage, StateFactory
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.partitioning import key_partition
from finpulse.streams.core.state import MemoryState
from finpulse.streams.core.topics import ALERTS, FEEDBACK, INPUT_TOPICS, INTERACTIONS, TRANSACTIONS
from finpulse.streams.stages.service.names import RULE_CSAT_DROP, RULE_SLA
from finpulse.streams.stages.service.stage import ServiceStage
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.loopback import Loopback
from finpulse.streams.worker.pipeline import Pipeline

SLICE_MS = 2000  # event-time slice per replay step (like a batch window)
DETECTION_TARGET_MIN = 5.0
MAE_IMPROVEMENT_TARGET = 0.20
SURVEY_DELAY = timedelta(hours=4)
_ORDER = (TRANSACTIONS, INTERACTIONS, FEEDBACK)


def partition_of(key: bytes | None, partitions: int, fallback: int) -> int:
    """Kafka's default partitioner (murmur2 of the key); keyless records round-robin.

    >>> partition_of(b"c1-000001", 4, 0) in range(4)
    True
    """
    if key is None:
        return fallback % partitions
    return key_partition(key, partitions)


def replay(pipeline: Pipeline, events: Any, partitions: int) -> Iterator[BatchOutput]:
    """Feed simulator events through ``pipeline`` in event-time slices; yield each output
    (the channel minutes each slice sends come back at once, :mod:`.loopback`)."""
    loop = Loopback(pipeline)
    offsets: Counter[tuple[str, int]] = Counter()
    pending: dict[str, list[RawRecord]] = defaultdict(list)
    slice_end: datetime | None = None

    def flush() -> Iterator[BatchOutput]:
        for topic in _ORDER:
            records = pending.pop(topic, None)
            if records:
                yield from loop.process(INPUT_TOPICS[topic], records)

    for n, ev in enumerate(events):
        if slice_end is None or ev.ts >= slice_end:
            yield from flush()
            slice_end = ev.ts + timedelta(milliseconds=SLICE_MS)
        p = partition_of(ev.key, partitions, n)
        offset = offsets[(ev.topic, p)]
        offsets[(ev.topic, p)] += 1
        pending[ev.topic].append(RawRecord(ev.topic, p, offset, ev.value, ev.key, None))
    yield from flush()


def without_risk_scoring(settings: Settings, state: StateFactory) -> Sequence[Stage]:
    """The worker's stages without the risk scoring stage: the SLA path (service stage,
    channel owner, alert manager) is untouched, the run is several times faster, and the
    figures fed by risk alerts (friction, the satisfaction model's risk context) are not
    the worker's.

    >>> from finpulse.streams.core.state import MemoryState
    >>> s = Settings(restore_model_checkpoints=False, satisfaction_checkpoint_every=0)
    >>> [stage.name for stage in without_risk_scoring(s, MemoryState)]
    ['service', 'channel_level', 'model_health', 'rules', 'service_context', 'alerting']
    """
    return [stage for stage in default_stages(settings, state) if stage.name != "risk"]


def service_figures(
    seed: int,
    *,
    n_events: int = 200_000,
    sim_span_s: float = 172_800.0,
    n_customers: int = 2000,
    partitions: int = 4,
    settings: Settings | None = None,
    start: datetime | None = None,
    risk: bool = True,
) -> dict[str, Any]:
    """Replay one simulator run and measure the service figures (see module doc); with
    ``risk=False`` through :func:`without_risk_scoring` (the SLA figures are the same)."""
    from finpulse.streams.simulator import Simulator

    base = settings or Settings()
    settings = base.model_copy(
        update={"topic_partitions": partitions, "satisfaction_checkpoint_every": 0}
    )
    sim = Simulator(
        seed=seed,
        start=start or datetime(2026, 1, 5, tzinfo=UTC),
        n_events=n_events,
        sim_span_s=sim_span_s,
        n_customers=n_customers,
    )
    stages = default_stages if risk else without_risk_scoring
    pipeline = Pipeline(settings, stages, state=MemoryState)
    stage = next(s for s in pipeline.stages if isinstance(s, ServiceStage))
    sla_candidates: list[tuple[datetime, str]] = []
    sla_alerts: list[tuple[datetime, str]] = []
    drift_alerts: list[tuple[datetime, str]] = []
    friction: dict[str, set[str]] = defaultdict(set)
    friction_contacts: Counter[str] = Counter()
    complaint_status: Counter[str] = Counter()
    for out in replay(pipeline, sim.events(), partitions):
        for cand in out.candidates:
            if cand.rule_id == RULE_SLA:
                sla_candidates.append((cand.ts, cand.subject_id))
        for msg in out.messages:
            if msg.topic != ALERTS or msg.value is None:
                continue
            alert = json.loads(msg.value)
            if alert["status"] != "new":
                continue
            seen = datetime.fromisoformat(alert["first_seen"])
            if alert["rule_id"] == RULE_SLA:
                sla_alerts.append((seen, alert["subject_id"]))
            elif alert["rule_id"] == RULE_CSAT_DROP:
                drift_alerts.append((seen, alert["subject_id"]))
        for row in out.rows.get(SERVICE_FRICTION_TABLE, ()):
            friction[row[5]].add(row[2])
            friction_contacts[row[5]] += 1
        for row in out.rows.get(COMPLAINTS_TABLE, ()):
            complaint_status[row[1]] += 1

    recover = timedelta(minutes=settings.service_window_minutes + 3)
    outages = []
    windows = []
    for truth in sim.ground_truth():
        if truth["pattern"] != "channel_outage":
            continue
        start_ts = datetime.fromisoformat(str(truth["start_ts"]))
        end_ts = datetime.fromisoformat(str(truth["end_ts"]))
        channel = str(truth["channel"])
        windows.append((channel, start_ts, end_ts + recover))
        hits = [ts for ts, ch in sla_candidates if ch == channel and start_ts <= ts <= end_ts]
        delay = (min(hits) - start_ts).total_seconds() / 60 if hits else None
        outages.append(
            {
                "channel": channel,
                "start_ts": start_ts.isoformat(),
                "minutes": round((end_ts - start_ts).total_seconds() / 60, 1),
                "wait_factor": truth.get("wait_factor"),
                "detection_delay_min": None if delay is None else round(delay, 2),
                "detected_within_target": delay is not None and delay <= DETECTION_TARGET_MIN,
            }
        )

    def clean(ts: datetime, channel: str) -> bool:
        return not any(ch == channel and lo <= ts <= hi for ch, lo, hi in windows)

    def after_outage(ts: datetime, channel: str) -> bool:
        # surveys arrive minutes to hours after the contact: a drop shows after the outage
        return any(ch == channel and lo <= ts <= hi + SURVEY_DELAY for ch, lo, hi in windows)

    false_alerts = [(ts, ch) for ts, ch in sla_alerts if clean(ts, ch)]
    false_candidates = [(ts, ch) for ts, ch in sla_candidates if clean(ts, ch)]
    sat = stage.monitor.figures()
    after = sat.get("mae_after_warmup")
    baseline_after = sat.get("mae_baseline_after_warmup")
    improvement = 1 - after / baseline_after if after is not None and baseline_after else None
    return {
        "seed": seed,
        "events": n_events,
        "partitions": partitions,
        "risk_scoring": risk,
        "outages": outages,
        "sla_false_alarms": {
            "alerts": len(false_alerts),
            "candidate_minutes": len(false_candidates),
            "by_channel": dict(Counter(ch for _, ch in false_alerts)),
        },
        "satisfaction": {
            "surveys_learned": stage.monitor.n,
            "warmup": settings.satisfaction_warmup,
            **{k: round(v, 4) for k, v in sat.items()},
            "mae_improvement_vs_baseline": None if improvement is None else round(improvement, 4),
            "model_version": stage.version,
            "drift_alerts": len(drift_alerts),
            "drift_alerts_after_outage": sum(1 for ts, ch in drift_alerts if after_outage(ts, ch)),
            "outages_with_drift_alert": sum(
                1
                for ch, lo, hi in windows
                if any(c == ch and lo <= ts <= hi + SURVEY_DELAY for ts, c in drift_alerts)
            ),
        },
        "friction": {
            "contacts": sum(friction_contacts.values()),
            "by_rule": {
                rule: {"customers": len(friction[rule]), "contacts": friction_contacts[rule]}
                for rule in sorted(friction)
            },
        },
        "complaints": dict(complaint_status),
        "targets": {
            "all_outages_detected_within_5_min": bool(outages)
            and all(o["detected_within_target"] for o in outages),
            "no_sla_alert_in_clean_periods": not false_alerts,
            "mae_20pct_below_baseline": improvement is not None
            and improvement >= MAE_IMPROVEMENT_TARGET,
        },
    }
