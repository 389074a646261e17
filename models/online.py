"""Online models behind one River-style contract: ``learn_one``, ``score_one``, ``clone``.

The scoring path has to sustain tens of thousands of events per second on one core,
so the models used live are small hand-rolled online learners in plain dict math
(River's per-event calls are much slower; see docs/benchmarks.md). They follow
River's conventions exactly: constructors only store parameters, ``learn_one(x, y)``
takes a dict of floats, ``score_one(x)`` returns a float, ``clone()`` returns a fresh,
unlearned copy with the same parameters. :class:`RiverHalfSpaceTrees` wraps River's own
anomaly detector under the same contract, for comparison and as an option.

>>> m = OnlineLogistic()
>>> for i in range(200):
...     m.learn_one({"a": float(i % 2), "b": 0.5}, i % 2)
>>> m.score_one({"a": 1.0, "b": 0.5}) > 0.8 > 0.2 > m.score_one({"a": 0.0, "b": 0.5})
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

Features = Mapping[str, float]


@runtime_checkable
class ModelContract(Protocol):
    """What every finpulse model offers (River style: dicts in, floats out)."""

    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None: ...

    def score_one(self, x: Features) -> float: ...

    def clone(self) -> ModelContract: ...


class OnlineStandardizer:
    """Running mean and variance per feature (Welford, optionally exponentially weighted).

    >>> s = OnlineStandardizer()
    >>> for v in (1.0, 2.0, 3.0):
    ...     s.learn_one({"x": v})
    >>> round(s.transform_one({"x": 3.0})["x"], 3)
    1.225
    """

    def __init__(self, min_var: float = 1e-4, halflife: float | None = None) -> None:
        self.min_var = min_var
        self.halflife = halflife
        self._min_alpha = 1.0 - 0.5 ** (1.0 / halflife) if halflife else 0.0
        self.n: dict[str, int] = {}
        self.mean: dict[str, float] = {}
        self.var: dict[str, float] = {}

    def learn_one(self, x: Features, y: Any = None) -> None:
        n, mean, var = self.n, self.mean, self.var
        min_alpha = self._min_alpha
        for k, v in x.items():
            c = n.get(k, 0) + 1
            n[k] = c
            m = mean.get(k, 0.0)
            alpha = 1.0 / c
            if alpha < min_alpha:
                alpha = min_alpha
            d = v - m
            m += alpha * d
            mean[k] = m
            var[k] = (1.0 - alpha) * (var.get(k, 0.0) + alpha * d * d)

    def transform_one(self, x: Features) -> dict[str, float]:
        mean, var, floor = self.mean, self.var, self.min_var
        out = {}
        for k, v in x.items():
            s = var.get(k, 0.0)
            out[k] = (v - mean.get(k, 0.0)) / math.sqrt(s if s > floor else floor)
        return out

    def score_one(self, x: Features) -> float:
        """Root mean square of the standardized values (a crude outlyingness)."""
        z = self.transform_one(x)
        return math.sqrt(sum(v * v for v in z.values()) / len(z)) if z else 0.0

    def clone(self) -> OnlineStandardizer:
        return OnlineStandardizer(self.min_var, self.halflife)


class OnlineLogistic:
    """Logistic regression by SGD on standardized inputs, L2-regularized.

    ``score_one`` is the probability of class 1 among *labelled* examples. Inputs are
    standardized by an internal :class:`OnlineStandardizer` (updated on labelled
    examples). Each class's examples are weighted by ``(n / (2 n_class)) ** balance``
    (0 = unweighted, 1 = fully balanced). :meth:`contributions` gives weight ×
    standardized value per feature, the reason codes of the supervised score;
    :meth:`arrays` exposes the parameters for vectorized batch scoring.
    """

    def __init__(
        self, lr: float = 0.05, l2: float = 1e-4, balance: float = 0.0, clip: float = 8.0
    ) -> None:
        self.lr = lr
        self.l2 = l2
        self.balance = balance
        self.clip = clip
        self.scaler = OnlineStandardizer()
        self.weights: dict[str, float] = {}
        self.bias = 0.0
        self.n_seen = [0, 0]

    def _z(self, x: Features) -> dict[str, float]:
        z = self.scaler.transform_one(x)
        c = self.clip
        return {k: (c if v > c else -c if v < -c else v) for k, v in z.items()}

    def _raw(self, z: Mapping[str, float]) -> float:
        w = self.weights
        return self.bias + sum(w.get(k, 0.0) * v for k, v in z.items())

    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None:
        if y is None:
            return
        label = 1 if y else 0
        self.scaler.learn_one(x)
        self.n_seen[label] += 1
        total = self.n_seen[0] + self.n_seen[1]
        weight = (total / (2.0 * self.n_seen[label])) ** self.balance
        z = self._z(x)
        p = _sigmoid(self._raw(z))
        g = (p - label) * weight
        lr = self.lr
        decay = 1.0 - lr * self.l2
        w = self.weights
        for k, v in z.items():
            w[k] = w.get(k, 0.0) * decay - lr * g * v
        self.bias -= lr * g

    def logit_one(self, x: Features) -> float:
        return self._raw(self._z(x)) if self.weights else 0.0

    def score_one(self, x: Features) -> float:
        return _sigmoid(self.logit_one(x))

    def contributions(self, x: Features) -> dict[str, float]:
        """weight × standardized value of each feature (positive = towards fraud)."""
        w = self.weights
        return {k: w.get(k, 0.0) * v for k, v in self._z(x).items()}

    def arrays(self, keys: Sequence[str]) -> tuple[Any, Any, Any, float]:
        """(mean, inverse std, weights, bias) as numpy arrays in ``keys`` order."""
        sc = self.scaler
        floor = sc.min_var
        mean = np.array([sc.mean.get(k, 0.0) for k in keys])
        var = np.array([sc.var.get(k, 0.0) for k in keys])
        inv_std = 1.0 / np.sqrt(np.maximum(var, floor))
        w = np.array([self.weights.get(k, 0.0) for k in keys])
        return mean, inv_std, w, self.bias

    @property
    def n_learned(self) -> int:
        return self.n_seen[0] + self.n_seen[1]

    def clone(self) -> OnlineLogistic:
        return OnlineLogistic(self.lr, self.l2, self.balance, self.clip)


class DeviationScorer:
    """Unsupervised anomaly score: one-sided standardized deviations, squashed to [0, 1).

    Keeps a running (exponentially weighted) mean and variance of every input from the
    first event on; the score of ``x`` is ``1 - exp(-sum_k min(z_k+, clip)^2 / scale)``
    where ``z_k+`` is the positive part of the standardized value for inputs in
    ``upper`` (only large values are risky: amount, velocity, new-device flags) and
    ``|z_k|`` for the others. :meth:`contributions` are the per-input terms.
    :meth:`score_many` / :meth:`learn_many` are the vectorized forms the stage uses on
    a batch (the batch is scored with the state at its start, then learnt).

    >>> d = DeviationScorer(upper=["a"])
    >>> for i in range(100):
    ...     d.learn_one({"a": float(i % 5)})
    >>> d.score_one({"a": 2.0}) < 0.01 < d.score_one({"a": 30.0})
    True
    """

    def __init__(
        self,
        upper: Iterable[str] = (),
        scale: float = 40.0,
        clip: float = 12.0,
        halflife: float | None = 20_000.0,
        min_var: float = 1e-3,
    ) -> None:
        self.upper = frozenset(upper)
        self.scale = scale
        self.clip = clip
        self.halflife = halflife
        self.min_var = min_var
        self._min_alpha = 1.0 - 0.5 ** (1.0 / halflife) if halflife else 0.0
        self.keys: tuple[str, ...] = ()
        self.n = 0
        self.mean: Any = None
        self.var: Any = None
        self._upper_mask: Any = None

    def _matrix(self, xs: Sequence[Features]) -> Any:
        if not self.keys:
            self.keys = tuple(xs[0])
            self.mean = np.zeros(len(self.keys))
            self.var = np.zeros(len(self.keys))
            self._upper_mask = np.array([k in self.upper for k in self.keys])
        keys = self.keys
        return np.array([[x.get(k, 0.0) for k in keys] for x in xs], dtype=float)

    def _terms(self, X: Any) -> Any:
        Z = (X - self.mean) / np.sqrt(np.maximum(self.var, self.min_var))
        Z = np.where(self._upper_mask, np.maximum(Z, 0.0), np.abs(Z))
        np.minimum(Z, self.clip, out=Z)
        return Z * Z

    def score_many(self, X: Any) -> tuple[Any, Any]:
        """Scores and per-input terms of the rows of ``X`` (columns in ``keys`` order)."""
        if not self.n:
            return np.zeros(len(X)), np.zeros_like(X)
        C = self._terms(X)
        return 1.0 - np.exp(-C.sum(axis=1) / self.scale), C

    def learn_many(self, X: Any) -> None:
        """Update the running moments with the rows of ``X`` as one block."""
        nb = len(X)
        if not nb:
            return
        bm = X.mean(axis=0)
        bv = X.var(axis=0)
        if self.n + nb <= 1 or self._min_alpha * (self.n + nb) < 1.0:
            w = nb / (self.n + nb)  # exact pooled moments while the history is short
        else:
            w = 1.0 - (1.0 - self._min_alpha) ** nb
        d = bm - self.mean
        self.var = (1.0 - w) * self.var + w * bv + w * (1.0 - w) * d * d
        self.mean = self.mean + w * d
        self.n += nb

    def learn_one(self, x: Features, y: Any = None) -> None:
        self.learn_many(self._matrix([x]))

    def contributions(self, x: Features) -> dict[str, float]:
        _, C = self.score_many(self._matrix([x]))
        return dict(zip(self.keys, C[0].tolist(), strict=True))

    def score_one(self, x: Features) -> float:
        return float(self.score_many(self._matrix([x]))[0][0])

    def clone(self) -> DeviationScorer:
        return DeviationScorer(self.upper, self.scale, self.clip, self.halflife, self.min_var)


class RiverHalfSpaceTrees:
    """River's ``HalfSpaceTrees`` on ``MinMaxScaler`` features, under the finpulse contract.

    Slower than :class:`DeviationScorer` (docs/benchmarks.md); kept as the reference
    unsupervised detector and selectable for the anomaly part of the risk model.

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
        from river import anomaly, preprocessing

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

    def clone(self) -> RiverHalfSpaceTrees:
        return RiverHalfSpaceTrees(self.n_trees, self.height, self.window_size, self.seed)


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)
