"""The rank statistics the leakage checks rely on agree with SciPy and scikit-learn."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from loopml.trainingdata._stats import auc, average_ranks, spearman


def test_ranks_auc_and_spearman_match_the_references() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.normal(size=2000), rng.integers(0, 7, 2000).astype(float)):
        assert np.allclose(average_ranks(values), rankdata(values))
        positive = rng.random(2000) < 0.2
        assert abs(auc(values, positive) - roc_auc_score(positive, values)) < 1e-12
        other = values + rng.normal(size=2000)
        assert abs(spearman(values, other) - spearmanr(values, other).statistic) < 1e-12
    assert np.isnan(auc(np.ones(3), np.zeros(3)))
    assert np.isnan(spearman(np.ones(3), np.arange(3.0)))
