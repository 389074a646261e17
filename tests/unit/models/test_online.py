"""The batch paths of the River models give River's own per-row results (within round-off)."""

import numpy as np
import pytest

from finpulse.models.online import DeviationScorer, RiverLogistic, frame
from finpulse.models.risk import INPUT_NAMES, RiskModel

COLUMNS = ("a", "b", "c", "d")


def batches(seed=0, n_batches=4, n=300):
    rng = np.random.default_rng(seed)
    scale = np.array([1.0, 10.0, 0.1, 100.0])
    return [rng.normal(size=(n, len(COLUMNS))) * scale + 5.0 for _ in range(n_batches)]


def test_transform_frame_equals_rivers_transform_many():
    d = DeviationScorer()
    data = batches(seed=3)
    X = frame(np.column_stack((data[0], np.full(len(data[0]), 2.0))), (*COLUMNS, "const"))
    d.learn_many(X)  # "const": variance 0, centred but not divided, as River does
    for B in data[1:]:
        Y = frame(np.column_stack((B, np.full(len(B), 3.0))), (*COLUMNS, "const"))
        expected = d.scaler.transform_many(Y).to_numpy()
        np.testing.assert_allclose(d.scaler.transform_frame(Y), expected, rtol=1e-12, atol=1e-12)


def test_deviation_scores_equal_rivers_own_transform_one():
    d = DeviationScorer(upper=["a", "c"])
    data = batches()
    for X in data[:-1]:
        d.learn_many(frame(X, COLUMNS))
    X = data[-1] * 1.5  # some rows far out, so the clip matters too
    scores, terms = d.score_many(frame(X, COLUMNS))
    for row, score, term in zip(X, scores, terms, strict=True):
        z = d.scaler.transform_one(dict(zip(COLUMNS, row.tolist(), strict=True)))
        expected = [
            min(max(z[k], 0.0) if k in d.upper else abs(z[k]), d.clip) ** 2 for k in COLUMNS
        ]
        np.testing.assert_allclose(term, expected, rtol=1e-9, atol=1e-12)
        assert score == pytest.approx(1.0 - np.exp(-sum(expected) / d.scale), rel=1e-9)


def test_logistic_probabilities_equal_rivers_own_predict_proba_one():
    m = RiverLogistic()
    data = batches(seed=1)
    for X in data[:-1]:
        m.learn_many(frame(X, COLUMNS), (X[:, 0] > 5.0).astype(int).tolist())
    X = data[-1] * 3.0  # beyond the clip for some rows
    got = m.predict_proba_many(frame(X, COLUMNS))
    logits, terms = m.logits_many(frame(X, COLUMNS))
    for row, p, logit, term in zip(X, got, logits, terms, strict=True):
        z = m.scaler.transform_one(dict(zip(COLUMNS, row.tolist(), strict=True)))
        clipped = {k: min(max(v, -m.clip), m.clip) for k, v in z.items()}
        assert p == pytest.approx(m.classifier.predict_proba_one(clipped)[True], rel=1e-9)
        w = m.classifier.weights
        np.testing.assert_allclose(term, [w[k] * clipped[k] for k in COLUMNS], atol=1e-12)
        assert logit == pytest.approx(sum(term) + m.classifier.intercept, rel=1e-9)


def test_one_anomaly_frame_per_batch_scores_and_learns_as_separate_frames():
    shared, separate = RiskModel(), RiskModel()
    rng = np.random.default_rng(2)
    for _ in range(4):
        X = np.abs(rng.normal(size=(200, len(INPUT_NAMES)))) * 3.0
        XA = shared.anomaly_frame(X)
        (got, XS_got), (expected, XS_expected) = (
            shared.assess_batch(X, XA),
            separate.assess_batch(X),
        )
        assert got == expected
        np.testing.assert_array_equal(XS_got, XS_expected)
        shared.learn_many(X, XA)
        separate.learn_many(X)
    assert shared.n_scored == separate.n_scored == 800
    a, b = shared.anomaly.scaler, separate.anomaly.scaler
    assert (a.counts, a.means, a.vars) == (b.counts, b.means, b.vars)
