"""The risk stage: features → risk score → ``risk_scores`` rows, labels → learning.

For each transaction: per-customer features (:func:`models.features.extract`), the
combined risk assessment (:class:`models.risk.RiskModel`), annotations ``"features"``
and ``"risk"`` for later stages, a ``risk_scores`` row, and the scored inputs kept
*pending* in the customer's state record until a label arrives or the TTL ends. For
each ``fraud_confirmed`` / ``fraud_cleared`` feedback (keyed by customer, so on the
same partition as the transaction): the pending inputs are looked up by
``ref_event_id``, the supervised model learns, online metrics and drift detectors are
updated, and the ``risk_scores`` row is re-written with its label.

State: ONE keyed record per customer (``risk_customers``: ``{"f": feature state,
"p": pending}``), written once per customer per batch. The models live in the worker
and are checkpointed as ``model_checkpoints`` rows; the first batch restores the latest.

>>> from config.settings import Settings
>>> from streams.pipeline import Pipeline
>>> p = Pipeline(Settings(risk_restore_checkpoint=False), stages=risk_stages)
>>> [s.name for s in p.stages]
['risk']
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from config.settings import Settings
from models.alerts import AlertCandidate
from models.evaluation import DriftMonitor, OnlineEvaluator
from models.events import Feedback, FeedbackKind, Transaction
from models.features import FeatureConfig, extract
from models.online import RiverHalfSpaceTrees
from models.risk import ANOMALY_INPUTS, MODEL_NAME, RiskAssessment, RiskModel, model_inputs
from sinks.checkpoints import CheckpointStore, ClickHouseCheckpoints, checkpoint_row
from sinks.tables import MODEL_CHECKPOINTS_TABLE, MODEL_METRICS_TABLE, RISK_SCORES_TABLE
from streams.decode import RawRecord
from streams.state import KeyedState

if TYPE_CHECKING:
    from streams.pipeline import BatchOutput, StateFactory, Valid

log = logging.getLogger(__name__)

STATE_NAME = "risk_customers"
RESTORE_RETRY_S = 30.0
LABELS = {FeedbackKind.FRAUD_CONFIRMED: 1, FeedbackKind.FRAUD_CLEARED: 0}

# A function that turns one scored transaction into alert candidates (rules + score alert).
CandidateFn = Callable[[Transaction, dict[str, Any], RiskAssessment], list[AlertCandidate]]


class RiskModels:
    """Everything the stage learns, pickled as one checkpoint."""

    def __init__(self, settings: Settings) -> None:
        anomaly = None
        if settings.risk_anomaly_model == "hst":
            anomaly = RiverHalfSpaceTrees(seed=7)
        self.model = RiskModel(anomaly=anomaly)
        self.evaluator = OnlineEvaluator()
        self.drift = DriftMonitor(MODEL_NAME)
        self.labels = 0
        self.scored = 0


class RiskStage:
    """Scores transactions and learns from fraud labels (see module doc)."""

    name = "risk"
    kinds = frozenset({"transaction", "feedback"})
    state_names = (STATE_NAME,)

    def __init__(
        self,
        settings: Settings,
        state: KeyedState,
        config: FeatureConfig | None = None,
        checkpoints: CheckpointStore | None = None,
        candidates: CandidateFn | None = None,
    ) -> None:
        self.settings = settings
        self.state = state
        self.config = config or FeatureConfig()
        self.checkpoints = checkpoints
        self.candidates = candidates
        self.m = RiskModels(settings)
        self._restored = checkpoints is None
        self._restore_after = 0.0
        self._labels_at_checkpoint = 0
        self._scored_at_checkpoint = 0
        self._labels_at_metrics = 0
        self.seconds = 0.0  # time spent in process(): the scoring path
        self.counts = {"scored": 0, "labels": 0, "labels_unmatched": 0, "pending_expired": 0}

    # ------------------------------------------------------------------------------ restore
    def _restore(self) -> None:
        if self._restored or time.monotonic() < self._restore_after:
            return
        assert self.checkpoints is not None
        try:
            restored = self.checkpoints.load_latest(MODEL_NAME)
        except Exception as exc:  # ClickHouse down: keep scoring, don't overwrite checkpoints
            log.warning("cannot restore %s checkpoint yet (%s); retrying", MODEL_NAME, exc)
            self._restore_after = time.monotonic() + RESTORE_RETRY_S
            return
        if isinstance(restored, RiskModels):
            self.m = restored
            self._labels_at_checkpoint = self._labels_at_metrics = restored.labels
            self._scored_at_checkpoint = restored.scored
        self._restored = True

    # ------------------------------------------------------------------------------ process
    def process(self, kind: str, batch: Valid, out: BatchOutput) -> None:
        started = time.perf_counter()
        self._restore()
        records: dict[str, dict[str, Any]] = {}
        last_record: dict[str, RawRecord] = {}
        get = self.state.get
        for event, raw in batch:
            cid = event.customer_id
            rec = records.get(cid)
            if rec is None:
                rec = get(cid) or {"f": None, "p": []}
                records[cid] = rec
            if kind == "transaction":
                records[cid] = self._score(event, rec, out)  # type: ignore[arg-type]
                last_record[cid] = raw
            elif event.kind in LABELS:  # type: ignore[attr-defined]
                if self._label(event, rec, out):  # type: ignore[arg-type]
                    last_record[cid] = raw
        for cid, raw in last_record.items():
            self.state.put(cid, records[cid], raw)
        self._maybe_checkpoint(out)
        self.seconds += time.perf_counter() - started

    def _score(self, txn: Transaction, rec: dict[str, Any], out: BatchOutput) -> dict[str, Any]:
        m = self.m
        features, fstate = extract(txn, rec["f"], self.config)
        x = model_inputs(features)
        a = m.model.assess(x)
        m.model.learn_one(x)
        m.scored += 1
        self.counts["scored"] += 1
        ts = txn.ts
        for c in m.drift.observe_inputs(x, ts, a.model_version):
            out.candidates.append(c)
        risk = {
            "score": a.score,
            "anomaly": a.anomaly,
            "supervised": a.supervised,
            "reason_codes": list(a.reason_codes),
            "model_version": a.model_version,
            "customer_id": txn.customer_id,
        }
        out.annotate(txn.event_id, "features", features)
        out.annotate(txn.event_id, "risk", risk)
        row = _score_row(txn.event_id, ts, txn.customer_id, features, a, None)
        out.add_rows(RISK_SCORES_TABLE, [row])
        if self.candidates is not None:
            out.candidates.extend(self.candidates(txn, features, a))
        pending = self._pending(rec["p"], ts.timestamp())
        pending.append(
            [
                txn.event_id,
                round(ts.timestamp(), 3),
                [round(v, 4) for v in x.values()],
                a.score,
                a.anomaly,
                a.supervised,
                list(a.reason_codes),
                a.model_version,
                [
                    features["segment"],
                    features["customer_type"],
                    features["channel"],
                    features["txn_type"],
                    features["amount_cny"],
                ],
            ]
        )
        del pending[: -self.settings.risk_pending_max]
        return {"f": fstate, "p": pending}

    def _pending(self, pending: list[list[Any]], now_s: float) -> list[list[Any]]:
        cutoff = now_s - self.settings.risk_pending_ttl_s
        kept = [p for p in pending if p[1] >= cutoff]
        self.counts["pending_expired"] += len(pending) - len(kept)
        return kept

    def _label(self, fb: Feedback, rec: dict[str, Any], out: BatchOutput) -> bool:
        """Learn from one fraud label; True if it matched a pending transaction."""
        y = LABELS[fb.kind]
        pending = rec["p"]
        idx = next((i for i, p in enumerate(pending) if p[0] == fb.ref_event_id), None)
        if idx is None:
            self.counts["labels_unmatched"] += 1
            return False
        eid, ts_s, values, score, anomaly, supervised, reasons, version, meta = pending.pop(idx)
        m = self.m
        x = dict(zip(_INPUT_NAMES, values, strict=True))
        before = m.model.supervised.score_one(x)
        m.model.learn_one(x, y)
        m.labels += 1
        self.counts["labels"] += 1
        m.evaluator.update(MODEL_NAME, score, y)
        m.evaluator.update(f"{MODEL_NAME}.anomaly", 100.0 * anomaly, y)
        m.evaluator.update(f"{MODEL_NAME}.supervised", 100.0 * before, y)
        drift = m.drift.observe_error(abs(y - before), fb.ts, m.model.model_version)
        if drift is not None:
            out.candidates.append(drift)
        ts = datetime.fromtimestamp(ts_s, UTC)
        segment, ctype, channel, txn_type, amount = meta
        out.add_rows(
            RISK_SCORES_TABLE,
            [
                (
                    eid,
                    ts,
                    fb.customer_id,
                    segment,
                    ctype,
                    channel,
                    txn_type,
                    amount,
                    score,
                    anomaly,
                    supervised,
                    reasons,
                    version,
                    y,
                    1,
                )  # fmt: skip
            ],
        )
        if m.labels - self._labels_at_metrics >= self.settings.risk_metrics_every_labels:
            self._labels_at_metrics = m.labels
            out.add_rows(MODEL_METRICS_TABLE, _metric_rows(m, fb.ts))
        return True

    # --------------------------------------------------------------------------- checkpoint
    def _maybe_checkpoint(self, out: BatchOutput) -> None:
        if not self._restored:
            return  # never overwrite a checkpoint we could not read yet
        m = self.m
        s = self.settings
        due_labels = s.risk_checkpoint_every_labels and (
            m.labels - self._labels_at_checkpoint >= s.risk_checkpoint_every_labels
        )
        due_events = s.risk_checkpoint_every_events and (
            m.scored - self._scored_at_checkpoint >= s.risk_checkpoint_every_events
        )
        if not (due_labels or due_events):
            return
        version = m.model.mark_checkpoint()
        self._labels_at_checkpoint = m.labels
        self._scored_at_checkpoint = m.scored
        row = checkpoint_row(MODEL_NAME, version, m.labels, m)
        out.add_rows(MODEL_CHECKPOINTS_TABLE, [row])
        log.info("checkpoint %s (%d labels, %d scored)", version, m.labels, m.scored)


_INPUT_NAMES: tuple[str, ...] = tuple(model_inputs({}))
assert set(ANOMALY_INPUTS) <= set(_INPUT_NAMES)


def _score_row(
    event_id: str,
    ts: datetime,
    customer_id: str,
    f: dict[str, Any],
    a: RiskAssessment,
    label: int | None,
) -> tuple[Any, ...]:
    return (
        event_id,
        ts,
        customer_id,
        f["segment"],
        f["customer_type"],
        f["channel"],
        f["txn_type"],
        f["amount_cny"],
        a.score,
        a.anomaly,
        a.supervised,
        list(a.reason_codes),
        a.model_version,
        label,
        0 if label is None else 1,
    )


def _metric_rows(m: RiskModels, ts: datetime) -> list[tuple[Any, ...]]:
    rows = []
    millis = int(ts.timestamp() * 1000)
    for ts_, model, metric, value, n, version in m.evaluator.rows(ts, m.model.model_version):
        if math.isfinite(value):
            rows.append((f"{model}:{metric}:{millis}:{n}", ts_, model, metric, value, n, version))
    return rows


def risk_stages(settings: Settings, state: StateFactory) -> Sequence[RiskStage]:
    """The stage builder for :func:`streams.pipeline.default_stages`."""
    store = ClickHouseCheckpoints(settings) if settings.risk_restore_checkpoint else None
    return (RiskStage(settings, state(STATE_NAME), checkpoints=store),)
