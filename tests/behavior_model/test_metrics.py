"""Metrics on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from behavior_model.metrics import binary_metrics, expected_calibration_error, lift_top_decile


def test_ece_of_a_calibrated_and_a_miscalibrated_model():
    y = np.array([0, 0, 0, 1] * 25)
    assert expected_calibration_error(y, np.full(100, 0.25)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.75)) == pytest.approx(0.5)
    # Two bins: p=0.1 (true rate 0.0) and p=0.9 (true rate 1.0), half each: ECE = 0.1.
    assert expected_calibration_error(np.array([0, 1]), np.array([0.1, 0.9])) == pytest.approx(0.1)


def test_lift_top_decile():
    y = np.array([1] + [0] * 9 + [1] * 10)  # rate 0.55
    p = np.array([0.9, 0.8] + [0.1] * 18)  # top 2 = one positive
    assert lift_top_decile(y, p) == pytest.approx(0.5 / 0.55)


def test_binary_metrics_with_interval():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    m = binary_metrics(y, p, bootstrap=100)
    assert m["roc_auc_low"] < m["roc_auc"] < m["roc_auc_high"]
    assert 0.85 < m["roc_auc"] < 0.95 and m["n_users"] == 500
    assert set(m) >= {"pr_auc", "log_loss", "brier", "ece", "lift_top_decile", "positive_rate"}


def test_platt_keeps_ranking_and_never_inverts_it():
    from behavior_model.calibration import apply_platt, fit_platt

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 2000), 0.01, 0.99)  # over-confident
    a, b = fit_platt(p, y)
    q = apply_platt(p, a, b)
    assert a > 0 and (np.argsort(p) == np.argsort(q)).all()
    assert expected_calibration_error(y, q) < expected_calibration_error(y, p)
    a, b = fit_platt(1 - p, y)  # an inverted model gets the base rate, not a flipped ranking
    assert a == 0.0 and apply_platt(1 - p, a, b) == pytest.approx(np.full(2000, y.mean()))


def test_paired_auc_difference_and_its_interval():
    from sklearn.metrics import roc_auc_score

    from behavior_model.metrics import paired_auc_difference

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 2000)
    signal = y + rng.normal(0, 1.0, len(y))
    noise = rng.normal(0, 1.0, len(y))
    same = paired_auc_difference(y, signal, signal, n=50)
    assert same == (0.0, 0.0, 0.0)  # paired: a model against itself differs by exactly nothing
    diff, low, high = paired_auc_difference(y, signal, noise, n=200)
    assert diff == pytest.approx(roc_auc_score(y, signal) - roc_auc_score(y, noise))
    assert 0.15 < low < diff < high  # a real signal beats noise, and the interval says so
    weaker = signal + rng.normal(0, 0.3, len(y))  # nearly the same model: a tight paired interval
    d2, lo2, hi2 = paired_auc_difference(y, signal, weaker, n=200)
    assert lo2 <= d2 <= hi2 and hi2 - lo2 < 0.03
    assert all(np.isnan(paired_auc_difference(np.ones(5), signal[:5], noise[:5])))


def test_platt_intercept_moves_to_the_pooled_base_rate():
    from behavior_model.calibration import apply_columns, fit_columns, fit_platt

    rng = np.random.default_rng(5)

    def draw(rate: float, n: int = 20000):
        """The same class-conditional scores, a different base rate: a pure prior shift."""
        y = (rng.random(n) < rate).astype(int)
        p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.5 * y - 0.75)))
        return y, p

    y_val, p_val = draw(0.5)  # the validation cutoff's rate
    y_new, p_new = draw(0.3)  # a later date's
    a, b = fit_platt(p_val, y_val)
    ((a2, b2),) = fit_columns(p_val[:, None], {"churn": y_val}, ["churn"], priors={"churn": 0.3})
    assert a2 == a  # the slope (the ranking and its spread) is untouched
    logit = lambda r: np.log(r / (1 - r))  # noqa: E731
    assert b2 - b == pytest.approx(logit(0.3) - logit(y_val.mean()))
    at_val = apply_columns(p_new[:, None], [(a, b)])[:, 0]
    moved = apply_columns(p_new[:, None], [(a2, b2)])[:, 0]
    # Where the base rate really moved to the prior, the moved intercept is calibrated there.
    assert abs(moved.mean() - y_new.mean()) < 0.01 < abs(at_val.mean() - y_new.mean())
    assert expected_calibration_error(y_new, moved) < 0.5 * expected_calibration_error(
        y_new, at_val
    )


def test_known_rate_shift_meets_the_rate_and_keeps_the_ranking():
    from behavior_model.calibration import shift_to_rate

    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 500)
    y = (rng.uniform(size=500) < np.clip(p - 0.2, 0, 1)).astype(float)  # over-predicted by ~0.2
    shifted = shift_to_rate(p, y.mean())
    assert shifted.mean() == pytest.approx(y.mean(), abs=1e-6)
    assert (np.argsort(shifted) == np.argsort(p)).all()
    assert expected_calibration_error(y, shifted) < 0.5 * expected_calibration_error(y, p)


@pytest.mark.parametrize("decimals", [None, 1])  # distinct scores, and scores with many ties
def test_auc_of_a_resample_equals_sklearn_on_the_drawn_users(decimals):
    from sklearn.metrics import roc_auc_score

    from behavior_model.metrics import RankedScores

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    p = rng.random(400) + 0.4 * y
    if decimals is not None:
        p = np.round(p, decimals)
    ranked = RankedScores(y, p)
    for _ in range(5):
        counts = np.bincount(rng.integers(0, 400, 400), minlength=400)
        drawn = np.repeat(np.arange(400), counts)
        assert ranked.auc(counts) == pytest.approx(roc_auc_score(y[drawn], p[drawn]), abs=1e-12)
    assert np.isnan(ranked.auc(np.where(y == 1, 1, 0)))  # positives only drawn
