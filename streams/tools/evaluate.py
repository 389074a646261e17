"""``finpulse evaluate``: replay a simulator run offline through the worker's Pipeline.

No broker, no ClickHouse: events go in stream order (runs of one kind as batches,
feedback labels interleaved exactly where the simulator put them) through the same
:class:`~finpulse.streams.worker.pipeline.Pipeline` and stages as a live worker, with
:class:`~finpulse.streams.core.state.MemoryState`. The result compares the scores with the
simulator's ground truth.

>>> r = evaluate(seed=2, n_events=3000, n_customers=300, sim_days=1, warmup=500)
>>> r["transactions_scored"] > 2000, 0.0 <= r["roc_auc"] <= 1.0
(True, True)
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from finpulse.config.settings import Settings
from finpulse.models.evaluation import DEFAULT_THRESHOLDS, average_precision, roc_auc
from finpulse.sinks.tables import ALERTS_TABLE
from finpulse.streams.core.batch import StageBuilder
from finpulse.streams.core.decode import RawRecord
from finpulse.streams.core.topics import INPUT_TOPICS
from finpulse.streams.simulator import Simulator
from finpulse.streams.tools.case_alerts import ALERT_DOMAINS, Alert, case_report
from finpulse.streams.worker.app import default_stages
from finpulse.streams.worker.pipeline import Pipeline

SIM_START = datetime(2026, 1, 5, tzinfo=UTC)
BATCH_WINDOW = 500  # stream events per replay step


def _batches(sim: Simulator, window: int) -> Iterator[tuple[str, list[RawRecord], int]]:
    """The stream cut into windows of ``window`` events; each window yields one batch per
    kind (transactions, then interactions, then feedback), like a worker's three agents
    taking a batch each. A label always comes after the transaction it refers to (the
    simulator delays labels by at least minutes)."""
    buf: dict[str, list[RawRecord]] = {k: [] for k in INPUT_TOPICS.values()}
    first: dict[str, int] = {}
    for i, ev in enumerate(sim.events()):
        kind = INPUT_TOPICS[ev.topic]
        first.setdefault(kind, i)
        buf[kind].append(RawRecord(ev.topic, 0, i, ev.value, ev.key))
        if (i + 1) % window == 0:
            yield from _flush(buf, first)
    yield from _flush(buf, first)


def _flush(
    buf: dict[str, list[RawRecord]], first: dict[str, int]
) -> Iterator[tuple[str, list[RawRecord], int]]:
    for kind, records in buf.items():
        if records:
            yield kind, records, first[kind]
            buf[kind] = []
    first.clear()


def evaluate(
    seed: int = 1,
    n_events: int = 60_000,
    n_customers: int = 3000,
    sim_days: float = 7.0,
    warmup: int = 10_000,
    settings: Settings | None = None,
    stages: StageBuilder = default_stages,
) -> dict[str, Any]:
    """Replay one simulator run and measure the risk figures (see module doc)."""
    base = settings or Settings()
    settings = base.model_copy(update={"restore_model_checkpoints": False})
    sim = Simulator(
        seed=seed,
        start=SIM_START,
        n_events=n_events,
        sim_span_s=sim_days * 86400.0,
        n_customers=n_customers,
    )
    timed: list[_Timed] = []

    def timed_stages(settings: Settings, state: Any) -> list[Any]:
        timed.extend(_Timed(s) for s in stages(settings, state))
        return timed

    pipeline = Pipeline(settings, stages=timed_stages)
    risk_stage = next((t.stage for t in timed if t.name == "risk"), None)
    scores: dict[str, tuple[float, float, float | None, int, str]] = {}
    rule_counts: Counter[str] = Counter()
    alerted: dict[str, set[str]] = defaultdict(set)  # customer -> rule ids
    fired_on: dict[str, set[str]] = defaultdict(set)  # source event -> rule ids
    alert_ids: dict[str, str] = {}  # alert id -> rule id (after dedup)
    firings: list[Alert] = []  # every risk / compliance candidate on a customer
    raised: dict[str, Alert] = {}  # alert id -> the alert (after suppression), last severity
    started = time.perf_counter()
    for kind, records, start in _batches(sim, BATCH_WINDOW):
        out = pipeline.process(kind, records)
        if kind == "transaction":
            for eid, ann in out.annotations.items():
                risk = ann.get("risk")
                if risk is not None:
                    cid = risk["customer_id"]
                    scores[eid] = (
                        risk["score"],
                        risk["anomaly"],
                        risk["supervised"],
                        start,
                        cid,
                    )
        for c in out.candidates:
            rule_counts[c.rule_id] += 1
            if c.customer_id and c.domain in ("risk", "compliance") and start >= warmup:
                alerted[c.customer_id].add(c.rule_id)
            if c.source_event_id:
                fired_on[c.source_event_id].add(c.rule_id)
            if c.customer_id and c.domain in ALERT_DOMAINS:
                firings.append(Alert(c.customer_id, c.ts, c.severity.value))
        for row in out.rows.get(ALERTS_TABLE, ()):
            alert_ids[row[0]] = row[2]
            if row[_COL["customer_id"]] and row[_COL["domain"]] in ALERT_DOMAINS:
                first_seen = row[_COL["first_seen"]]
                if isinstance(first_seen, str):
                    first_seen = datetime.fromisoformat(first_seen)
                raised[row[0]] = Alert(
                    row[_COL["customer_id"]], first_seen, str(row[_COL["severity"]])
                )
    elapsed = time.perf_counter() - started
    truth = sim.ground_truth()
    report = _report(
        sim, truth, scores, rule_counts, alerted, elapsed, risk_stage, warmup, n_customers
    )
    scoring_s = sum(t.seconds.get("transaction", 0.0) for t in timed if t.name in SCORING)
    n_txn = report["transactions_scored"]
    report["scoring_events_per_s"] = round(n_txn / scoring_s) if scoring_s else None
    report["stage_seconds"] = {t.name: round(sum(t.seconds.values()), 3) for t in timed}
    report["alerts_by_rule"] = dict(sorted(Counter(alert_ids.values()).items()))
    report["rule_case_recall"] = _rule_recall(truth, fired_on)
    cases = [t for t in truth if t.get("customer_id") and t["event_ids"]]
    clean = {f"c{sim.seed}-{i:06d}" for i in range(n_customers)} - {
        str(t["customer_id"]) for t in truth if t.get("customer_id")
    }
    report["cases"] = case_report(cases, firings, clean, alerts=raised.values())
    return report


_COL = {name: i for i, name in enumerate(ALERTS_TABLE.columns)}


SCORING = ("risk", "rules")  # the scoring path: features + models + rules


class _Timed:
    """A stage with the time spent in it, per input kind."""

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.name = stage.name
        self.kinds = stage.kinds
        self.state_names = stage.state_names
        self.seconds: dict[str, float] = {}

    def process(self, kind: str, batch: Any, out: Any) -> None:
        started = time.perf_counter()
        self.stage.process(kind, batch, out)
        self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        # the rest of the stage as it is, e.g. its learning stream (LearningStage)
        return getattr(self.stage, name)


def _rule_recall(truth: list[dict[str, Any]], fired_on: dict[str, set[str]]) -> dict[str, Any]:
    """Per pattern: share of cases where a rule (not the model score) fired on one of its
    events, and which rules did."""
    out: dict[str, Any] = {}
    for pattern in sorted({str(t["pattern"]) for t in truth}):
        cases = [t for t in truth if t["pattern"] == pattern and t["event_ids"]]
        if not cases or pattern == "channel_outage":
            continue
        rules: Counter[str] = Counter()
        hit = 0
        for t in cases:
            fired = set().union(*(fired_on.get(e, set()) for e in t["event_ids"]))
            fired = {r for r in fired if not r.startswith(("model.", "drift."))}
            hit += bool(fired)
            rules.update(fired)
        out[pattern] = {"recall": round(hit / len(cases), 4), "rules": dict(rules)}
    return out


def _report(
    sim: Simulator,
    truth: list[dict[str, Any]],
    scores: dict[str, tuple[float, float, float | None, int, str]],
    rule_counts: Counter[str],
    alerted: dict[str, set[str]],
    elapsed: float,
    risk_stage: Any,
    warmup: int,
    n_customers: int,
) -> dict[str, Any]:
    fraud_ids = {e for t in truth if t["fraud"] for e in t["event_ids"]}
    after = [(eid, v) for eid, v in scores.items() if v[3] >= warmup]
    labels = [1 if eid in fraud_ids else 0 for eid, _ in after]
    combined = [v[0] for _, v in after]
    anomaly = [v[1] for _, v in after]
    supervised = [v[2] if v[2] is not None else 0.5 for _, v in after]
    orange = DEFAULT_THRESHOLDS["orange"]
    per_pattern: dict[str, dict[str, float]] = {}
    truth_customers: set[str] = set()
    for pattern in sorted({str(t["pattern"]) for t in truth}):
        cases = [t for t in truth if t["pattern"] == pattern]
        hit_cases = 0
        n_ev = hit_ev = 0
        for t in cases:
            if t.get("customer_id"):
                truth_customers.add(str(t["customer_id"]))
            evs = [scores[e] for e in t["event_ids"] if e in scores]
            n_ev += len(evs)
            hits = sum(1 for v in evs if v[0] >= orange)
            hit_ev += hits
            hit_cases += hits > 0
        if n_ev:
            per_pattern[pattern] = {
                "cases": len(cases),
                "case_recall": round(hit_cases / len(cases), 4),
                "event_recall": round(hit_ev / n_ev, 4),
            }
    yellow = DEFAULT_THRESHOLDS["yellow"]
    customer_of = {eid: v[4] for eid, v in scores.items()}
    score_alerted = {customer_of[eid] for eid, v in after if v[0] >= yellow}
    score_alerted_all = {customer_of[eid] for eid, v in scores.items() if v[0] >= yellow}
    clean = {f"c{sim.seed}-{i:06d}" for i in range(n_customers)} - truth_customers
    n_txn = len(scores)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    produced = sim.stats()["produced"]
    n_events = produced if isinstance(produced, int) else 0
    return {
        "seed": sim.seed,
        "events": sim.stats()["produced"],
        "transactions_scored": n_txn,
        "warmup_events": warmup,
        "fraud_events_after_warmup": sum(labels),
        "roc_auc": r(roc_auc(combined, labels)),
        "pr_auc": r(average_precision(combined, labels)),
        "roc_auc_anomaly": r(roc_auc(anomaly, labels)),
        "roc_auc_supervised": r(roc_auc(supervised, labels)),
        "per_pattern_recall_orange": per_pattern,
        "rule_alert_counts": dict(sorted(rule_counts.items())),
        "clean_customers": len(clean),
        "false_alert_rate_rules": r(
            len([c for c in clean if alerted.get(c)]) / len(clean) if clean else None
        ),
        "false_alerts_by_rule": dict(
            sorted(Counter(r for c in clean for r in alerted.get(c, ())).items())
        ),
        "false_alert_rate_score_yellow": r(
            len(clean & score_alerted) / len(clean) if clean else None
        ),
        "false_alert_rate_score_yellow_incl_warmup": r(
            len(clean & score_alerted_all) / len(clean) if clean else None
        ),
        "labels_learned": getattr(risk_stage, "counts", {}).get("labels"),
        "labels_unmatched": getattr(risk_stage, "counts", {}).get("labels_unmatched"),
        "pipeline_events_per_s": round(n_events / elapsed) if elapsed else None,
        "model_version": risk_stage.m.model.model_version if risk_stage else None,
    }
