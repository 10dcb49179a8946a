"""Sampling: reservoir inclusion laws by chi-square, draw counts, importance weights."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from loopml.core import ConfigError, DataError
from loopml.trainingdata import (
    ReservoirSampler,
    WeightedReservoirSampler,
    importance_weights,
    simple_sample,
    stratified_sample,
    weighted_sample,
)

RUNS = 12_000


def _set_counts(samples: list[tuple[int, ...]]) -> dict[tuple[int, ...], int]:
    counts: dict[tuple[int, ...], int] = {}
    for s in samples:
        key = tuple(sorted(s))
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.parametrize("method", ["L", "R"])
def test_reservoir_sets_are_uniform_chi_square(method: str) -> None:
    n, k = 8, 3
    samples = []
    for run in range(RUNS):
        sampler = ReservoirSampler(k, method=method, seed=run)  # type: ignore[arg-type]
        sampler.update(range(5))
        sampler.update(range(5, n))  # two batches: the state carries over
        samples.append(tuple(sampler.sample()))
    counts = _set_counts(samples)
    sets = list(itertools.combinations(range(n), k))
    observed = np.array([counts.get(s, 0) for s in sets])
    assert observed.sum() == RUNS
    p_value = stats.chisquare(observed).pvalue
    assert p_value > 0.001, p_value


def test_reservoir_inclusion_frequency_is_k_over_n_on_a_long_stream() -> None:
    n, k, runs = 2000, 20, 1500
    counts = np.zeros(n)
    for run in range(runs):
        sampler = ReservoirSampler(k, seed=10_000 + run)
        for start in range(0, n, 300):
            sampler.update(np.arange(start, min(start + 300, n)))
        counts[sampler.sample()] += 1
    # bin items into 20 blocks of 100 so each cell expects 1500 inclusions
    blocks = counts.reshape(20, -1).sum(axis=1)
    expected = runs * k / 20
    statistic = ((blocks - expected) ** 2 / expected).sum()
    # dependent draws within a run make the statistic slightly smaller than chi2(19): conservative
    assert stats.chi2.sf(statistic, 19) > 0.001, (statistic, blocks)


def test_algorithm_l_draws_far_fewer_random_numbers_than_r() -> None:
    n, k = 1_000_000, 100
    samplers = {m: ReservoirSampler(k, method=m, seed=0) for m in ("L", "R")}  # type: ignore[arg-type]
    for sampler in samplers.values():
        sampler.update(range(n))
    expected_l = 3 * k * (1 + math.log(n / k))
    assert samplers["L"].draws_ < 1.3 * expected_l
    assert samplers["R"].draws_ == n - k
    assert samplers["L"].seen_ == samplers["R"].seen_ == n


def _successive_sampling_law(weights: np.ndarray, k: int) -> dict[tuple[int, ...], float]:
    law: dict[tuple[int, ...], float] = {}
    total = weights.sum()
    for order in itertools.permutations(range(len(weights)), k):
        p, left = 1.0, total
        for i in order:
            p *= weights[i] / left
            left -= weights[i]
        key = tuple(sorted(order))
        law[key] = law.get(key, 0.0) + p
    return law


def test_weighted_reservoir_follows_the_weight_law_chi_square() -> None:
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    k = 2
    samples = []
    for run in range(RUNS):
        sampler = WeightedReservoirSampler(k, seed=run)
        sampler.update(list(range(3)), weights[:3])
        sampler.update(list(range(3, 7)), weights[3:])
        samples.append(tuple(sampler.sample()))
    law = _successive_sampling_law(weights, k)
    counts = _set_counts(samples)
    keys = sorted(law)
    observed = np.array([counts.get(s, 0) for s in keys])
    expected = np.array([law[s] for s in keys]) * RUNS
    assert abs(expected.sum() - RUNS) < 1e-6
    p_value = stats.chisquare(observed, expected).pvalue
    assert p_value > 0.001, p_value


def test_weighted_reservoir_single_item_probability_is_proportional_to_weight() -> None:
    rng = np.random.default_rng(0)
    weights = rng.uniform(0.5, 5.0, size=12)
    picks = np.zeros(12)
    for run in range(RUNS):
        sampler = WeightedReservoirSampler(1, seed=run)
        sampler.update(list(range(12)), weights)
        picks[sampler.sample()[0]] += 1
    expected = weights / weights.sum() * RUNS
    assert stats.chisquare(picks, expected).pvalue > 0.001


def test_log_keys_survive_tiny_weights() -> None:
    sampler = WeightedReservoirSampler(3, seed=1)
    tiny = np.full(1000, 1e-300)
    tiny[[10, 500, 900]] = 1.0
    sampler.update(list(range(1000)), tiny)
    assert sorted(sampler.sample()) == [10, 500, 900]
    with pytest.raises(DataError, match="item 2"):
        WeightedReservoirSampler(2).update([1, 2, 3], [1.0, 1.0, -1.0])
    with pytest.raises(ConfigError, match="'k' parameter"):
        ReservoirSampler(0)


def test_simple_stratified_weighted() -> None:
    frame = pd.DataFrame({"y": [0] * 900 + [1] * 100, "w": np.r_[np.ones(900), np.zeros(100)]})
    assert len(simple_sample(frame, frac=0.1)) == 100
    mixed = stratified_sample(frame, "y", n=100)
    assert mixed["y"].sum() == 10
    equal = stratified_sample(frame, "y", n=300, allocation="equal")
    assert equal["y"].value_counts().to_dict() == {0: 200, 1: 100}
    assert weighted_sample(frame, "w", n=50)["y"].sum() == 0
    with pytest.raises(ConfigError, match="exactly one"):
        simple_sample(frame)
    with pytest.raises(DataError, match="row 3"):
        weighted_sample(frame, np.r_[1, 1, 1, np.nan, np.ones(996)], n=5)


def test_importance_weights_recover_a_known_density_ratio() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    source = pd.DataFrame({"x": rng.normal(0.0, 1.0, n), "z": rng.normal(0.0, 1.0, n)})
    target = pd.DataFrame({"x": rng.normal(0.5, 1.0, n), "z": rng.normal(0.0, 1.0, n)})
    true_ratio = np.exp(0.5 * source["x"].to_numpy() - 0.125)  # N(0.5,1) / N(0,1)
    for classifier, tolerance, mean_tolerance in (
        ("logistic", 0.05, 0.03),
        ("lightgbm", 0.1, 0.04),
    ):
        result = importance_weights(source, target, classifier=classifier)  # type: ignore[arg-type]
        central = np.abs(source["x"].to_numpy()) < 2
        relative = np.abs(result.weights - true_ratio) / true_ratio
        assert np.median(relative[central]) < tolerance, (classifier, np.median(relative))
        weighted_mean = np.average(source["x"], weights=result.weights)
        assert abs(weighted_mean - 0.5) < mean_tolerance, (classifier, weighted_mean)
        # ESS of the true weights: n / E[w^2] = n / exp(0.25)
        assert abs(result.ess_ratio - math.exp(-0.25)) < 0.06
        assert 0.55 < result.auc < 0.67


def test_importance_weights_clip_and_report() -> None:
    rng = np.random.default_rng(4)
    source = pd.DataFrame({"x": rng.normal(0, 1, 3000)})
    target = pd.DataFrame({"x": rng.normal(3, 1, 3000)})
    result = importance_weights(source, target, classifier="logistic", clip=5.0)
    assert result.clipped > 0
    assert np.isclose(result.weights, result.weights.max()).sum() == result.clipped
    assert abs(result.weights.mean() - 1.0) < 1e-9
    assert result.ess_ratio < 0.3
    with pytest.raises(ConfigError, match="'clip'"):
        importance_weights(source, target, clip=1.0)
