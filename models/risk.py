"""The transaction risk model: unsupervised anomaly + supervised classifier → 0-100 score.

:func:`model_inputs` maps the features of :mod:`finpulse.models.features` to numeric model
inputs named after the feature they come from (so reason codes are feature names).
:class:`RiskModel` combines

* an anomaly scorer that learns from every transaction, from the first one on
  (:class:`~finpulse.models.online.DeviationScorer` on River's ``StandardScaler``, or
  River's HalfSpaceTrees), and
* a supervised online classifier that learns from delayed fraud labels
  (:class:`~finpulse.models.online.RiverLogistic`),

into ``score = 100 * (w * p_supervised + (1 - w) * anomaly)`` where the supervised weight
``w = w_min + (w_max - w_min) * n_pos / (n_pos + k)`` grows quickly with the positive
labels learned; before any label the anomaly part alone stays under the alert bands (a
weight that keeps changing makes scores of different days incomparable). The supervised
part sees the anomaly evidence as one more input (stacking), and its probability is
corrected for label sampling, so the score is on a probability-like scale and the
policy's severity thresholds (60/75/90) are rare on clean traffic. Reason codes
are the inputs with the largest share of the score (weight × standardized value for the
classifier, squared one-sided deviation for the anomaly part). The model version is
``risk-v1+<labels learned at the last checkpoint>``.

>>> m = RiskModel()
>>> quiet = {"amount_cny": 40.0, "txn_count_1h": 1.0, "new_device": 0.0}
>>> for i in range(50):
...     m.learn_one({**quiet, "amount_cny": 30.0 + i % 3 * 10, "txn_count_1h": 1 + i % 2})
>>> a = m.assess({"amount_cny": 9000.0, "txn_count_1h": 2.0, "new_device": 0.0})
>>> a.score > m.assess(quiet).score, a.reason_codes[0], a.model_version
(True, 'amount_cny', 'risk-v1+0')
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from finpulse.models.online import DeviationScorer, Features, RiverLogistic, frame

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

# (model input, feature it comes from, transform); log1p for counts and amounts
_SPEC: tuple[tuple[str, str, str], ...] = (
    ("amount_cny", "amount_cny", "log"),
    ("amount_zscore", "amount_zscore", "id"),
    ("txn_count_1h", "txn_count_1h", "log"),
    ("txn_count_24h", "txn_count_24h", "log"),
    ("txn_sum_1h_cny", "txn_sum_1h_cny", "log"),
    ("velocity_ratio_1h", "velocity_ratio_1h", "log"),
    ("seconds_since_last", "seconds_since_last", "neglog"),
    ("history_count", "history_count", "log"),
    ("new_device", "new_device", "id"),
    ("new_country", "new_country", "id"),
    ("new_counterparty", "new_counterparty", "id"),
    ("new_account", "new_account", "id"),
    ("cross_border", "cross_border", "id"),
    ("foreign_ip", "foreign_ip", "id"),
    ("local_night", "local_night", "id"),
    ("tiny_card_count_10m", "tiny_card_count_10m", "log"),
    ("near_cash_threshold", "near_cash_threshold", "id"),
    ("near_transfer_threshold", "near_transfer_threshold", "id"),
    ("near_cash_threshold_count_24h", "near_cash_threshold_count_24h", "log"),
    ("near_transfer_threshold_count_24h", "near_transfer_threshold_count_24h", "log"),
    ("cash_same_day_cny", "cash_same_day_cny", "log"),
    ("transfer_same_day_cny", "transfer_same_day_cny", "log"),
    ("credit_sum_1h_cny", "credit_sum_1h_cny", "log"),
    ("debit_sum_1h_cny", "debit_sum_1h_cny", "log"),
    ("in_out_ratio_1h", "in_out_ratio_1h", "id"),
    ("credit_counterparties_1h", "credit_counterparties_1h", "log"),
    ("in_out_ratio_24h", "in_out_ratio_24h", "id"),
    ("credit_counterparties_24h", "credit_counterparties_24h", "log"),
    ("is_cash", "is_cash", "id"),
    ("is_transfer", "is_transfer", "id"),
    ("is_card", "is_card", "id"),
    ("is_credit", "is_credit", "id"),
    ("institution", "is_institution", "id"),
)
_INTERACTIONS = ("new_device&new_country", "new_device&amount_zscore")
INPUT_NAMES: tuple[str, ...] = (*(name for name, _, _ in _SPEC), *_INTERACTIONS)
"""Model inputs (reason codes use these names): features, log-scaled where counts or
amounts, ``seconds_since_last`` as ``-log1p(gap)`` (larger = riskier), two interactions."""

_RAW = operator.itemgetter(*(feature for _, feature, _ in _SPEC))
_LOG = np.array([t == "log" for _, _, t in _SPEC])
_NEGLOG = np.array([t == "neglog" for _, _, t in _SPEC])
_I_ND = INPUT_NAMES.index("new_device")
_I_NC = INPUT_NAMES.index("new_country")
_I_Z = INPUT_NAMES.index("amount_zscore")
_DEFAULTS = {feature: 0.0 for _, feature, _ in _SPEC}


def features_matrix(fs: Sequence[Mapping[str, Any]]) -> Any:
    """Model inputs of many features dicts as a matrix in :data:`INPUT_NAMES` order.

    Every features dict from :func:`finpulse.models.features.extract` has all the keys; partial
    dicts (tests, examples) get 0 for what is missing.

    >>> X = features_matrix([{"amount_cny": 99.0, "new_device": True, "new_country": True}])
    >>> round(float(X[0, 0]), 3), float(X[0, INPUT_NAMES.index("new_device&new_country")])
    (4.605, 1.0)
    """
    try:
        raw = np.array([_RAW(f) for f in fs], dtype=float)
    except KeyError:  # partial dicts (examples, tests)
        raw = np.array([_RAW({**_DEFAULTS, **f}) for f in fs], dtype=float)
    if np.isnan(raw).any():  # None, e.g. the CNY amount of an unknown currency
        raw = np.nan_to_num(raw, nan=0.0)
    raw = raw.reshape(len(fs), len(_SPEC))
    raw[:, _LOG] = np.log1p(np.maximum(raw[:, _LOG], 0.0))
    raw[:, _NEGLOG] = -np.log1p(np.maximum(raw[:, _NEGLOG], 0.0))
    nd = raw[:, _I_ND]
    inter = np.column_stack((nd * raw[:, _I_NC], nd * np.maximum(raw[:, _I_Z], 0.0)))
    return np.hstack((raw, inter))


def model_inputs(f: Mapping[str, Any]) -> dict[str, float]:
    """Numeric inputs of the risk models from one features dict (see :func:`features_matrix`).

    >>> x = model_inputs({"amount_cny": 99.0, "new_device": True, "new_country": True})
    >>> round(x["amount_cny"], 3), x["new_device&new_country"]
    (4.605, 1.0)
    """
    return dict(zip(INPUT_NAMES, features_matrix([f])[0].tolist(), strict=True))


_NAMES = np.array(INPUT_NAMES, dtype=object)
SUPERVISED_NAMES: tuple[str, ...] = (*INPUT_NAMES, "anomaly")
"""Inputs of the supervised part: :data:`INPUT_NAMES` plus the anomaly evidence (stacking)."""


def input_matrix(xs: Sequence[Mapping[str, float]]) -> Any:
    """Rows of model inputs as a numpy matrix in :data:`INPUT_NAMES` order."""
    return np.array([[x.get(k, 0.0) for k in INPUT_NAMES] for x in xs], dtype=float)


class RiskAssessment(NamedTuple):
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
    reason codes and version. :meth:`assess_many` / :meth:`learn_many` /
    :meth:`learn_labels` are the batch forms (a batch is scored with the model as of its
    start); they hand River one pandas frame per batch.

    The supervised probability is corrected for label sampling: labels exist for
    (nearly) every fraud but only for a small sample of clean transactions, so the
    classifier's odds are multiplied by ``r = negatives labelled / clean scored``.
    """

    def __init__(
        self,
        anomaly: Any = None,
        supervised: RiverLogistic | None = None,
        w_max: float = 0.95,
        k: float = 3.0,
        n_reasons: int = 3,
        w_min: float = 0.4,
    ) -> None:
        self.anomaly: Any = anomaly if anomaly is not None else DeviationScorer(ANOMALY_INPUTS)
        self.supervised = supervised if supervised is not None else RiverLogistic()
        self.w_max = w_max
        self.w_min = w_min
        self.k = k
        self.n_reasons = n_reasons
        self.checkpoint_n = 0
        self.n_scored = 0
        # labels joined to transactions this model scored: [clean, fraud] (the correction)
        self.n_joined = [0, 0]
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
        """``w_min`` before any fraud label (the anomaly part alone then stays below the
        alert bands), rising to ``w_max`` as positive labels are learned."""
        n_pos = self.supervised.n_seen[1]
        return self.w_min + (self.w_max - self.w_min) * n_pos / (n_pos + self.k)

    def sampling_offset(self) -> float:
        """log of the share of clean transactions that get a label (prior correction),
        from the transactions scored here and the labels joined to them: where several
        workers share one supervised part (each learns every worker's labels), each
        estimates the same sampling rate from its own share of the traffic."""
        n_neg, n_pos = self.n_joined
        clean = max(self.n_scored - n_pos, 1)
        r = min(max(n_neg, 1) / clean, 1.0)
        return math.log(r)

    # ------------------------------------------------------------------ contract (one event)
    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None:
        """No label: the anomaly part learns ``x``. With a label: the supervised part learns
        (``x`` may already hold the ``anomaly`` input from scoring time; else it is added)."""
        if y is None:
            self.learn_many(input_matrix([x]))
            return
        self.note_labels([y])
        if "anomaly" in x:
            self.learn_labels(np.array([[x.get(k, 0.0) for k in SUPERVISED_NAMES]]), [y])
        else:
            self.learn_labels(self.supervised_matrix(input_matrix([x])), [y])

    def score_one(self, x: Features) -> float:
        return self.assess(x).score / 100.0

    def assess(self, x: Features) -> RiskAssessment:
        return self.assess_many(input_matrix([x]))[0]

    def clone(self) -> RiskModel:
        return RiskModel(
            self.anomaly.clone(),
            self.supervised.clone(),
            self.w_max,
            self.k,
            self.n_reasons,
            self.w_min,
        )

    # ------------------------------------------------------------------ batch
    def learn_many(self, X: Any, XA: Any = None) -> None:
        """Let the anomaly part learn the rows of ``X`` (unlabelled, every transaction);
        ``XA``: their :meth:`anomaly_frame` if already built (the batch's scoring built it)."""
        self.n_scored += len(X)
        self.anomaly.learn_many(self.anomaly_frame(X) if XA is None else XA)

    def anomaly_frame(self, X: Any) -> Any:
        """The anomaly part's inputs of the rows of ``X`` as one frame (one per batch)."""
        return frame(X[:, self._anomaly_idx], ANOMALY_INPUTS)

    def note_labels(self, y: Sequence[float | int | bool]) -> None:
        """Count labels joined to transactions scored here (the sampling correction);
        :meth:`learn_labels` learns them, possibly in every worker."""
        for v in y:
            self.n_joined[int(bool(v))] += 1

    def learn_labels(self, XS: Any, y: Sequence[float | int | bool]) -> None:
        """Let the supervised part learn labelled rows of supervised inputs (the rows of
        :meth:`supervised_matrix` kept from scoring time)."""
        self.supervised.learn_many(frame(XS, SUPERVISED_NAMES), [int(bool(v)) for v in y])

    def predict_labelled(self, XS: Any) -> Any:
        """The supervised part's P(fraud) of rows of supervised inputs, before any sampling
        correction (what its next labels are compared with)."""
        return self.supervised.predict_proba_many(frame(XS, SUPERVISED_NAMES))

    def _anomaly_many(self, X: Any, XA: Any = None) -> tuple[Any, Any]:
        return self.anomaly.score_many(self.anomaly_frame(X) if XA is None else XA)

    def supervised_matrix(self, X: Any) -> Any:
        """The supervised inputs of the rows of ``X``: the inputs plus the anomaly evidence
        ``log1p(sum of squared deviations)`` (stacking), in :data:`SUPERVISED_NAMES` order."""
        _, CA = self._anomaly_many(X)
        return np.column_stack((X, np.log1p(CA.sum(axis=1))))

    def assess_many(self, X: Any) -> list[RiskAssessment]:
        """Assess the rows of ``X`` (columns in :data:`INPUT_NAMES` order)."""
        return self.assess_batch(X)[0]

    def assess_batch(self, X: Any, XA: Any = None) -> tuple[list[RiskAssessment], Any]:
        """:meth:`assess_many` and the rows' :meth:`supervised_matrix` (kept pending for the
        label join), from one pass of the anomaly part (on ``XA``, the rows'
        :meth:`anomaly_frame`, if given)."""
        n, d = X.shape
        a, CA = self._anomaly_many(X, XA)
        w = self.supervised_weight()
        totals = CA.sum(axis=1)
        XS = np.column_stack((X, np.log1p(totals)))
        share = CA / np.where(totals == 0, 1.0, totals)[:, None]
        R = np.zeros((n, d))
        R[:, self._anomaly_idx] = share * ((1.0 - w) * a)[:, None]
        p = None
        if self.supervised.n_learned:
            logit, CS = self.supervised.logits_many(frame(XS, SUPERVISED_NAMES))
            p = 1.0 / (1.0 + np.exp(-(logit + self.sampling_offset())))
            pos = np.maximum(CS, 0.0)
            s_tot = pos.sum(axis=1)
            s_tot[s_tot == 0] = 1.0
            part = pos * (w * p / s_tot)[:, None]
            R += part[:, :d]
            R[:, self._anomaly_idx] += share * part[:, d : d + 1]  # "anomaly" input's share
            raw = w * p + (1.0 - w) * a
        else:
            raw = (1.0 - w) * a
        combined = 100.0 * raw
        k = self.n_reasons
        top = np.argsort(-R, axis=1)[:, :k]
        version = self.model_version
        scores = np.round(combined, 4).tolist()
        anomalies = np.round(a, 4).tolist()
        sups = np.round(p, 4).tolist() if p is not None else [None] * n
        top_values = np.take_along_axis(R, top, axis=1)
        keep = (top_values > 0.01 * raw[:, None]) & (top_values > 0)
        names = _NAMES[top]
        names[~keep] = None
        chosen = names.tolist()
        assessments = [
            RiskAssessment(s_, a_, p_, tuple(r for r in rs if r is not None), version)
            for s_, a_, p_, rs in zip(scores, anomalies, sups, chosen, strict=True)
        ]
        return assessments, XS
