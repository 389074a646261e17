"""Online evaluation of the risk models as delayed labels arrive.

:class:`OnlineEvaluator` keeps the last ``window`` (score at scoring time, label) pairs per
model — a bounded, prequential view: every score was produced before its label was known —
and computes ROC AUC, PR AUC (average precision) and precision / recall of the combined
score at each severity threshold, with one exact numpy implementation of each metric
(also used by ``finpulse evaluate``).

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

import numpy as np

DEFAULT_THRESHOLDS: Mapping[str, float] = {"yellow": 60.0, "orange": 75.0, "red": 90.0}


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve, exact (Mann-Whitney, ties count one half); ``None``
    without both classes.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if not n_pos or not n_neg:
        return None
    _, group, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[group]  # average ranks over ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Average precision (area under the precision-recall curve, step-wise; a group of
    tied scores is one threshold).

    >>> average_precision([0.9, 0.8, 0.3, 0.1], [1, 0, 1, 0])
    0.8333333333333333
    """
    y = np.asarray(labels, dtype=bool)
    n_pos = int(y.sum())
    if not n_pos:
        return None
    s = np.asarray(scores, dtype=float)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    last = np.r_[s[1:] != s[:-1], True]  # the last row of each tied group
    tp_at = tp[last]
    seen_at = np.flatnonzero(last) + 1
    new_tp = np.diff(tp_at, prepend=0)
    return float((new_tp / n_pos * (tp_at / seen_at)).sum())


def precision_recall_at(
    scores: Sequence[float], labels: Sequence[int], threshold: float
) -> tuple[float | None, float | None]:
    """Precision and recall of ``score >= threshold``.

    >>> precision_recall_at([80, 70, 90, 10], [1, 0, 0, 1], 75)
    (0.5, 0.5)
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    hit = s >= threshold
    tp = int((hit & y).sum())
    flagged = int(hit.sum())
    positives = int(y.sum())
    precision = tp / flagged if flagged else None
    recall = tp / positives if positives else None
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
    """The per-worker drift detectors of risk checkpoints of format 3 and before: kept only
    so that those checkpoints still unpickle (their migration drops it). The detectors now
    run once for all workers: the supervised error's on the learning stream
    (:mod:`finpulse.models.stream_drift`), the inputs' at the model's owner."""
