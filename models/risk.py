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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from models.online import DeviationScorer, Features, ModelContract, OnlineLogistic

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

_log1p = math.log1p


def model_inputs(f: Mapping[str, Any]) -> dict[str, float]:
    """Numeric inputs of the risk models from a features dict (see ``models.features``).

    Counts and amounts are log-scaled; ``seconds_since_last`` becomes
    ``-log1p(gap)`` so that "larger is riskier" holds for every anomaly input.

    >>> x = model_inputs({"amount_cny": 99.0, "new_device": True, "new_country": True})
    >>> round(x["amount_cny"], 3), x["new_device&new_country"]
    (4.605, 1.0)
    """
    g = f.get
    nd = 1.0 if g("new_device") else 0.0
    nc = 1.0 if g("new_country") else 0.0
    tiny = float(g("tiny_card_count_10m", 0))
    z = float(g("amount_zscore", 0.0))
    return {
        "amount_cny": _log1p(g("amount_cny", 0.0)),
        "amount_zscore": z,
        "txn_count_1h": _log1p(g("txn_count_1h", 0)),
        "txn_count_24h": _log1p(g("txn_count_24h", 0)),
        "txn_sum_1h_cny": _log1p(g("txn_sum_1h_cny", 0.0)),
        "velocity_ratio_1h": _log1p(g("velocity_ratio_1h", 0.0)),
        "seconds_since_last": -_log1p(g("seconds_since_last", 0.0)),
        "history_count": _log1p(g("history_count", 0)),
        "new_device": nd,
        "new_country": nc,
        "new_counterparty": 1.0 if g("new_counterparty") else 0.0,
        "new_account": 1.0 if g("new_account") else 0.0,
        "new_device&new_country": nd * nc,
        "new_device&amount_zscore": nd * (z if z > 0 else 0.0),
        "cross_border": 1.0 if g("cross_border") else 0.0,
        "foreign_ip": 1.0 if g("foreign_ip") else 0.0,
        "local_night": 1.0 if g("local_night") else 0.0,
        "tiny_card_count_10m": _log1p(tiny),
        "near_cash_threshold": 1.0 if g("near_cash_threshold") else 0.0,
        "near_transfer_threshold": 1.0 if g("near_transfer_threshold") else 0.0,
        "near_cash_threshold_count_24h": _log1p(g("near_cash_threshold_count_24h", 0)),
        "near_transfer_threshold_count_24h": _log1p(g("near_transfer_threshold_count_24h", 0)),
        "cash_same_day_cny": _log1p(g("cash_same_day_cny", 0.0)),
        "transfer_same_day_cny": _log1p(g("transfer_same_day_cny", 0.0)),
        "credit_sum_1h_cny": _log1p(g("credit_sum_1h_cny", 0.0)),
        "debit_sum_1h_cny": _log1p(g("debit_sum_1h_cny", 0.0)),
        "in_out_ratio_1h": float(g("in_out_ratio_1h", 0.0)),
        "credit_counterparties_1h": _log1p(g("credit_counterparties_1h", 0)),
        "in_out_ratio_24h": float(g("in_out_ratio_24h", 0.0)),
        "credit_counterparties_24h": _log1p(g("credit_counterparties_24h", 0)),
        "is_cash": 1.0 if g("is_cash") else 0.0,
        "is_transfer": 1.0 if g("is_transfer") else 0.0,
        "is_card": 1.0 if g("is_card") else 0.0,
        "is_credit": 1.0 if g("is_credit") else 0.0,
        "institution": 1.0 if g("customer_type") == "institution" else 0.0,
    }


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
    reason codes and version.
    """

    def __init__(
        self,
        anomaly: ModelContract | None = None,
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
        self._anomaly_inputs = frozenset(ANOMALY_INPUTS)

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

    def learn_one(self, x: Features, y: float | int | bool | None = None) -> None:
        if y is None:
            self.anomaly.learn_one(self._anomaly_x(x))
        else:
            self.supervised.learn_one(x, y)

    def _anomaly_x(self, x: Features) -> dict[str, float]:
        keep = self._anomaly_inputs
        return {k: v for k, v in x.items() if k in keep}

    def score_one(self, x: Features) -> float:
        return self.assess(x).score / 100.0

    def assess(self, x: Features) -> RiskAssessment:
        ax = self._anomaly_x(x)
        a = self.anomaly.score_one(ax)
        w = self.supervised_weight()
        reasons: dict[str, float] = {}
        a_contrib = self.anomaly.contributions(ax)
        a_total = sum(a_contrib.values()) or 1.0
        for name, c in a_contrib.items():
            if c > 0:
                reasons[name] = (1.0 - w) * a * c / a_total
        p: float | None = None
        if w > 0:
            p = self.supervised.score_one(x)
            s_contrib = self.supervised.contributions(x)
            s_total = sum(c for c in s_contrib.values() if c > 0) or 1.0
            for name, c in s_contrib.items():
                if c > 0:
                    reasons[name] = reasons.get(name, 0.0) + w * p * c / s_total
            combined = w * p + (1.0 - w) * a
        else:
            combined = a
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[: self.n_reasons]
        return RiskAssessment(
            score=round(100.0 * combined, 2),
            anomaly=round(a, 4),
            supervised=None if p is None else round(p, 4),
            reason_codes=tuple(name for name, c in top if c > 0.01 * combined),
            model_version=self.model_version,
        )

    def clone(self) -> RiskModel:
        return RiskModel(self.anomaly.clone(), self.supervised.clone(), self.w_max, self.k)
