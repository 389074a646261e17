"""Online evaluation of the risk models as delayed labels arrive, and drift detection.

:class:`OnlineEvaluator` keeps the last ``window`` (score at scoring time, label) pairs per
model — a bounded, prequential view: every score was produced before its label was known —
and computes ROC AUC, PR AUC (average precision) and precision / recall of the combined
score at each severity threshold. :class:`DriftMonitor` runs River drift detectors: ADWIN
on the supervised model's absolute error, Page-Hinkley on the log amount and on the
per-customer hourly velocity; a detection becomes a ``model_health`` alert candidate.

>>> ev = OnlineEvaluator(window=100)
>>> for i in range(40):
...     ev.update("risk", 90.0 if i % 4 == 0 else 10.0 + i, int(i % 4 == 0))
>>> m = ev.metrics("risk")
>>> m["roc_auc"], m["pr_auc"], m["precision_orange"], m["recall_orange"]
(1.0, 1.0, 1.0, 1.0)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from finpulse.models.alerts import AlertCandidate, Severity

DEFAULT_THRESHOLDS: Mapping[str, float] = {"yellow": 60.0, "orange": 75.0, "red": 90.0}


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (ties count one half); ``None`` without both classes.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if not n_pos or not n_neg:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    n = len(order)
    while i < n:  # average ranks over ties
        j = i
        s = scores[order[i]]
        while j + 1 < n and scores[order[j + 1]] == s:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            if labels[order[k]]:
                rank_sum += avg
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def average_precision(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Average precision (area under the precision-recall curve, step-wise).

    >>> average_precision([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    0.8333333333333333
    """
    n_pos = sum(1 for y in labels if y)
    if not n_pos:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = 0
    ap = 0.0
    i = 0
    n = len(order)
    while i < n:  # a group of tied scores is one threshold
        j = i
        while j + 1 < n and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        group_tp = sum(1 for k in range(i, j + 1) if labels[order[k]])
        tp += group_tp
        ap += group_tp / n_pos * (tp / (j + 1))
        i = j + 1
    return ap


def precision_recall_at(
    scores: Sequence[float], labels: Sequence[int], threshold: float
) -> tuple[float | None, float | None]:
    """Precision and recall of ``score >= threshold``.

    >>> precision_recall_at([80, 70, 90, 10], [1, 0, 0, 1], 75)
    (0.5, 0.5)
    """
    tp = fp = fn = 0
    for s, y in zip(scores, labels, strict=True):
        if s >= threshold:
            if y:
                tp += 1
            else:
                fp += 1
        elif y:
            fn += 1
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


class OnlineEvaluator:
    """Prequential metrics over the last ``window`` labelled scores of each model."""

    def __init__(
        self, window: int = 2000, thresholds: Mapping[str, float] = DEFAULT_THRESHOLDS
    ) -> None:
        self.window = window
        self.thresholds = dict(thresholds)
        self.pairs: dict[str, deque[tuple[float, int]]] = {}
        self.n_labels: dict[str, int] = {}

    def update(self, model: str, score: float, y: int) -> None:
        """Record the score ``model`` gave before the label ``y`` (0/1) was known."""
        if model not in self.pairs:
            self.pairs[model] = deque(maxlen=self.window)
        self.pairs[model].append((float(score), 1 if y else 0))
        self.n_labels[model] = self.n_labels.get(model, 0) + 1

    def metrics(self, model: str, with_thresholds: bool = True) -> dict[str, float]:
        """ROC AUC, PR AUC, positives and (optionally) precision/recall per severity."""
        pairs = self.pairs.get(model)
        if not pairs:
            return {}
        scores = [p[0] for p in pairs]
        labels = [p[1] for p in pairs]
        out: dict[str, float] = {"labels": float(len(labels)), "positives": float(sum(labels))}
        auc = roc_auc(scores, labels)
        if auc is not None:
            out["roc_auc"] = auc
        ap = average_precision(scores, labels)
        if ap is not None:
            out["pr_auc"] = ap
        if with_thresholds:
            for name, thr in self.thresholds.items():
                precision, recall = precision_recall_at(scores, labels, thr)
                if precision is not None:
                    out[f"precision_{name}"] = precision
                if recall is not None:
                    out[f"recall_{name}"] = recall
        return out

    def rows(self, ts: datetime, model_version: str) -> list[tuple[Any, ...]]:
        """``model_metrics`` rows (ts, model, metric, value, n, model_version) for every model."""
        rows = []
        for model in sorted(self.pairs):
            n = self.n_labels.get(model, 0)
            for metric, value in self.metrics(model, with_thresholds=True).items():
                rows.append((ts, model, metric, float(value), n, model_version))
        return rows


class DriftMonitor:
    """River drift detectors on model error and key inputs → model-health alert candidates.

    >>> import random
    >>> rng = random.Random(5)
    >>> d = DriftMonitor(model="risk")
    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 5, tzinfo=UTC)
    >>> found = [d.observe_error(abs(rng.random() * 0.2), now) for _ in range(500)]
    >>> found += [d.observe_error(0.8 + rng.random() * 0.2, now) for _ in range(200)]
    >>> [c.rule_id for c in found if c][:1]
    ['drift.supervised_error']
    """

    def __init__(
        self, model: str = "risk", ph_threshold: float = 200.0, adwin_delta: float = 0.002
    ) -> None:
        from river import drift

        self.model = model
        self.error = drift.ADWIN(delta=adwin_delta)
        self.inputs = {
            "amount_cny": drift.PageHinkley(min_instances=500, threshold=ph_threshold),
            "txn_count_1h": drift.PageHinkley(min_instances=500, threshold=ph_threshold),
        }
        self.detections: dict[str, int] = {}

    def observe_error(
        self, error: float, ts: datetime, model_version: str | None = None
    ) -> AlertCandidate | None:
        """Feed the absolute error of one labelled prediction."""
        self.error.update(error)
        if self.error.drift_detected:
            return self._candidate(
                "supervised_error",
                ts,
                {"detector": "ADWIN", "error_mean": round(self.error.estimation, 4)},
                model_version,
            )
        return None

    def observe_inputs(
        self, amount: float, velocity: float, ts: datetime, model_version: str | None = None
    ) -> list[AlertCandidate]:
        """Feed one scored transaction's log amount and log hourly velocity."""
        out = []
        for name, value in (("amount_cny", amount), ("txn_count_1h", velocity)):
            detector = self.inputs[name]
            detector.update(value)
            if detector.drift_detected:
                evidence = {"detector": "PageHinkley", "input": name}
                out.append(self._candidate(name, ts, evidence, model_version))
        return out

    def _candidate(
        self, name: str, ts: datetime, evidence: dict[str, Any], model_version: str | None
    ) -> AlertCandidate:
        self.detections[name] = self.detections.get(name, 0) + 1
        return AlertCandidate(
            rule_id=f"drift.{name}",
            domain="model_health",
            severity=Severity.YELLOW,
            subject_type="model",
            subject_id=self.model,
            ts=ts,
            evidence={**evidence, "detections": self.detections[name]},
            model_version=model_version,
        )
