"""Metrics against scikit-learn, and bootstrap coverage against a known true value."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from loopml import evaluation
from loopml.evaluation._metrics import average_precision, brier, log_loss, roc_auc


def test_binary_metrics_match_sklearn() -> None:
    from sklearn import metrics as sk

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000).astype(float)
    s = np.round(np.clip(0.3 * y + rng.random(2000) * 0.7, 0, 1), 2)  # rounded: many ties
    assert roc_auc(y, s) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)
    assert log_loss(y, s) == pytest.approx(sk.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15)), abs=1e-9)
    assert brier(y, s) == pytest.approx(sk.brier_score_loss(y, s), abs=1e-12)
    m = evaluation.classification_metrics(y, s, threshold=0.5)
    assert m["f1"] == pytest.approx(sk.f1_score(y, s >= 0.5))


def test_regression_and_ranking_metrics() -> None:
    from sklearn import metrics as sk

    rng = np.random.default_rng(2)
    y = rng.normal(5, 2, 500)
    p = y + rng.normal(0, 1, 500)
    m = evaluation.regression_metrics(y, p)
    assert m["mae"] == pytest.approx(sk.mean_absolute_error(y, p))
    assert m["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, p)))
    assert m["r2"] == pytest.approx(sk.r2_score(y, p))
    assert m["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, p))
    assert "mape" not in evaluation.regression_metrics([0.0, 1.0], [0.1, 1.0])
    query = np.repeat(np.arange(50), 10)
    relevance = rng.integers(0, 2, 500)  # binary: exponential and linear gains agree
    score = relevance + rng.normal(0, 1, 500)
    ours = evaluation.ranking_metrics(query, relevance, score, k=5)
    theirs = np.mean(
        [sk.ndcg_score([relevance[query == q]], [score[query == q]], k=5) for q in range(50)]
    )
    assert ours["ndcg"] == pytest.approx(theirs, abs=1e-9)


def test_thresholds() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 3000).astype(float)
    s = np.clip(0.4 * y + rng.random(3000) * 0.6, 0, 1)
    t = evaluation.threshold_for_precision(y, s, 0.9)
    assert np.mean(y[s >= t]) >= 0.9
    assert np.mean(y[s >= t - 0.02]) < 0.9 or t <= s.min()
    t_cost = evaluation.threshold_for_cost(y, s, false_positive=1.0, false_negative=5.0)
    costs = [np.sum((s >= c) & (y == 0)) + 5 * np.sum((s < c) & (y == 1)) for c in np.unique(s)]
    assert np.sum((s >= t_cost) & (y == 0)) + 5 * np.sum((s < t_cost) & (y == 1)) == min(costs)


def test_bootstrap_interval_covers_true_auc_at_nominal_rate() -> None:
    # Scores of negatives ~ N(0, 1), positives ~ N(d, 1): the true AUC is Phi(d / sqrt(2)).
    d, n, reps = 1.0, 300, 200
    true_auc = norm.cdf(d / np.sqrt(2))
    rng = np.random.default_rng(4)
    covered = 0
    for rep in range(reps):
        y = np.r_[np.zeros(n), np.ones(n)]
        s = np.r_[rng.normal(0, 1, n), rng.normal(d, 1, n)]
        ci = evaluation.bootstrap_interval(roc_auc, y, s, resamples=200, seed=rep)
        covered += ci.low <= true_auc <= ci.high
    # 95% nominal; with 200 repetitions the binomial sd is 1.5 points: accept 0.90..0.99.
    assert 0.90 <= covered / reps <= 0.99, covered / reps


def test_m_out_of_n_bootstrap_covers_true_brier() -> None:
    # p ~ U(0, 1), y ~ Bernoulli(p): the true Brier score of score=p is E[p(1-p)] = 1/6.
    reps, n = 150, 20_000
    rng = np.random.default_rng(5)
    covered = 0
    for rep in range(reps):
        p = rng.random(n)
        y = (rng.random(n) < p).astype(float)
        ci = evaluation.bootstrap_interval(
            brier, y, p, resamples=150, max_resample_size=2000, seed=rep
        )
        assert ci.resample_size == 2000
        covered += ci.low <= 1 / 6 <= ci.high
    assert 0.89 <= covered / reps <= 0.99, covered / reps


def test_ece_is_zero_for_a_calibrated_model_and_large_for_a_miscalibrated_one() -> None:
    rng = np.random.default_rng(6)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(float)
    assert evaluation.expected_calibration_error(y, p) < 0.005
    assert evaluation.expected_calibration_error(y, p**3) > 0.1


def test_paired_difference_finds_a_real_difference_and_not_a_null_one() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 4000).astype(float)
    good = np.clip(0.5 * y + rng.random(4000) * 0.5, 0, 1)
    noise = rng.random(4000)
    assert evaluation.paired_difference_interval(roc_auc, y, good, noise, resamples=200).low > 0
    same = evaluation.paired_difference_interval(roc_auc, y, good, good, resamples=50)
    assert same.value == 0 and same.low == 0 and same.high == 0


def test_headline_metrics_in_one_pass_match_each_metric() -> None:
    from loopml.evaluation import headline_metrics

    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 3000).astype(float)
    s = np.round(np.clip(0.3 * y + rng.random(3000) * 0.7, 0, 1), 2)  # ties
    together = headline_metrics(y, s, "binary_classification")
    one_by_one = [roc_auc(y, s), average_precision(y, s), log_loss(y, s), brier(y, s)]
    np.testing.assert_allclose(together, one_by_one, rtol=1e-12)
    r = rng.normal(size=500)
    p = r + rng.normal(size=500)
    expected = evaluation.regression_metrics(r, p)
    np.testing.assert_allclose(
        headline_metrics(r, p, "regression"), [expected["mae"], expected["rmse"], expected["r2"]]
    )
