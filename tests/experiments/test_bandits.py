"""Bandits: sub-linear regret, convergence, exact propensities, contextual learning."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.core import ConfigError, DataError
from loopml.experiments import (
    UCB1,
    EpsilonGreedy,
    LinearThompson,
    LinUCB,
    ThompsonBernoulli,
    ThompsonGaussian,
    estimate_policy_value,
)

MEANS = np.array([0.05, 0.10, 0.15, 0.20])
WIDE = np.array([0.1, 0.3, 0.5, 0.7])


def _run(
    bandit: EpsilonGreedy | UCB1 | ThompsonBernoulli,
    horizon: int,
    seed: int,
    means: np.ndarray = MEANS,
) -> np.ndarray:
    """Pull ``horizon`` times on Bernoulli arms; returns the arm chosen at each step."""
    rng = np.random.default_rng(seed)
    coins = rng.random(horizon)
    arms = np.empty(horizon, dtype=np.int64)
    for step in range(horizon):
        arm, _ = bandit.select()
        bandit.update(arm, float(coins[step] < means[arm]))
        arms[step] = arm
    return arms


@pytest.mark.parametrize(
    "make",
    [
        lambda s: UCB1(4, seed=s),
        lambda s: ThompsonBernoulli(4, refresh_every=5, n_draws=500, seed=s),
    ],
    ids=["ucb1", "thompson"],
)
def test_regret_grows_sub_linearly(make: object) -> None:
    horizon, seeds = 8000, 4
    gaps = WIDE.max() - WIDE
    runs = [gaps[_run(make(s), horizon, s, WIDE)] for s in range(seeds)]  # type: ignore[operator]
    regret = np.mean([np.cumsum(r) for r in runs], axis=0)
    early, late = regret[horizon // 8 - 1], regret[-1]
    # Linear regret would multiply by 8 when the horizon does; log-like regret by far less.
    assert late / early < 3.5, (early, late)
    # and the per-step regret at the end is a small fraction of a uniform policy's (0.3)
    assert (regret[-1] - regret[-2001]) / 2000 < 0.03


def test_thompson_converges_to_the_best_arm() -> None:
    bandit = ThompsonBernoulli(4, refresh_every=10, seed=3)
    arms = _run(bandit, 6000, seed=3)
    assert np.mean(arms[-1000:] == 3) > 0.9
    assert bandit.probabilities()[3] > 0.9


def test_epsilon_greedy_propensities_are_exact_and_support_off_policy_evaluation() -> None:
    """The logged propensities make IPW recover the value of another policy."""
    rng = np.random.default_rng(4)
    bandit = EpsilonGreedy(4, epsilon=0.3, seed=4)
    n = 30_000
    arms, props, rewards = np.empty(n, int), np.empty(n), np.empty(n)
    for i in range(n):
        arm, p = bandit.select()
        assert p == pytest.approx(bandit.probabilities()[arm])
        reward = float(rng.random() < MEANS[arm])
        bandit.update(arm, reward)
        arms[i], props[i], rewards[i] = arm, p, reward
    uniform = np.full((n, 4), 0.25)
    estimate = estimate_policy_value(
        rewards, arms, props, uniform, estimators=["ipw"], n_bootstrap=0
    )
    assert estimate["ipw"].value == pytest.approx(MEANS.mean(), abs=0.006)


def test_thompson_logged_propensity_is_the_probability_it_sampled_from() -> None:
    bandit = ThompsonBernoulli(3, n_draws=4000, seed=5)
    for arm, reward in [(0, 1.0), (0, 0.0), (1, 1.0), (1, 1.0), (2, 0.0)]:
        bandit.update(arm, reward)
    probs = bandit.probabilities().copy()
    picks = [bandit.select() for _ in range(20_000)]  # no update: the cache stays
    freq = np.bincount([a for a, _ in picks], minlength=3) / len(picks)
    assert np.allclose(freq, probs, atol=0.015)
    assert all(p == probs[a] for a, p in picks)
    # Exact posterior P(best) by numerical integration agrees with the Monte Carlo estimate.
    from scipy import integrate, stats

    post = [stats.beta(2, 2), stats.beta(3, 1), stats.beta(1, 2)]
    exact_1 = integrate.quad(lambda x: post[1].pdf(x) * post[0].cdf(x) * post[2].cdf(x), 0, 1)[0]
    assert probs[1] == pytest.approx(exact_1, abs=0.03)


def test_gaussian_thompson_and_ucb_pick_the_best_real_valued_arm() -> None:
    rng = np.random.default_rng(6)
    means = [1.0, 1.2, 0.8]
    bandit = ThompsonGaussian(3, seed=6, refresh_every=5)
    for _ in range(3000):
        arm, _ = bandit.select()
        bandit.update(arm, rng.normal(means[arm], 1.0))
    assert int(np.argmax(bandit.counts_)) == 1
    assert bandit.counts_[1] > 0.7 * 3000


def test_linucb_disjoint_and_shared_learn_the_best_arm_per_context() -> None:
    rng = np.random.default_rng(7)
    theta = np.array([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    disjoint = LinUCB(3, 3, alpha=0.5, seed=7)
    for _ in range(1500):
        x = rng.normal(size=3)
        arm, p = disjoint.select(x)
        assert p in (1.0, 0.5, 1 / 3)
        disjoint.update(x, arm, float(theta[arm] @ x + rng.normal(0, 0.1)))
    tests = rng.normal(size=(500, 3))
    best = np.argmax(tests @ theta.T, axis=1)
    chosen = np.array([disjoint.select(x)[0] for x in tests])
    assert np.mean(chosen == best) > 0.9
    # shared: items described by features, one model; the learnt weights approach the truth
    items = rng.normal(size=(10, 4))
    w = np.array([0.5, -0.2, 0.3, 0.0])
    shared = LinUCB(10, 4, alpha=1.0, shared=True, seed=7)
    for _ in range(1000):
        arm, _ = shared.select(items)
        shared.update(items, arm, float(items[arm] @ w + rng.normal(0, 0.1)))
    values = items @ w
    assert values[shared.select(items)[0]] >= values.max() - 0.05
    assert shared.counts_[int(np.argmax(values))] > 500


@pytest.mark.parametrize("shared", [False, True])
def test_linear_thompson_propensities_and_learning(shared: bool) -> None:
    rng = np.random.default_rng(8)
    n_arms, dim = 4, 3
    true = rng.normal(size=(n_arms, dim))
    bandit = LinearThompson(n_arms, dim, shared=shared, scale=0.3, seed=8)
    hits = 0
    for step in range(1200):
        x = rng.normal(size=dim)
        context = np.stack([x * (a + 1) / n_arms for a in range(n_arms)]) if shared else x
        arm, p = bandit.select(context)
        assert 0 < p <= 1
        values = np.array([context[a] @ true[0] for a in range(n_arms)]) if shared else true @ x
        bandit.update(context, arm, float(values[arm] + rng.normal(0, 0.1)))
        hits += step >= 900 and arm == int(np.argmax(values))
    assert hits / 300 > 0.8


def test_bad_bandit_input_is_named() -> None:
    with pytest.raises(ConfigError, match="'epsilon' parameter of EpsilonGreedy"):
        EpsilonGreedy(3, epsilon=1.5)
    with pytest.raises(ConfigError, match="'n_arms' parameter of UCB1"):
        UCB1(0)
    with pytest.raises(DataError, match="arms are 0..2"):
        UCB1(3).update(3, 1.0)
    with pytest.raises(DataError, match=r"rewards must lie in \[0, 1\]"):
        ThompsonBernoulli(2).update(0, 2.0)
    with pytest.raises(DataError, match="non-finite reward"):
        ThompsonGaussian(2).update(0, float("nan"))
    with pytest.raises(DataError, match=r"context of shape \(3,\)"):
        LinUCB(2, 3).select(np.zeros(4))
    with pytest.raises(DataError, match=r"context of shape \(2, 3\)"):
        LinearThompson(2, 3, shared=True).select(np.zeros(3))
