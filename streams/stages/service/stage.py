"""The service stages: metrics, complaints, satisfaction, customer view, service x risk.

Two stages, built together by :func:`service_stages` because they share the customer state:

* :class:`ServiceStage` runs **before** the rule stage. Per batch it updates, for every
  partition it touches, the minute aggregates per (channel, segment), the SLA windows and
  the complaint book, and per customer the service context; it scores each interaction
  with the satisfaction model, learns from surveys, and annotates each interaction's
  ``features`` (``contacts_24h``, ``risk_alert_24h``, ...) so the policy's ``on: interaction``
  rules see them. It evaluates the ``channel_minute``, ``complaint``, ``customer`` and
  ``model`` rules itself.
* :class:`ServiceContextStage` runs **after** the rule stage (before alerting). It records
  the risk alerts raised on each customer's transactions (the "last risk alert" state that
  friction needs) and puts the other side's context on every candidate of a customer: the
  service context on risk alerts, the risk context on service alerts.

**Why the SLA is judged per partition.** Interactions are keyed by customer, so each
partition holds a uniform random sample of every channel's contacts, and a channel outage
shows in every partition's sample. Each partition therefore judges the service level of its
own share (pooled over a few minutes, with a confidence bound, see
:mod:`streams.stages.service.windows`): no cross-worker state, no extra topic, and the state
survives rebalances through the changelog of the partition it belongs to. With one worker
the alert is raised by the first partition to see ``N`` breached minutes; with several
workers each may raise it, but the alert manager folds them (same rule and subject =
channel), and ClickHouse holds the exact channel-wide service level as SUM over the
per-partition rows (view ``service_channel_minutes``). The price is statistical: each
partition sees ``1/P`` of the volume, so the minimum-contacts guard and the confidence
bound work on smaller samples; an outage still breaches every partition within a minute or
two (measured in ``finpulse evaluate-service``).

**Exactly-once effect on state.** The partition record keeps the last offset applied per
input kind; a re-delivered event (offset not above it) changes nothing, so counters never
double count, and the minute rows, rewritten whole with the offset as version, stay exact.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from config.settings import Settings
from models.events import Feedback, Interaction, Transaction
from models.ids import no_card_runs
from models.satisfaction import SatisfactionModel, SatisfactionMonitor, interaction_features
from sinks.tables import (
    COMPLAINTS_TABLE,
    CUSTOMER_STATUS_TABLE,
    MODEL_METRICS_TABLE,
    SERVICE_FRICTION_TABLE,
    SERVICE_MINUTES_TABLE,
)
from streams.core.batch import BatchOutput, KeyedState, StateFactory, Valid
from streams.core.decode import RawRecord
from streams.stages.rules import RuleEngine
from streams.stages.service import customers as cu
from streams.stages.service import pending as survey
from streams.stages.service.cache import BatchCache
from streams.stages.service.checkpoint import Checkpoint
from streams.stages.service.complaints import ComplaintBook, ComplaintChange
from streams.stages.service.context import ServiceContextStage
from streams.stages.service.names import CUSTOMERS_STATE, PARTITIONS_STATE, RISK_STATE
from streams.stages.service.windows import (
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
    to_ms,
)

log = logging.getLogger(__name__)

EARLY_CLOSES_KEPT = 8  # complaint_closed events kept per customer until their complaint arrives

AGG_RETENTION_MS = 5 * MINUTE_MS  # minute aggregates kept for late events after closing
CHECKPOINT_FILE = "models/satisfaction.pkl"


class ServiceStage:
    """Service metrics, complaints, satisfaction and customer view (see module doc)."""

    name: ClassVar[str] = "service"
    kinds: ClassVar[frozenset[str]] = frozenset({"transaction", "interaction", "feedback"})
    state_names: ClassVar[tuple[str, ...]] = (PARTITIONS_STATE, CUSTOMERS_STATE, RISK_STATE)

    def __init__(
        self,
        settings: Settings,
        engine: RuleEngine,
        partitions: KeyedState,
        customers: KeyedState,
        risks: KeyedState,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.partitions = partitions
        self.customers = customers
        self.risks = risks
        self.checkpoint = checkpoint
        self.model = SatisfactionModel()
        self.monitor = SatisfactionMonitor(warmup=settings.satisfaction_warmup)
        self.counts: Counter[str] = Counter()
        self.sla_checks: list[tuple[int, SlaCheck]] = []  # (partition, check), for evaluation
        self.keep_sla_checks = False
        self._restored = False
        self._thresholds = dict(settings.service_level_thresholds_s)
        self._ttl_ms = int(settings.satisfaction_pending_ttl_s * 1000)

    # ------------------------------------------------------------------------------ batch
    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        self._restore()
        parts = BatchCache(self.partitions)
        custs = BatchCache(self.customers)
        book = ComplaintBook(
            parts, self.settings.complaint_deadline_days, self.settings.complaint_due_soon_days
        )
        touched_parts: dict[int, RawRecord] = {}
        touched_aggs: set[tuple[int, str]] = set()
        touched_custs: dict[str, tuple[RawRecord, int]] = {}
        changes: list[ComplaintChange] = []
        learned = 0
        last_ms = 0
        for event, record in batch:
            meta = parts.get(f"p{record.partition}", dict)
            offsets = meta.setdefault("off", {})
            if record.offset <= offsets.get(kind, -1):
                self.counts["service.redelivered_skipped"] += 1
                continue
            offsets[kind] = record.offset
            ms = to_ms(event.ts)  # type: ignore[attr-defined]
            last_ms = max(last_ms, ms)
            meta["wm"] = max(meta.get("wm", ms), ms)
            parts.touch(f"p{record.partition}", record)
            touched_parts[record.partition] = record
            cid = event.customer_id  # type: ignore[attr-defined]
            cust = custs.get(cid, dict)
            if isinstance(event, Interaction):
                self._interaction(event, record, ms, meta, cust, book, out, touched_aggs, changes)
                touched_custs[cid] = (record, ms)
            elif isinstance(event, Transaction):
                cu.note_activity(cust, ms, event.customer_type.value, event.segment.value)
                touched_custs[cid] = (record, ms)
            elif isinstance(event, Feedback) and (
                "ct" in cust or event.kind.value == "complaint_closed"
            ):
                if self._feedback(event, record, ms, cust, book, out, changes):
                    learned += 1
                touched_custs[cid] = (record, max(ms, cust.get("l", ms)))
        # rows first: closing minutes prunes old aggregates, even ones this batch touched
        self._minute_rows(parts, touched_aggs, out)
        for partition, record in touched_parts.items():
            meta = parts.get(f"p{partition}", dict)
            self._close_minutes(partition, meta, out)
            changes.extend(book.age(partition, meta["wm"], record))
        self._complaint_changes(changes, out)
        for cid, (record, ms) in touched_custs.items():
            cust = custs.get(cid, dict)
            if "ct" not in cust:  # not seen yet: only an early complaint close to keep
                if cust:
                    custs.touch(cid, record)
                continue
            self._customer_status(cid, cust, record, ms, out)
            custs.touch(cid, record)
        if learned:
            rows = self.monitor.rows(from_ms(last_ms), self.version)
            # metric_id: deterministic per (model, metric, time, n), as the risk metrics
            out.add_rows(
                MODEL_METRICS_TABLE,
                [(no_card_runs(f"{r[1]}:{r[2]}:{last_ms}:{r[4]}"), *r) for r in rows],
            )
            self._maybe_checkpoint(learned)
        parts.flush()
        custs.flush()

    @property
    def version(self) -> str:
        return self.model.model_version

    # ------------------------------------------------------------------------ interactions
    def _interaction(
        self,
        ev: Interaction,
        record: RawRecord,
        ms: int,
        meta: dict[str, Any],
        cust: dict[str, Any],
        book: ComplaintBook,
        out: BatchOutput,
        touched_aggs: set[tuple[int, str]],
        changes: list[ComplaintChange],
    ) -> None:
        channel, segment, ctype = ev.channel.value, ev.segment.value, ev.customer_type.value
        partition = record.partition
        cu.note_activity(cust, ms, ctype, segment)
        prior = cu.note_contact(cust, ms)
        is_complaint = ev.complaint_id is not None or ev.interaction_type.value == "complaint"
        threshold = self._thresholds.get(channel, 20.0)
        contact = Contact(
            wait_s=ev.wait_seconds,
            handle_s=ev.handle_seconds,
            resolved=ev.resolved,
            fcr=ev.first_contact_resolution,
            transfers=ev.transfers or 0,
            complaint=is_complaint,
            repeat=prior > 0,
        )
        minute = minute_of(ms)
        key = f"{minute}|{channel}|{ctype}|{segment}"
        aggs = meta.setdefault("agg", {})
        sla = meta.setdefault("sla", {})
        closed = sla.get("closed")
        if minute < meta.get("agg_floor", minute):
            self.counts["service.late_dropped"] += 1
        else:
            agg = aggs.setdefault(key, empty_agg())
            add_contact(agg, contact, threshold)
            touched_aggs.add((partition, key))
            meta["ver"] = record.offset + 1
        if closed is None or minute > closed:
            record_sla_contact(
                sla.setdefault("win", {}), channel, minute, ev.wait_seconds <= threshold
            )
        else:
            self.counts["service.late_for_sla"] += 1

        # complaints
        if is_complaint:
            complaint_id = ev.complaint_id or ev.event_id
            open_complaints = cust.setdefault("cm", {})
            if complaint_id in open_complaints:
                open_complaints[complaint_id][1] = [*open_complaints[complaint_id][1], ev.event_id][
                    -10:
                ]
            else:
                info = {
                    "customer_id": ev.customer_id,
                    "customer_type": ctype,
                    "segment": segment,
                    "channel": channel,
                }
                opened = book.open(partition, ms, complaint_id, ev.event_id, info, record)
                if opened:
                    open_complaints[complaint_id] = [ms // cu.DAY_MS, [ev.event_id]]
                    changes.extend(opened)
                    # Topics are consumed independently: the closing feedback may have been
                    # processed first (e.g. the complaint re-delivered after a crash).
                    early = cust.get("cx", {})
                    hit = early.pop(ev.event_id, None) or early.pop(complaint_id, None)
                    if hit is not None:
                        close_ms, close_event = hit
                        changes.extend(
                            book.close(
                                partition,
                                max(close_ms, ms),
                                complaint_id,
                                ms // cu.DAY_MS,
                                close_event,
                                record,
                            )
                        )
                        del open_complaints[complaint_id]

        # service x risk: a contact within 24 h of a risk alert on the customer
        risks = cu.recent_risk(self.risks.get(ev.customer_id), ms)
        rules_seen: set[str] = set()
        friction_rows = []
        for alert_ms, rule_id, severity, _score in reversed(risks):
            if rule_id in rules_seen:
                continue
            rules_seen.add(rule_id)
            friction_rows.append(
                (
                    ev.event_id,
                    ev.ts,
                    ev.customer_id,
                    segment,
                    channel,
                    rule_id,
                    severity,
                    from_ms(alert_ms),
                    (ms - alert_ms) / 1000.0,
                    partition,
                )
            )
        out.add_rows(SERVICE_FRICTION_TABLE, friction_rows)
        self.counts["service.friction_contacts"] += 1 if friction_rows else 0

        # satisfaction model
        waits = cust.get("wt", [])
        csat_sum, csat_n = cust.get("cs", [0.0, 0])
        context = {
            "contacts_24h": float(prior),
            "recent_wait_log": sum(waits) / len(waits) if waits else 0.0,
            "open_complaints": float(len(cust.get("cm", {}))),
            "risk_friction": 1.0 if risks else 0.0,
            "past_csat": (csat_sum + 3.5 * 2) / (csat_n + 2) - 3.5,
        }
        x = interaction_features(ev, context)
        predicted = self.model.predict_one(x)
        p_dissat = self.model.score_one(x)
        reasons = self.model.explain_one(x)
        wait = round(math.log1p(ev.wait_seconds / threshold), 4)
        cust["wt"] = [*waits, wait][-cu.RECENT_WAITS :]
        cust["pd"] = round(0.7 * float(cust.get("pd", p_dissat)) + 0.3 * p_dissat, 4)
        pending = cust.setdefault("pe", {})
        pending[ev.event_id] = survey.entry(ms, x, round(predicted, 4), round(p_dissat, 4), channel)
        cu.prune_pending(cust, ms, self._ttl_ms)
        out.annotate(
            ev.event_id,
            "satisfaction",
            {
                "predicted_csat": predicted,
                "p_dissatisfied": p_dissat,
                "reason_codes": reasons,
                "model_version": self.version,
            },
        )
        features = dict(out.annotations.get(ev.event_id, {}).get("features", {}))
        last_risk = risks[-1] if risks else None
        features.update(
            {
                "contacts_24h": prior + 1,
                "repeat_contact": prior > 0,
                "open_complaints": len(cust.get("cm", {})),
                "risk_alert_24h": bool(risks),
                "last_risk_rule": last_risk[1] if last_risk else None,
                "hours_since_risk_alert": round((ms - last_risk[0]) / 3.6e6, 3)
                if last_risk
                else None,
                "predicted_csat": round(predicted, 3),
                "p_dissatisfied": round(p_dissat, 4),
                "service_level_threshold_s": threshold,
                "answered_in_sl": ev.wait_seconds <= threshold,
            }
        )
        out.annotate(ev.event_id, "features", features)

    # ---------------------------------------------------------------------------- feedback
    def _feedback(
        self,
        fb: Feedback,
        record: RawRecord,
        ms: int,
        cust: dict[str, Any],
        book: ComplaintBook,
        out: BatchOutput,
        changes: list[ComplaintChange],
    ) -> bool:
        kind = fb.kind.value
        if kind == "csat_survey" and fb.value is not None:
            pending = cust.get("pe", {})
            entry = pending.pop(fb.ref_event_id, None)
            if entry is None:
                self.counts["service.csat_unmatched"] += 1
                return False
            _ms, x, predicted, p_dissat, channel = survey.read(entry)
            y = float(fb.value)
            self.monitor.update(predicted, p_dissat, y)
            self.model.learn_one(x, y)
            csat_sum, csat_n = cust.get("cs", [0.0, 0])
            cust["cs"] = [csat_sum + y, csat_n + 1]
            cust["lc"] = int(y)
            if self.monitor.drift(channel, y):
                self.counts["service.csat_drift"] += 1
                out.candidates.extend(
                    self.engine.evaluate(
                        "model",
                        {"csat_drift_detected": True, "channel": channel, "csat": y},
                        subject_id=channel,
                        ts=fb.ts,
                        source_event_id=fb.event_id,
                        channel=channel,
                        model_version=self.version,
                        context={"model": self.model.name, "surveys": self.monitor.n},
                    )
                )
            return True
        if kind == "complaint_closed":
            known = {
                "customer_id": fb.customer_id,
                "customer_type": cust.get("ct"),
                "segment": cust.get("sg"),
                "channel": None,
            }
            for complaint_id, (open_day, refs) in list(cust.get("cm", {}).items()):
                if fb.ref_event_id in refs or fb.ref_event_id == complaint_id:
                    changes.extend(
                        book.close(
                            record.partition,
                            ms,
                            complaint_id,
                            open_day,
                            fb.event_id,
                            record,
                            known=known,
                        )
                    )
                    del cust["cm"][complaint_id]
                    return False
            found = book.find(record.partition, fb.ref_event_id)  # the customer lost it
            if found is not None:
                changes.extend(
                    book.close(record.partition, ms, found[0], found[1], fb.event_id, record)
                )
                return False
            self.counts["service.complaint_close_unmatched"] += 1
            # Keep it: the complaint it closes may arrive later (bounded, newest kept).
            early = cust.setdefault("cx", {})
            early[fb.ref_event_id] = [ms, fb.event_id]
            if len(early) > EARLY_CLOSES_KEPT:
                del early[next(iter(early))]
        return False

    # ------------------------------------------------------------------- minutes and SLA
    def _close_minutes(self, partition: int, meta: dict[str, Any], out: BatchOutput) -> None:
        s = self.settings
        sla = meta.setdefault("sla", {})
        wm = meta["wm"]
        checks = advance_sla(
            sla,
            wm,
            window_minutes=s.service_window_minutes,
            target=s.service_level_target,
            z=s.service_confidence_z,
            min_contacts=s.service_min_contacts,
            grace_ms=int(s.service_grace_s * 1000),
        )
        grace_ms = int(s.service_grace_s * 1000)
        for check in checks:
            # Event time at which the minute closed: independent of how events were batched,
            # so a replay raises the same alerts at the same times.
            ts = from_ms(min(wm, check.minute_ms + MINUTE_MS + grace_ms))
            if self.keep_sla_checks:
                self.sla_checks.append((partition, check))
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
            out.candidates.extend(
                self.engine.evaluate(
                    "channel_minute",
                    features,
                    subject_id=check.channel,
                    ts=ts,
                    source_event_id=no_card_runs(
                        f"sla|{check.channel}|{check.minute_ms}|p{partition}"
                    ),
                    channel=check.channel,
                    score=round(100 * check.service_level, 2),
                    context={
                        "threshold_s": self._thresholds.get(check.channel, 20.0),
                        "partition": partition,
                        "partitions": s.topic_partitions,
                    },
                )
            )
        closed = sla.get("closed")
        if closed is not None and closed - AGG_RETENTION_MS > meta.get("agg_floor", -1):
            floor = closed - AGG_RETENTION_MS
            meta["agg_floor"] = floor
            aggs = meta.get("agg", {})
            for key in [k for k in aggs if int(k.split("|", 1)[0]) < floor]:
                del aggs[key]

    def _minute_rows(
        self, parts: BatchCache, touched: set[tuple[int, str]], out: BatchOutput
    ) -> None:
        rows = []
        for partition, key in sorted(touched):
            meta = parts.get(f"p{partition}", dict)
            agg = meta.get("agg", {}).get(key)
            if agg is None:
                continue
            minute, channel, ctype, segment = key.split("|")
            version = meta.get("ver", 0)
            counts = dict(zip(AGG_FIELDS, agg, strict=True))
            rows.append(
                (
                    from_ms(int(minute)),
                    channel,
                    ctype,
                    segment,
                    partition,
                    int(counts["contacts"]),
                    int(counts["answered_in_sl"]),
                    self._thresholds.get(channel, 20.0),
                    float(counts["wait_sum"]),
                    float(counts["handle_sum"]),
                    *(int(counts[f]) for f in AGG_FIELDS[4:]),
                    version,
                    no_card_runs(f"{key}|p{partition}|v{version}"),
                )
            )
        out.add_rows(SERVICE_MINUTES_TABLE, rows)

    # --------------------------------------------------------------------------- complaints
    def _complaint_changes(self, changes: Sequence[ComplaintChange], out: BatchOutput) -> None:
        rows = []
        for ch in changes:
            if ch.changed:
                rows.append(
                    (
                        ch.complaint_id,
                        ch.status,
                        from_ms(ch.ts_ms),
                        ch.info.get("customer_id") or "",
                        ch.info.get("customer_type") or "",
                        ch.info.get("segment") or "",
                        ch.info.get("channel") or "",
                        from_ms(ch.opened_ms),
                        from_ms(ch.due_ms),
                        from_ms(ch.ts_ms) if ch.status == "closed" else None,
                        round(ch.days_open, 4),
                        ch.source_event_id,
                        ch.partition,
                        f"{ch.complaint_id}|{ch.status}",
                    )
                )
            out.candidates.extend(
                self.engine.evaluate(
                    "complaint",
                    ch.features(),
                    subject_id=ch.complaint_id,
                    ts=from_ms(ch.ts_ms),
                    source_event_id=f"complaint|{ch.complaint_id}|{ch.status}|{int(ch.days_open)}",
                    customer_id=ch.info.get("customer_id"),
                    segment=ch.info.get("segment"),
                    channel=ch.info.get("channel"),
                )
            )
        out.add_rows(COMPLAINTS_TABLE, rows)

    # ---------------------------------------------------------------------------- customers
    def _customer_status(
        self, cid: str, cust: dict[str, Any], record: RawRecord, ms: int, out: BatchOutput
    ) -> None:
        risks = self.risks.get(cid)
        last_events, prev_events = counts = cu.activity(cust, ms)
        stage = cu.lifecycle(cust, ms, counts)
        dissat = cu.dissatisfaction(cust)
        risk = cu.risk_score(risks, ms)
        score = cu.health(risk, dissat)
        last_risk = risks["a"][-1] if risks and risks.get("a") else None
        n_contacts = cu.contacts_24h(cust, ms)
        # Write a row only when something the customer view shows changed (or a new day began),
        # not for every transaction.
        signature = [
            stage,
            len(cust.get("cm", {})),
            cust.get("lc"),
            n_contacts,
            round(score),
            last_risk[0] if last_risk else None,
            ms // cu.DAY_MS,
        ]
        if signature == cust.get("sig"):
            return
        cust["sig"] = signature
        version = int(cust.get("v", 0)) + 1
        cust["v"] = version
        out.add_rows(
            CUSTOMER_STATUS_TABLE,
            [
                (
                    cid,
                    from_ms(ms),
                    cust["ct"],
                    cust["sg"],
                    stage,
                    from_ms(cust["f"]),
                    from_ms(cust["l"]),
                    last_events,
                    prev_events,
                    n_contacts,
                    len(cust.get("cm", {})),
                    cust.get("lc"),
                    round(dissat, 4),
                    round(risk, 3),
                    last_risk[1] if last_risk else None,
                    from_ms(last_risk[0]) if last_risk else None,
                    score,
                    version,
                    record.partition,
                    f"{cid}|v{version}",
                )
            ],
        )
        if stage != cust.get("st"):
            cust["st"] = stage
            out.candidates.extend(
                self.engine.evaluate(
                    "customer",
                    {"lifecycle": stage, "health_score": score, "risk_score": risk,
                     "dissatisfaction": dissat, "open_complaints": len(cust.get("cm", {}))},
                    subject_id=cid,
                    ts=from_ms(ms),
                    source_event_id=f"lifecycle|{cid}|{version}",
                    customer_id=cid,
                    segment=cust["sg"],
                )
            )  # fmt: skip

    # ------------------------------------------------------------------------ checkpoints
    def _restore(self) -> None:
        if self._restored:
            return
        self._restored = True
        if self.checkpoint is None:
            return
        saved = self.checkpoint.load()
        if saved:
            self.model, self.monitor = saved["model"], saved["monitor"]
            log.info("restored %s (%d surveys)", self.version, self.model.n_learned)

    def _maybe_checkpoint(self, learned: int) -> None:
        every = self.settings.satisfaction_checkpoint_every
        if self.checkpoint is None or not every:
            return
        n = self.model.n_learned
        if n // every > (n - learned) // every:
            self.checkpoint.save({"model": self.model, "monitor": self.monitor})
            log.info("checkpointed %s", self.version)


def service_stages(
    settings: Settings, state: StateFactory, engine: RuleEngine
) -> tuple[ServiceStage, ServiceContextStage]:
    """Both service stages over shared states: (before the rule stage, after it)."""
    customers = state(CUSTOMERS_STATE)
    risks = state(RISK_STATE)
    checkpoint = (
        Checkpoint(settings.data_dir / CHECKPOINT_FILE)
        if settings.satisfaction_checkpoint_every
        else None
    )
    before = ServiceStage(settings, engine, state(PARTITIONS_STATE), customers, risks, checkpoint)
    return before, ServiceContextStage(customers, risks)
