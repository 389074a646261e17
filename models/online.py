"""Online models on River estimators, behind one River-style contract.

The risk models are River's own estimators, driven through River's mini-batch API on one
pandas frame per batch (``learn_many``; ``predict_proba_many`` for the labelled rows). The
scoring path standardizes a batch from the River scaler's own statistics in numpy
(:meth:`StandardScaler.transform_frame`, River's ``transform_many`` without its per-call
frame round-trip), the same numbers:

* :class:`RiverLogistic`: ``preprocessing.StandardScaler`` then
  ``linear_model.LogisticRegression``, learnt on the rare labelled rows (the classifier one
  SGD step per row, see its doc);
* :class:`DeviationScorer`: a ``preprocessing.StandardScaler`` learnt on every row, whose
  standardized values are turned into a one-sided outlyingness;
* :class:`RiverHalfSpaceTrees`: River's anomaly detector, per event (slower; an option).

Every model offers ``learn_one(x, y=None)``, ``score_one(x)`` and ``clone()`` (dicts in,
floats out); the single-event calls go through the same frame path as a batch of one.

>>> m = RiverLogistic()
>>> for i in range(200):
...     m.learn_one({"a": float(i % 2), "b": 0.5}, i % 2)
>>> m.score_one({"a": 1.0, "b": 0.5}) > 0.8 > 0.2 > m.score_one({"a": 0.0, "b": 0.5})
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from river import anomaly, linear_model, optim, preprocessing

Features = Mapping[str, float]


@runtime_checkable
class ModelContract(Protocol):
    """What every finpulse model offers (River style: dicts in, floats out)."""

    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None: ...

    def score_one(self, x: Features) -> float: ...

    def clone(self) -> ModelContract: ...


def frame(rows: Any, columns: Sequence[str]) -> pd.DataFrame:
    """A batch as the pandas frame River's mini-batch API takes (rows: a matrix or dicts).

    A float matrix is wrapped, not copied (the frame is a view of it: do not change the
    matrix while the frame is in use); the column index of a tuple of names is built once.

    >>> frame([{"b": 2.0}], ("a", "b")).to_numpy().tolist()
    [[0.0, 2.0]]
    >>> M = np.zeros((2, 2)); np.shares_memory(frame(M, ("a", "b")).to_numpy(), M)
    True
    """
    if len(rows) and isinstance(rows[0], Mapping):
        rows = [[r.get(k, 0.0) for k in columns] for r in rows]
    matrix = np.asarray(rows, dtype=float).reshape(-1, len(columns))
    return pd.DataFrame(matrix, columns=_index(tuple(columns)), copy=False)


@lru_cache(maxsize=64)
def _index(columns: tuple[str, ...]) -> pd.Index:
    return pd.Index(columns, dtype=object)


def linear_state(scaler: Any, linear: Any) -> tuple[Any, ...]:
    """The learned numbers of a River scaler and linear model, in a canonical order (their
    dicts iterate in an order that can differ between processes; what
    :func:`finpulse.models.learning.digest` compares).

    >>> s, lr = preprocessing.StandardScaler(), linear_model.LinearRegression()
    >>> for x in ({"b": 1.0, "a": 2.0}, {"a": 1.0, "b": 3.0}):
    ...     s.learn_one(x); lr.learn_one(s.transform_one(x), 1.0)
    >>> linear_state(s, lr)[0]
    (('a', 2, 1.5, 0.25), ('b', 2, 2.0, 1.0))
    """
    stats = tuple(
        sorted(
            (k, n, float(scaler.means[k]), float(scaler.vars[k])) for k, n in scaler.counts.items()
        )
    )
    return stats, tuple(sorted(linear.weights.items())), float(linear.intercept)


class StandardScaler(preprocessing.StandardScaler):
    """River's ``StandardScaler`` whose batch variance never goes below 0.

    River computes a batch's variance as ``E[x^2] - mean^2``; for a constant column the
    float round-off can make it slightly negative, and the next ``transform_many`` then
    fails on its square root. Clamped to 0 (a constant column), the scaler is unchanged
    otherwise.

    >>> s = StandardScaler()
    >>> s.learn_many(frame([[0.1]] * 3, ("a",)))
    >>> s.vars["a"] >= 0.0
    True
    """

    def learn_many(self, X: Any) -> None:
        super().learn_many(X)
        for col, var in self.vars.items():
            if var < 0.0:
                self.vars[col] = 0.0

    def transform_frame(self, X: pd.DataFrame) -> Any:
        """River's ``transform_many(X)`` as a numpy matrix, computed here from the scaler's
        own means and variances: River's result goes through narwhals (a schema check, a new
        frame), ~1-3 ms a call whatever the batch size; this is the same arithmetic without
        that (equal within round-off, tests/unit/models/test_online.py).

        >>> s = StandardScaler()
        >>> s.learn_many(frame([[1.0, 5.0], [3.0, 5.0]], ("a", "b")))
        >>> s.transform_frame(frame([[2.0, 6.0], [5.0, 4.0]], ("a", "b"))).tolist()
        [[0.0, 1.0], [3.0, -1.0]]
        """
        columns = X.columns
        stds = np.array([self.vars[c] for c in columns]) ** 0.5
        Z = X.to_numpy(dtype=float) - np.array([self.means[c] for c in columns])
        np.divide(Z, stds, where=stds > 0, out=Z)  # a constant column stays centred, as River's
        return Z


class RiverLogistic:
    """River's ``StandardScaler`` | ``LogisticRegression``, learnt one batch at a time.

    ``learn_many(X, y)`` updates the scaler with the batch's labelled rows
    (``learn_many``), standardizes them (``transform_frame``, clipped to ``±clip``) and
    takes one SGD step per row (River's ``learn_one``). Labels are rare (about one row in
    a hundred), so this costs little; River's ``LogisticRegression.learn_many`` takes one
    step for the whole batch instead, which measured worse both ways: the mean gradient
    learns too slowly (the score never reached orange), the summed one overshoots (a
    flood of score alerts on clean customers; docs/risk-model.md). Scoring is
    ``predict_proba_many`` on the batch's frame. :meth:`logits_many` gives the logit and
    the per-input terms (weight × standardized value), the reason codes of the
    supervised score.
    """

    def __init__(self, lr: float = 0.05, l2: float = 1e-4, clip: float = 8.0) -> None:
        self.lr = lr
        self.l2 = l2
        self.clip = clip
        self.scaler = StandardScaler()
        self.classifier = linear_model.LogisticRegression(
            optimizer=optim.SGD(lr), l2=l2, intercept_lr=lr
        )
        self.n_seen = [0, 0]

    @property
    def n_learned(self) -> int:
        return self.n_seen[0] + self.n_seen[1]

    def _standardized(self, X: pd.DataFrame) -> Any:
        Z = self.scaler.transform_frame(X)
        return np.clip(Z, -self.clip, self.clip, out=Z)

    def learn_many(self, X: pd.DataFrame, y: Sequence[int]) -> None:
        labels = pd.Series([bool(v) for v in y], index=X.index)
        if not len(labels):
            return
        self.scaler.learn_many(X)
        columns = list(X.columns)
        for row, label in zip(self._standardized(X).tolist(), labels, strict=True):
            self.classifier.learn_one(dict(zip(columns, row, strict=True)), label)
        n_pos = int(labels.sum())
        self.n_seen[1] += n_pos
        self.n_seen[0] += len(labels) - n_pos

    def predict_proba_many(self, X: pd.DataFrame) -> Any:
        """P(fraud) of each row among labelled examples (numpy array)."""
        if not self.n_learned:
            return np.full(len(X), 0.5)
        Z = pd.DataFrame(self._standardized(X), columns=X.columns, index=X.index, copy=False)
        proba: pd.DataFrame = self.classifier.predict_proba_many(Z)
        return proba[True].to_numpy()

    def logits_many(self, X: pd.DataFrame) -> tuple[Any, Any]:
        """(logit, per-input terms) of each row; terms sum to the logit minus the intercept."""
        if not self.n_learned:
            return np.zeros(len(X)), np.zeros(X.shape)
        Z = self._standardized(X)
        weights = self.classifier.weights
        w = np.array([weights.get(c, 0.0) for c in X.columns])
        terms = Z * w
        return terms.sum(axis=1) + self.classifier.intercept, terms

    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None:
        if y is not None:
            self.learn_many(frame([x], tuple(x)), [int(bool(y))])

    def score_one(self, x: Features) -> float:
        return float(self.predict_proba_many(frame([x], tuple(x)))[0])

    def learned_state(self) -> tuple[Any, ...]:
        """What it learned, canonical (see :func:`linear_state`)."""
        return (tuple(self.n_seen), linear_state(self.scaler, self.classifier))

    def clone(self) -> RiverLogistic:
        return RiverLogistic(self.lr, self.l2, self.clip)


class DeviationScorer:
    """Unsupervised anomaly score from River's ``StandardScaler`` learnt on every row.

    The score of a row is ``1 - exp(-sum_k min(z_k+, clip)^2 / scale)``, ``z_k`` the
    standardized value of input ``k``: only its positive part counts for inputs in
    ``upper`` (only large amounts, velocities, first-seen flags are risky), ``|z_k|`` for
    the others. :meth:`score_many` also returns the per-input terms (the reason codes).
    A batch is scored with the statistics as of its start, then learnt.

    >>> d = DeviationScorer(upper=["a"])
    >>> for i in range(100):
    ...     d.learn_one({"a": float(i % 5)})
    >>> d.score_one({"a": 2.0}) < 0.01 < d.score_one({"a": 30.0})
    True
    """

    def __init__(self, upper: Iterable[str] = (), scale: float = 40.0, clip: float = 12.0) -> None:
        self.upper = frozenset(upper)
        self.scale = scale
        self.clip = clip
        self.scaler = StandardScaler()

    def score_many(self, X: pd.DataFrame) -> tuple[Any, Any]:
        """Scores and per-input terms of the rows of ``X``."""
        if not self.scaler.counts:
            return np.zeros(len(X)), np.zeros(X.shape)
        Z = self.scaler.transform_frame(X)
        upper = np.array([c in self.upper for c in X.columns])
        Z = np.where(upper, np.maximum(Z, 0.0), np.abs(Z))
        np.minimum(Z, self.clip, out=Z)
        C = Z * Z
        return 1.0 - np.exp(-C.sum(axis=1) / self.scale), C

    def learn_many(self, X: pd.DataFrame) -> None:
        if len(X):
            self.scaler.learn_many(X)

    def learn_one(self, x: Features, y: Any = None) -> None:
        self.learn_many(frame([x], tuple(x)))

    def contributions(self, x: Features) -> dict[str, float]:
        _, C = self.score_many(frame([x], tuple(x)))
        return dict(zip(x, C[0].tolist(), strict=True))

    def score_one(self, x: Features) -> float:
        return float(self.score_many(frame([x], tuple(x)))[0][0])

    def clone(self) -> DeviationScorer:
        return DeviationScorer(self.upper, self.scale, self.clip)


class RiverHalfSpaceTrees:
    """River's ``HalfSpaceTrees`` on ``MinMaxScaler`` features, under the finpulse contract.

    Per event, so slower than :class:`DeviationScorer` (docs/benchmarks.md); selectable
    for the anomaly part of the risk model.

    >>> m = RiverHalfSpaceTrees(n_trees=5, height=6, window_size=50, seed=3)
    >>> for i in range(200):
    ...     m.learn_one({"a": (i % 10) / 10})
    >>> m.score_one({"a": 0.5}) < m.score_one({"a": 40.0})
    True
    """

    def __init__(
        self, n_trees: int = 15, height: int = 8, window_size: int = 250, seed: int = 0
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.scaler = preprocessing.MinMaxScaler()
        self.hst = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    def learn_one(self, x: Features, y: Any = None) -> None:
        self.scaler.learn_one(dict(x))
        self.hst.learn_one(self.scaler.transform_one(dict(x)))

    def score_one(self, x: Features) -> float:
        return float(self.hst.score_one(self.scaler.transform_one(dict(x))))

    def contributions(self, x: Features) -> dict[str, float]:
        """HST has no per-feature attribution: use the min-max scaled value itself."""
        return {k: float(v) for k, v in self.scaler.transform_one(dict(x)).items()}

    def score_many(self, X: pd.DataFrame) -> tuple[Any, Any]:
        rows = X.to_dict("records")
        scores = np.array([self.score_one(x) for x in rows])
        terms = np.array([[self.contributions(x)[k] for k in X.columns] for x in rows])
        return scores, terms.reshape(X.shape)

    def learn_many(self, X: pd.DataFrame) -> None:
        for x in X.to_dict("records"):
            self.learn_one(x)

    def clone(self) -> RiverHalfSpaceTrees:
        return RiverHalfSpaceTrees(self.n_trees, self.height, self.window_size, self.seed)
