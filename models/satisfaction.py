"""The satisfaction model: predicts an interaction's CSAT (1-5) and P(dissatisfied = CSAT <= 2).

Online (River): a standard scaler and a linear regression learn from each ``csat_survey`` as
it arrives. The probability of dissatisfaction comes from the same prediction and the
running spread of the model's own errors, ``P(CSAT <= 2) = Phi((2.5 - yhat) / sigma)``, so
both outputs stay consistent. Reason codes are the features that pull the prediction down
most (linear contribution of the scaled feature). Model contract, as the risk models:
``learn_one(x, y)``, ``predict_one(x)``, ``score_one(x)`` (here: P(dissatisfied)),
``explain_one(x)``, ``clone()`` and ``model_version``.

:class:`SatisfactionMonitor` keeps the online metrics (prequential: each survey is scored
with the prediction served when the interaction happened): MAE of the model, MAE of a
running-mean baseline, ROC AUC of P(dissatisfied), the same after warm-up, the mean actual and
predicted CSAT of the last 200 surveys (``csat_actual``, ``csat_predicted``). A drop in a
channel's satisfaction is judged on the pooled surveys by the channel's owner
(``streams/stages/service/csat_drop.py``).

>>> m = SatisfactionModel()
>>> x = {"wait_log": 0.5, "resolved": 1.0, "sentiment": 0.6}
>>> for _ in range(200):
...     m.learn_one(x, 5)
...     m.learn_one({"wait_log": 4.0, "resolved": 0.0, "sentiment": -0.6}, 1)
>>> round(m.predict_one(x)) , m.score_one({"wait_log": 4.0, "resolved": 0.0}) > 0.5
(5, True)
>>> m.explain_one({"wait_log": 4.0, "resolved": 0.0, "sentiment": -0.6})[:2]
['negative_sentiment', 'long_wait']
"""

from __future__ import annotations

import math
from typing import Any

from river import linear_model, metrics, optim, preprocessing, stats, utils

from finpulse.models.online import linear_state

MODEL_NAME = "satisfaction"
FEATURE_SCHEMA = 1
DISSATISFIED_AT = 2  # CSAT <= 2 is dissatisfied
VERSION_EVERY = 500  # the model version moves on every N surveys learned
RECENT_SURVEYS = 200  # csat_actual / csat_predicted: means over the last N surveys

# feature -> reason code when the feature lowers the predicted CSAT
REASONS: dict[str, str] = {
    "wait_log": "long_wait",
    "resolved": "unresolved",
    "fcr": "not_first_contact_resolution",
    "transfers": "transfers",
    "sentiment": "negative_sentiment",
    "complaint": "complaint",
    "handle_log": "long_handling",
    "contacts_24h": "repeat_contacts",
    "recent_wait_log": "long_recent_waits",
    "open_complaints": "open_complaint",
    "risk_friction": "recent_risk_alert",
    "past_csat": "low_past_csat",
}


CONTEXT_FEATURES = (
    "contacts_24h",
    "recent_wait_log",
    "open_complaints",
    "risk_friction",
    "past_csat",
)


def _value(v: Any) -> str:
    return str(getattr(v, "value", v))


def interaction_features(interaction: Any, context: dict[str, float]) -> dict[str, float]:
    """Model features of one :class:`~finpulse.models.events.Interaction` and the customer context.

    ``context`` holds ``contacts_24h`` (before this one), ``recent_wait_log``,
    ``open_complaints``, ``risk_friction`` (1 if a risk alert hit the customer within 24 h)
    and ``past_csat`` (the customer's shrunk mean survey answer minus 3.5).

    >>> from tests.factories import encode, interaction
    >>> from finpulse.models.events import Interaction
    >>> x = interaction_features(Interaction.model_validate_json(encode(interaction())), {})
    >>> x["ch_call_center"], x["resolved"], round(x["wait_log"], 3)
    (1.0, 1.0, 2.565)
    """
    x: dict[str, float] = {
        "wait_log": math.log1p(interaction.wait_seconds),
        "handle_log": math.log1p(interaction.handle_seconds),
        "resolved": 1.0 if interaction.resolved else 0.0,
        "fcr": 0.5
        if interaction.first_contact_resolution is None
        else float(interaction.first_contact_resolution),
        "transfers": float(interaction.transfers or 0),
        "sentiment": float(interaction.sentiment or 0.0),
        "sentiment_missing": 1.0 if interaction.sentiment is None else 0.0,
        "complaint": 1.0
        if interaction.complaint_id is not None
        or _value(interaction.interaction_type) == "complaint"
        else 0.0,
        f"ch_{_value(interaction.channel)}": 1.0,
        f"ch_it_{_value(interaction.interaction_type)}": 1.0,
    }
    for name in CONTEXT_FEATURES:
        x[name] = float(context.get(name, 0.0))
    return x


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class SatisfactionModel:
    """CSAT regression + dissatisfaction probability (see module doc)."""

    name = MODEL_NAME

    def __init__(self, lr: float = 0.02, intercept_lr: float = 0.05, prior: float = 3.5) -> None:
        self.lr = lr
        self.intercept_lr = intercept_lr
        self.prior = prior
        self.pipeline = preprocessing.StandardScaler() | linear_model.LinearRegression(
            optimizer=optim.SGD(lr), intercept_init=prior, intercept_lr=intercept_lr
        )
        self.residual = stats.Var()
        self.n_learned = 0

    @property
    def model_version(self) -> str:
        """``satisfaction-<schema>.<block>``: moves on every VERSION_EVERY surveys learned."""
        return f"{MODEL_NAME}-{FEATURE_SCHEMA}.{self.n_learned // VERSION_EVERY}"

    def learn_one(self, x: dict[str, float], y: float) -> None:
        """Learn one survey answer ``y`` (1-5) for the features ``x``."""
        self.residual.update(float(y) - self.predict_one(x))
        self.pipeline.learn_one(x, float(y))
        self.n_learned += 1

    def predict_one(self, x: dict[str, float]) -> float:
        """Predicted CSAT, clipped to 1..5."""
        return min(5.0, max(1.0, float(self.pipeline.predict_one(x))))

    def score_one(self, x: dict[str, float]) -> float:
        """Probability that the customer is dissatisfied (CSAT <= 2)."""
        sigma = math.sqrt(self.residual.get()) if self.n_learned >= 20 else 1.0
        sigma = max(sigma, 0.25)
        return _phi((DISSATISFIED_AT + 0.5 - self.predict_one(x)) / sigma)

    def explain_one(self, x: dict[str, float], k: int = 3) -> list[str]:
        """Reason codes: up to ``k`` features that lower the prediction most."""
        scaler = self.pipeline["StandardScaler"]
        weights = self.pipeline["LinearRegression"].weights
        scaled = scaler.transform_one(x)
        contrib = sorted(
            (weights.get(f, 0.0) * v, f) for f, v in scaled.items() if not f.startswith("ch_")
        )
        out: list[str] = []
        for c, f in contrib:
            if c >= -0.05 or len(out) >= k:
                break
            out.append(REASONS.get(f, f))
        return out

    def learned_state(self) -> tuple[Any, ...]:
        """What it learned, canonical (see :func:`finpulse.models.online.linear_state`)."""
        scaler, linear = self.pipeline["StandardScaler"], self.pipeline["LinearRegression"]
        return (self.n_learned, self.residual.get(), linear_state(scaler, linear))

    def clone(self) -> SatisfactionModel:
        """A fresh, untrained model with the same parameters."""
        return SatisfactionModel(self.lr, self.intercept_lr, self.prior)


class SatisfactionMonitor:
    """Prequential online metrics of the model (the CSAT drop is judged per channel by the
    channel's owner: ``streams/stages/service/csat_drop.py``)."""

    def __init__(self, warmup: int = 300) -> None:
        self.warmup = warmup
        self.mae = metrics.MAE()
        self.mae_baseline = metrics.MAE()
        self.auc = metrics.ROCAUC()
        self.mae_after = metrics.MAE()
        self.mae_baseline_after = metrics.MAE()
        self.auc_after = metrics.ROCAUC()
        self.mean = stats.Mean()
        # river's Rolling forwards get() to the wrapped Mean; its stubs do not say so
        self.recent_actual: Any = utils.Rolling(stats.Mean, window_size=RECENT_SURVEYS)
        self.recent_predicted: Any = utils.Rolling(stats.Mean, window_size=RECENT_SURVEYS)
        self.n = 0

    def update(self, predicted: float, p_dissatisfied: float, y: float) -> None:
        """Score one survey: the served prediction against the answer and the running mean."""
        baseline = self.mean.get() if self.mean.n else 3.5
        dissatisfied = y <= DISSATISFIED_AT
        self.mae.update(y, predicted)
        self.mae_baseline.update(y, baseline)
        self.auc.update(dissatisfied, p_dissatisfied)
        if self.n >= self.warmup:
            self.mae_after.update(y, predicted)
            self.mae_baseline_after.update(y, baseline)
            self.auc_after.update(dissatisfied, p_dissatisfied)
        self.mean.update(y)
        self.recent_actual.update(y)
        self.recent_predicted.update(predicted)
        self.n += 1

    def figures(self) -> dict[str, float]:
        """Current metric values (after-warm-up ones once any exist)."""
        out: dict[str, float] = {
            "mae": float(self.mae.get()),
            "mae_baseline": float(self.mae_baseline.get()),
            "auc": float(self.auc.get()),
            "csat_actual": float(self.recent_actual.get()),
            "csat_predicted": float(self.recent_predicted.get()),
        }
        if self.n > self.warmup:
            out["mae_after_warmup"] = float(self.mae_after.get())
            out["mae_baseline_after_warmup"] = float(self.mae_baseline_after.get())
            out["auc_after_warmup"] = float(self.auc_after.get())
        return out

    def rows(self, ts: Any, model_version: str) -> list[tuple[Any, ...]]:
        """``model_metrics`` rows (ts, model, metric, value, n, model_version)."""
        return [
            (ts, MODEL_NAME, metric, float(value), self.n, model_version)
            for metric, value in self.figures().items()
        ]
