"""Model contract suite for the satisfaction model, and its monitor and checkpoint."""

from __future__ import annotations

import base64
import math
import pickle
import random

import pytest

from finpulse.models.satisfaction import SatisfactionModel, SatisfactionMonitor
from finpulse.sinks.checkpoints import MemoryCheckpoints, checkpoint_row

MODELS = [SatisfactionModel]


def _sample(rng: random.Random) -> tuple[dict[str, float], int]:
    wait = rng.lognormvariate(2.3, 0.9)
    resolved = rng.random() < 0.8
    sentiment = rng.uniform(-1, 1)
    z = 3.4 + (0.8 if resolved else -0.5) - 0.5 * math.log(wait / 10) + sentiment
    y = int(min(5, max(1, round(z + rng.gauss(0, 0.5)))))
    x = {"wait_log": math.log1p(wait), "resolved": float(resolved), "sentiment": sentiment}
    return x, y


@pytest.fixture(params=MODELS, ids=lambda m: m.__name__)
def model(request):
    return request.param()


def test_outputs_have_the_contract_types_before_learning(model):
    x, _ = _sample(random.Random(0))
    assert isinstance(model.predict_one(x), float)
    assert 0.0 <= model.score_one(x) <= 1.0
    assert isinstance(model.explain_one(x), list)
    assert isinstance(model.model_version, str) and model.model_version


def test_learns_online_and_beats_the_running_mean(model):
    rng = random.Random(1)
    monitor = SatisfactionMonitor(warmup=200)
    for _ in range(2000):
        x, y = _sample(rng)
        monitor.update(model.predict_one(x), model.score_one(x), y)
        model.learn_one(x, y)
    figs = monitor.figures()
    assert figs["mae_after_warmup"] < 0.8 * figs["mae_baseline_after_warmup"]
    assert figs["auc_after_warmup"] > 0.8


def test_predictions_stay_on_the_csat_scale(model):
    rng = random.Random(2)
    for _ in range(300):
        x, y = _sample(rng)
        model.learn_one(x, y)
    extreme = {"wait_log": 50.0, "resolved": 0.0, "sentiment": -1.0}
    assert model.predict_one(extreme) == 1.0
    assert model.score_one(extreme) > 0.9
    assert 1.0 <= model.predict_one({}) <= 5.0  # missing features are fine


def test_clone_is_untrained_with_the_same_parameters(model):
    rng = random.Random(3)
    for _ in range(200):
        model.learn_one(*_sample(rng))
    fresh = model.clone()
    assert type(fresh) is type(model) and fresh is not model
    assert fresh.n_learned == 0
    x, _ = _sample(rng)
    assert fresh.predict_one(x) == type(model)().predict_one(x)
    assert vars(fresh).keys() == vars(model).keys()


def test_same_data_same_model(model):
    other = model.clone()
    rng1, rng2 = random.Random(4), random.Random(4)
    for _ in range(300):
        model.learn_one(*_sample(rng1))
        other.learn_one(*_sample(rng2))
    x, _ = _sample(random.Random(5))
    assert model.predict_one(x) == other.predict_one(x)


def test_reason_codes_name_what_lowers_the_prediction(model):
    rng = random.Random(6)
    for _ in range(1000):
        model.learn_one(*_sample(rng))
    bad = {"wait_log": math.log1p(400.0), "resolved": 0.0, "sentiment": 0.3}
    codes = model.explain_one(bad)
    assert set(codes[:2]) == {"long_wait", "unresolved"}
    good = {"wait_log": math.log1p(2.0), "resolved": 1.0, "sentiment": 0.9}
    assert model.explain_one(good) == []


def test_model_version_moves_with_learning(model):
    rng = random.Random(7)
    v0 = model.model_version
    for _ in range(600):
        model.learn_one(*_sample(rng))
    assert model.model_version != v0


def test_checkpoint_restores_an_identical_model(model, tmp_path):
    rng = random.Random(8)
    monitor = SatisfactionMonitor(warmup=10)
    for _ in range(300):
        x, y = _sample(rng)
        monitor.update(model.predict_one(x), model.score_one(x), y)
        model.learn_one(x, y)
    store = MemoryCheckpoints()
    store.save_row(checkpoint_row("satisfaction", "v", 300, {"model": model, "monitor": monitor}))
    restored = store.load_latest("satisfaction")
    x, _ = _sample(rng)
    assert restored["model"].predict_one(x) == model.predict_one(x)
    assert restored["model"].model_version == model.model_version
    assert restored["monitor"].figures() == monitor.figures()
    assert pickle.loads(pickle.dumps(model)).score_one(x) == model.score_one(x)


def test_unreadable_checkpoint_is_ignored():
    store = MemoryCheckpoints()
    row = checkpoint_row("satisfaction", "v", 1, {})
    store.save_row((*row[:5], base64.b64encode(b"not a pickle").decode(), *row[6:]))
    assert store.load_latest("satisfaction") is None
