"""Multivariate drift and BBSE: calibrated under no drift, powerful on known changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from loopml.core import ConfigError, DataError, SchemaError
from loopml.monitoring import (
    domain_classifier_test,
    estimate_label_shift,
    mmd_test,
    pca_reconstruction_test,
)


def _correlated(rng: np.random.Generator, n: int, rho: float) -> pd.DataFrame:
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"a": a, "b": b, "c": rng.choice(["x", "y"], size=n)})


def test_all_three_find_a_change_of_correlation_that_marginals_hide() -> None:
    rng = np.random.default_rng(0)
    reference, current = _correlated(rng, 1500, 0.0), _correlated(rng, 1500, 0.9)
    domain = domain_classifier_test(reference, current, n_permutations=200)
    mmd = mmd_test(reference, current, n_permutations=200, max_rows=500)
    pca = pca_reconstruction_test(_correlated(rng, 3000, 0.9), _correlated(rng, 1500, 0.0))
    assert domain.drifted and domain.score > 0.6 and domain.p_value == pytest.approx(1 / 201)
    assert set(domain.details["top_features"]) & {"a", "b"}
    assert mmd.drifted
    assert pca.drifted and pca.score > 1.5
    for result in (domain, mmd, pca):
        assert result.reason and result.to_dict()["n_current"] > 0


@pytest.mark.slow
def test_domain_classifier_and_mmd_keep_their_size_without_drift() -> None:
    # 40 no-drift repetitions at alpha 0.1: rejections follow at most Binomial(40, 0.1);
    # we allow its 99.9th percentile.
    rng = np.random.default_rng(1)
    repetitions, alpha = 40, 0.1
    domain_alarms = mmd_alarms = 0
    for seed in range(repetitions):
        reference, current = _correlated(rng, 300, 0.3), _correlated(rng, 300, 0.3)
        domain_alarms += domain_classifier_test(reference, current, n_splits=3, n_permutations=200,
                                                alpha=alpha, seed=seed).drifted
        mmd_alarms += mmd_test(reference, current, n_permutations=200, alpha=alpha, seed=seed).drifted
    limit = int(binom.ppf(0.999, repetitions, alpha))
    assert domain_alarms <= limit and mmd_alarms <= limit, (domain_alarms, mmd_alarms, limit)


def test_mmd_p_value_has_the_plus_one_correction() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": rng.normal(size=50)})
    result = mmd_test(frame, pd.DataFrame({"a": rng.normal(5, 1, size=50)}), n_permutations=9)
    assert result.p_value == pytest.approx(0.1)  # never 0: (1 + 0) / (1 + 9)


def test_multivariate_bad_input() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0] * 100})
    with pytest.raises(SchemaError, match="missing"):
        mmd_test(frame, frame.rename(columns={"a": "b"}))
    with pytest.raises(ConfigError, match="n_permutations"):
        domain_classifier_test(frame, frame, n_permutations=0)
    with pytest.raises(ConfigError, match="variance"):
        pca_reconstruction_test(frame, frame, variance=1.5)


def _classifier_outputs(rng: np.random.Generator, priors: list[float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed 3-class 'model' with class-dependent confusion; label shift leaves P(pred | y) fixed."""
    confusion = np.array([[0.8, 0.15, 0.05], [0.1, 0.7, 0.2], [0.05, 0.25, 0.7]])  # row = true class
    labels = rng.choice(3, p=priors, size=n)
    predictions = np.array([rng.choice(3, p=confusion[y]) for y in labels])
    return labels, predictions


def test_bbse_recovers_known_priors() -> None:
    rng = np.random.default_rng(3)
    y_val, pred_val = _classifier_outputs(rng, [1 / 3, 1 / 3, 1 / 3], 30_000)
    for truth in ([0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [1 / 3, 1 / 3, 1 / 3]):
        y_now, pred_now = _classifier_outputs(rng, truth, 20_000)
        result = estimate_label_shift(y_val, pred_val, pred_now)
        assert np.abs(result.target_priors - truth).max() < 0.03, (truth, result.target_priors)
        assert result.drifted == (truth[0] != 1 / 3)
        weights = result.importance_weights(y_val)
        reweighted = np.bincount(y_val, weights=weights, minlength=3) / weights.sum()
        assert np.abs(reweighted - truth).max() < 0.03


def test_bbse_soft_predictions() -> None:
    rng = np.random.default_rng(4)
    def soft(n: int, p1: float) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(n) < p1).astype(int)
        score = 1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(size=n))))
        return y, np.c_[1 - score, score]
    y_val, prob_val = soft(20_000, 0.5)
    _, prob_now = soft(20_000, 0.15)
    result = estimate_label_shift(y_val, prob_val, prob_now)
    assert result.target_priors[1] == pytest.approx(0.15, abs=0.02)


def test_bbse_bad_input() -> None:
    with pytest.raises(DataError, match="at least two classes"):
        estimate_label_shift([1, 1], [1, 1], [1])
    with pytest.raises(DataError, match="not among the classes"):
        estimate_label_shift([0, 1], [0, 1], [0, 2])
    with pytest.raises(DataError, match="probability columns"):
        estimate_label_shift([0, 1], [0, 1], np.ones((3, 3)) / 3)
