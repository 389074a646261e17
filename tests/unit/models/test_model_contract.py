"""One contract suite that every finpulse model passes (River style: dicts in, floats out)."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest

from finpulse.models.online import (
    DeviationScorer,
    ModelContract,
    RiverHalfSpaceTrees,
    RiverLogistic,
)
from finpulse.models.risk import RiskModel

FACTORIES: dict[str, Callable[[], Any]] = {
    "logistic": RiverLogistic,
    "deviation": lambda: DeviationScorer(upper=["amount_cny", "txn_count_1h"]),
    "hst": lambda: RiverHalfSpaceTrees(n_trees=5, height=6, window_size=50, seed=3),
    "risk": RiskModel,
}
SUPERVISED = {"logistic", "risk"}


def stream(seed: int, n: int = 300) -> list[tuple[dict[str, float], int]]:
    """Separable data: positives have a large amount input; the velocity input is noise.

    Input names are the risk model's own (it only reads :data:`finpulse.models.risk.INPUT_NAMES`).
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        y = int(rng.random() < 0.2)
        out.append(
            (
                {
                    "amount_cny": rng.gauss(3.0 if y else 0.0, 0.5),
                    "txn_count_1h": rng.gauss(0.0, 1.0),
                },
                y,
            )
        )
    return out


def teach(model: Any, name: str, data: list[tuple[dict[str, float], int]]) -> None:
    for x, y in data:
        if name in SUPERVISED:
            model.learn_one(x, y)
        if name == "risk":
            model.learn_one(x)  # the anomaly part learns every event
        elif name not in SUPERVISED:
            model.learn_one(x)


@pytest.fixture(params=sorted(FACTORIES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_satisfies_the_protocol(name):
    assert isinstance(FACTORIES[name](), ModelContract)


def test_learn_one_returns_none_and_score_is_a_finite_float(name):
    model = FACTORIES[name]()
    assert model.learn_one({"amount_cny": 1.0, "txn_count_1h": 0.0}, 1) is None
    assert model.learn_one({"amount_cny": 0.0, "txn_count_1h": 0.0}) is None
    score = model.score_one({"amount_cny": 0.5, "txn_count_1h": 0.1})
    assert isinstance(score, float) and math.isfinite(score)


def test_scores_before_any_learning(name):
    score = FACTORIES[name]().score_one({"amount_cny": 1.0, "txn_count_1h": 2.0})
    assert isinstance(score, float) and math.isfinite(score)


def test_clone_is_fresh_with_the_same_parameters(name):
    model = FACTORIES[name]()
    teach(model, name, stream(1, 100))
    clone = model.clone()
    assert type(clone) is type(model)
    fresh = FACTORIES[name]()
    x = {"amount_cny": 2.0, "txn_count_1h": -1.0}
    assert clone.score_one(x) == fresh.score_one(x)
    teach(clone, name, stream(1, 100))
    assert clone.score_one(x) == pytest.approx(model.score_one(x))


def test_deterministic_for_a_seeded_stream(name):
    m1, m2 = FACTORIES[name](), FACTORIES[name]()
    data = stream(7)
    teach(m1, name, data)
    teach(m2, name, data)
    probes = [x for x, _ in stream(8, 20)]
    assert [m1.score_one(x) for x in probes] == [m2.score_one(x) for x in probes]


def test_pickle_round_trip_keeps_the_learned_state(name):
    model = FACTORIES[name]()
    teach(model, name, stream(3))
    restored = pickle.loads(pickle.dumps(model))
    probes = [x for x, _ in stream(4, 20)]
    assert [restored.score_one(x) for x in probes] == [model.score_one(x) for x in probes]


def test_it_learns_the_signal(name):
    """Supervised models rank positives above negatives; anomaly scorers rank outliers high."""
    model = FACTORIES[name]()
    teach(model, name, stream(11, 600))
    if name in SUPERVISED:
        test = stream(12, 200)
        pos = [model.score_one(x) for x, y in test if y]
        neg = [model.score_one(x) for x, y in test if not y]
        wins = sum(p > q for p in pos for q in neg) / (len(pos) * len(neg))
        assert wins > 0.9
    else:
        normal = {"amount_cny": 0.5, "txn_count_1h": 0.0}
        outlier = {"amount_cny": 25.0, "txn_count_1h": 0.0}
        assert model.score_one(outlier) > model.score_one(normal)
