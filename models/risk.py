"""The transaction risk model: unsupervised anomaly + supervised classifier → 0-100 score.

:func:`model_inputs` maps the features of :mod:`models.features` to numeric model
inputs named after the feature they come from (so reason codes are feature names).
:class:`RiskModel` combines

* an anomaly scorer that learns from every transaction, from the first one on
  (:class:`~models.online.DeviationScorer`, or River's HalfSpaceTrees), and
* a supervised online classifier that learns from delayed fraud labels
  (:class:`~models.online.OnlineLogistic`),

into ``score = 100 * (w * p_supervised + (1 - w) * anomaly)`` where the supervised weight
``w = w_max * n_pos / (n_pos + k)`` grows with the positive labels learned. Reason codes
are the inputs with the largest share of the score (weight × standardized value for the
classifier, squared one-sided deviation for the anomaly part). The model version is
``risk-v1+<labels learned at the last checkpoint>``.

>>> m = RiskModel()
>>> quiet = {"amount_cny": 4.0, "txn_count_1h": 0.7, "new_device": 0.0}
>>> for _ in range(50):
...     m.learn_one(quiet)
>>> a = m.assess({"amount_cny": 11.0, "txn_count_1h": 2.5, "new_device": 1.0})
>>> a.score > m.assess(quiet).score, a.reason_codes[0], a.model_version
(True, 'amount_cny', 'risk-v1+0')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.online import DeviationScorer, Features, OnlineLogistic

MODEL_NAME = "risk"
MODEL_FAMILY = "risk-v1"

# inputs where only large values are risky (one-sided deviation in the anomaly part)
ANOMALY_INPUTS: tuple[str, ...] = (
    "amount_cny",
    "amount_zscore",
    "txn_count_1h",
    "txn_count_24h",
    "txn_sum_1h_cny",
    "velocity_ratio_1h",
    "seconds_since_last",
    "new_device",
    "new_country",
    "new_counterparty",
    "new_device&new_country",
    "cross_border",
    "foreign_ip",
    "local_night",
    "tiny_card_count_10m",
    "near_cash_threshold_count_24h",
    "near_transfer_threshold_count_24h",
    "cash_same_day_cny",
    "transfer_same_day_cny",
    "in_out_ratio_1h",
    "credit_counterparties_1h",
    "credit_counterparties_24h",
)

INPUT_NAMES: tuple[str, ...] = (
    "amount_cny",
    "amount_zscore",
    "txn_count_1h",
    "txn_count_24h",
    "txn_sum_1h_cny",
    "velocity_ratio_1h",
    "seconds_since_last",
    "history_count",
    "new_device",
    "new_country",
    "new_counterparty",
    "new_account",
    "new_device&new_country",
    "new_device&amount_zscore",
    "cross_border",
    "foreign_ip",
    "local_night",
    "tiny_card_count_10m",
    "near_cash_threshold",
    "near_transfer_threshold",
    "near_cash_threshold_count_24h",
    "near_transfer_threshold_count_24h",
    "cash_same_day_cny",
    "transfer_same_day_cny",
    "credit_sum_1h_cny",
    "debit_sum_1h_cny",
    "in_out_ratio_1h",
    "credit_counterparties_1h",
    "in_out_ratio_24h",
    "credit_counterparties_24h",
    "is_cash",
    "is_transfer",
    "is_card",
    "is_credit",
    "institution",
)
"""Model inputs, in the order of :func:`model_input_values` (reason codes use these names)."""


_log1p = math.log1p


def model_inputs(f: Mapping[str, Any]) -> dict[str, float]:
    """Numeric inputs of the risk models from a features dict (see ``models.features``).

    Counts and amounts are log-scaled; ``seconds_since_last`` becomes
    ``-log1p(gap)`` so that "larger is riskier" holds for every anomaly input.

    >>> x = model_inputs({"amount_cny": 99.0, "new_device": True, "new_country": True})
    >>> round(x["amount_cny"], 3), x["new_device&new_country"]
    (4.605, 1.0)
    """
    return dict(zip(INPUT_NAMES, model_input_values(f), strict=True))


def model_input_values(f: Mapping[str, Any]) -> list[float]:
    """:func:`model_inputs` as a list in :data:`INPUT_NAMES` order (the fast path).

    >>> len(model_input_values({})) == len(INPUT_NAMES)
    True
    """
    g = f.get
    nd = 1.0 if g("new_device") else 0.0
    nc = 1.0 if g("new_country") else 0.0
    tiny = float(g("tiny_card_count_10m", 0))
    z = float(g("amount_zscore", 0.0))
    return [
        _log1p(g("amount_cny", 0.0)),  # amount_cny
        z,  # amount_zscore
        _log1p(g("txn_count_1h", 0)),  # txn_count_1h
        _log1p(g("txn_count_24h", 0)),  # txn_count_24h
        _log1p(g("txn_sum_1h_cny", 0.0)),  # txn_sum_1h_cny
        _log1p(g("velocity_ratio_1h", 0.0)),  # velocity_ratio_1h
        -_log1p(g("seconds_since_last", 0.0)),  # seconds_since_last
        _log1p(g("history_count", 0)),  # history_count
        nd,  # new_device
        nc,  # new_country
        1.0 if g("new_counterparty") else 0.0,  # new_counterparty
        1.0 if g("new_account") else 0.0,  # new_account
        nd * nc,  # new_device&new_country
        nd * (z if z > 0 else 0.0),  # new_device&amount_zscore
        1.0 if g("cross_border") else 0.0,  # cross_border
        1.0 if g("foreign_ip") else 0.0,  # foreign_ip
        1.0 if g("local_night") else 0.0,  # local_night
        _log1p(tiny),  # tiny_card_count_10m
        1.0 if g("near_cash_threshold") else 0.0,  # near_cash_threshold
        1.0 if g("near_transfer_threshold") else 0.0,  # near_transfer_threshold
        _log1p(g("near_cash_threshold_count_24h", 0)),  # near_cash_threshold_count_24h
        _log1p(g("near_transfer_threshold_count_24h", 0)),  # near_transfer_threshold_count_24h
        _log1p(g("cash_same_day_cny", 0.0)),  # cash_same_day_cny
        _log1p(g("transfer_same_day_cny", 0.0)),  # transfer_same_day_cny
        _log1p(g("credit_sum_1h_cny", 0.0)),  # credit_sum_1h_cny
        _log1p(g("debit_sum_1h_cny", 0.0)),  # debit_sum_1h_cny
        float(g("in_out_ratio_1h", 0.0)),  # in_out_ratio_1h
        _log1p(g("credit_counterparties_1h", 0)),  # credit_counterparties_1h
        float(g("in_out_ratio_24h", 0.0)),  # in_out_ratio_24h
        _log1p(g("credit_counterparties_24h", 0)),  # credit_counterparties_24h
        1.0 if g("is_cash") else 0.0,  # is_cash
        1.0 if g("is_transfer") else 0.0,  # is_transfer
        1.0 if g("is_card") else 0.0,  # is_card
        1.0 if g("is_credit") else 0.0,  # is_credit
        1.0 if g("customer_type") == "institution" else 0.0,  # institution
    ]


def input_matrix(xs: Sequence[Mapping[str, float]]) -> Any:
    """Rows of model inputs as a numpy matrix in :data:`INPUT_NAMES` order."""
    return np.array([[x.get(k, 0.0) for k in INPUT_NAMES] for x in xs], dtype=float)


@dataclass(frozen=True)
class RiskAssessment:
    """The risk of one transaction: 0-100 score, its parts, reasons and model version."""

    score: float
    anomaly: float
    supervised: float | None
    reason_codes: tuple[str, ...]
    model_version: str


class RiskModel:
    """Anomaly scorer + supervised classifier behind the model contract.

    ``learn_one(x)`` (no label) updates the anomaly part: call it for every scored
    transaction. ``learn_one(x, y)`` updates the supervised part with a delayed label.
    ``score_one`` is the combined score in [0, 1]; :meth:`assess` adds the parts,
    reason codes and version. :meth:`assess_many` / :meth:`learn_many` are the
    vectorized forms for a batch (scored with the model as of the batch start).

    The supervised probability is corrected for label sampling: labels exist for
    (nearly) every fraud but only for a small sample of clean transactions, so the
    classifier's odds are multiplied by ``r = negatives labelled / clean scored``.
    """

    def __init__(
        self,
        anomaly: Any = None,
        supervised: OnlineLogistic | None = None,
        w_max: float = 0.85,
        k: float = 20.0,
        n_reasons: int = 3,
    ) -> None:
        self.anomaly: Any = anomaly if anomaly is not None else DeviationScorer(ANOMALY_INPUTS)
        self.supervised = supervised if supervised is not None else OnlineLogistic()
        self.w_max = w_max
        self.k = k
        self.n_reasons = n_reasons
        self.checkpoint_n = 0
        self.n_scored = 0
        self._anomaly_idx = np.array([INPUT_NAMES.index(k) for k in ANOMALY_INPUTS])

    @property
    def model_version(self) -> str:
        return f"{MODEL_FAMILY}+{self.checkpoint_n}"

    @property
    def n_learned(self) -> int:
        """Labels learned by the supervised part."""
        return self.supervised.n_learned

    def mark_checkpoint(self) -> str:
        """Bump the version to the labels learned so far (call when checkpointing)."""
        self.checkpoint_n = self.n_learned
        return self.model_version

    def supervised_weight(self) -> float:
        n_pos = self.supervised.n_seen[1]
        return self.w_max * n_pos / (n_pos + self.k) if n_pos else 0.0

    def sampling_offset(self) -> float:
        """log of the share of clean transactions that get a label (prior correction)."""
        n_neg, n_pos = self.supervised.n_seen
        clean = max(self.n_scored - n_pos, 1)
        r = min(max(n_neg, 1) / clean, 1.0)
        return math.log(r)

    # ------------------------------------------------------------------ contract (one event)
    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None:
        if y is None:
            self.learn_many(input_matrix([x]))
        else:
            self.supervised.learn_one(x, y)

    def score_one(self, x: Features) -> float:
        return self.assess(x).score / 100.0

    def assess(self, x: Features) -> RiskAssessment:
        return self.assess_many(input_matrix([x]))[0]

    def clone(self) -> RiskModel:
        return RiskModel(
            self.anomaly.clone(), self.supervised.clone(), self.w_max, self.k, self.n_reasons
        )

    # ------------------------------------------------------------------ batch
    def learn_many(self, X: Any) -> None:
        """Let the anomaly part learn the rows of ``X`` (unlabelled, every transaction)."""
        self.n_scored += len(X)
        XA = X[:, self._anomaly_idx]
        if isinstance(self.anomaly, DeviationScorer):
            if not self.anomaly.keys:
                self.anomaly._matrix([dict.fromkeys(ANOMALY_INPUTS, 0.0)])
            self.anomaly.learn_many(XA)
        else:
            for row in XA.tolist():
                self.anomaly.learn_one(dict(zip(ANOMALY_INPUTS, row, strict=True)))

    def _anomaly_many(self, X: Any) -> tuple[Any, Any]:
        XA = X[:, self._anomaly_idx]
        if isinstance(self.anomaly, DeviationScorer):
            if not self.anomaly.keys:
                return np.zeros(len(X)), np.zeros_like(XA)
            return self.anomaly.score_many(XA)
        xs = [dict(zip(ANOMALY_INPUTS, row, strict=True)) for row in XA.tolist()]
        a = np.array([self.anomaly.score_one(x) for x in xs])
        C = np.array([[self.anomaly.contributions(x)[k] for k in ANOMALY_INPUTS] for x in xs])
        return a, C

    def assess_many(self, X: Any) -> list[RiskAssessment]:
        """Assess the rows of ``X`` (columns in :data:`INPUT_NAMES` order)."""
        n, d = X.shape
        a, CA = self._anomaly_many(X)
        w = self.supervised_weight()
        totals = CA.sum(axis=1)
        totals[totals == 0] = 1.0
        R = np.zeros((n, d))
        R[:, self._anomaly_idx] = CA * ((1.0 - w) * a / totals)[:, None]
        p = None
        if w > 0:
            mean, inv_std, weights, bias = self.supervised.arrays(INPUT_NAMES)
            c = self.supervised.clip
            Z = np.clip((X - mean) * inv_std, -c, c)
            CS = Z * weights
            logit = CS.sum(axis=1) + bias + self.sampling_offset()
            p = 1.0 / (1.0 + np.exp(-logit))
            pos = np.maximum(CS, 0.0)
            s_tot = pos.sum(axis=1)
            s_tot[s_tot == 0] = 1.0
            R += pos * (w * p / s_tot)[:, None]
            combined = w * p + (1.0 - w) * a
        else:
            combined = a
        k = self.n_reasons
        top = np.argsort(-R, axis=1)[:, :k]
        version = self.model_version
        names = INPUT_NAMES
        out = []
        scores = np.round(100.0 * combined, 2).tolist()
        anomalies = np.round(a, 4).tolist()
        sups = np.round(p, 4).tolist() if p is not None else [None] * n
        floor = 0.01 * combined
        for i in range(n):
            row = R[i]
            reasons = tuple(names[j] for j in top[i] if row[j] > floor[i] and row[j] > 0)
            out.append(RiskAssessment(scores[i], anomalies[i], sups[i], reasons, version))
        return out
