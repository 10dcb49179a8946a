"""Multi-armed bandits for choosing among model versions by live reward.

Every bandit exposes the same small contract::

    select() -> (arm, propensity)   # the propensity is the probability of that choice
    update(arm, reward)
    probabilities() -> array        # the whole current action distribution

``select`` is cheap (pure Python on a cached distribution) so the serving path can call
it per request. Thompson sampling keeps its action distribution as a Monte Carlo estimate
of P(arm is best | posterior) and *samples from that estimate*, so the logged propensity is
exactly the probability with which the arm was chosen (what off-policy evaluation needs).
"""

from __future__ import annotations

import bisect
import math
import random
from itertools import accumulate

import numpy as np
from numpy.typing import NDArray

from loopml.core import ConfigError, DataError

__all__ = ["UCB1", "EpsilonGreedy", "ThompsonBernoulli", "ThompsonGaussian"]


def _check_arms(n_arms: int, owner: str) -> None:
    if not isinstance(n_arms, int) or n_arms < 1:
        raise ConfigError(
            f"The 'n_arms' parameter of {owner} must be an integer >= 1. Got {n_arms!r} instead."
        )


class _Bandit:
    """Shared bookkeeping: counts, reward sums, a seeded generator, argument checks."""

    def __init__(self, n_arms: int, seed: int | None) -> None:
        _check_arms(n_arms, type(self).__name__)
        self.n_arms = n_arms
        self.seed = seed
        self.counts_ = [0] * n_arms
        self.sums_ = [0.0] * n_arms
        self._random = random.Random(seed)
        self._refresh = 1  # updates after which the cached distribution is recomputed
        self._probs: list[float] = []
        self._cumulative: list[float] = []
        self._stale = 0

    @property
    def t_(self) -> int:
        """Number of rewards seen."""
        return sum(self.counts_)

    def _check_update(self, arm: int, reward: float) -> None:
        if not 0 <= arm < self.n_arms:
            raise DataError(
                f"{type(self).__name__}.update got arm {arm!r}; arms are 0..{self.n_arms - 1}."
            )
        if not math.isfinite(reward):
            raise DataError(f"{type(self).__name__}.update got a non-finite reward {reward!r}.")

    def update(self, arm: int, reward: float) -> None:
        """Record the reward of one pull of ``arm``."""
        self._check_update(arm, reward)
        self.counts_[arm] += 1
        self.sums_[arm] += reward
        self._stale += 1

    def means(self) -> list[float]:
        """Empirical mean reward of each arm (0 for an arm never pulled)."""
        return [s / n if n else 0.0 for s, n in zip(self.sums_, self.counts_, strict=True)]

    def _compute(self) -> list[float]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _ensure(self) -> None:
        if not self._probs or self._stale >= self._refresh:
            self._probs = self._compute()
            self._cumulative = list(accumulate(self._probs))
            self._stale = 0

    def probabilities(self) -> NDArray[np.float64]:
        """The current action distribution (what ``select`` samples from)."""
        self._ensure()
        return np.asarray(self._probs, dtype=np.float64)

    def select(self) -> tuple[int, float]:
        """Choose an arm; returns ``(arm, probability it had of being chosen)``."""
        self._ensure()
        cumulative = self._cumulative
        arm = bisect.bisect_right(cumulative, self._random.random() * cumulative[-1])
        arm = min(arm, self.n_arms - 1)
        return arm, self._probs[arm]


def _uniform_over_best(scores: list[float]) -> list[float]:
    best = max(scores)
    ties = [s >= best - 1e-12 for s in scores]
    share = 1.0 / sum(ties)
    return [share if tie else 0.0 for tie in ties]


class EpsilonGreedy(_Bandit):
    """Explore uniformly with probability ``epsilon``, else play the best mean (ties split).

    >>> bandit = EpsilonGreedy(3, epsilon=0.1, seed=0)
    >>> for _ in range(200):
    ...     arm, p = bandit.select(); bandit.update(arm, float(arm == 2))
    >>> int(np.argmax(bandit.probabilities())), round(float(bandit.probabilities().max()), 3)
    (2, 0.933)
    """

    def __init__(self, n_arms: int, *, epsilon: float = 0.1, seed: int | None = None) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(
                f"The 'epsilon' parameter of EpsilonGreedy must be in [0, 1]. Got {epsilon!r} "
                "instead."
            )
        super().__init__(n_arms, seed)
        self.epsilon = epsilon

    def _compute(self) -> list[float]:
        """``epsilon / k`` everywhere plus ``1 - epsilon`` split over the best arms."""
        floor = self.epsilon / self.n_arms
        return [floor + (1 - self.epsilon) * g for g in _uniform_over_best(self.means())]


class UCB1(_Bandit):
    """UCB1 (Auer et al. 2002): each arm once, then ``mean + c * sqrt(2 ln t / n)``.

    Deterministic apart from ties, so propensities are 1 (or 1/ties). Rewards should lie in
    [0, 1]; ``exploration`` scales the bonus for other ranges.

    >>> bandit = UCB1(2, seed=0)
    >>> [bandit.select()[0] for _ in range(1)], bandit.select()[1]
    ([0], 1.0)
    """

    def __init__(self, n_arms: int, *, exploration: float = 1.0, seed: int | None = None) -> None:
        if exploration < 0:
            raise ConfigError(
                f"The 'exploration' parameter of UCB1 must be >= 0. Got {exploration!r} instead."
            )
        super().__init__(n_arms, seed)
        self.exploration = exploration

    def _compute(self) -> list[float]:
        """All mass on the arm with the highest upper confidence bound."""
        if 0 in self.counts_:
            first = self.counts_.index(0)
            return [float(i == first) for i in range(self.n_arms)]
        log_t = math.log(self.t_)
        scores = [
            s / n + self.exploration * math.sqrt(2 * log_t / n)
            for s, n in zip(self.sums_, self.counts_, strict=True)
        ]
        return _uniform_over_best(scores)


class _Thompson(_Bandit):
    """Probability matching by Monte Carlo over posterior draws, refreshed lazily."""

    def __init__(self, n_arms: int, n_draws: int, refresh_every: int, seed: int | None) -> None:
        super().__init__(n_arms, seed)
        if n_draws < 1 or refresh_every < 1:
            raise ConfigError(
                f"{type(self).__name__} needs n_draws >= 1 and refresh_every >= 1. "
                f"Got n_draws={n_draws!r}, refresh_every={refresh_every!r} instead."
            )
        self.n_draws = n_draws
        self.refresh_every = refresh_every
        self._rng = np.random.default_rng(seed)
        self._refresh = refresh_every

    def _draws(self) -> NDArray[np.float64]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _compute(self) -> list[float]:
        """Monte Carlo estimate of P(arm has the highest mean) under the posterior."""
        winners = np.argmax(self._draws(), axis=1)
        counts = np.bincount(winners, minlength=self.n_arms)
        return [float(c) / self.n_draws for c in counts]


class ThompsonBernoulli(_Thompson):
    """Thompson sampling with Beta(alpha, beta) priors for 0/1 (or [0, 1]) rewards.

    >>> bandit = ThompsonBernoulli(3, refresh_every=10, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(2000):
    ...     arm, p = bandit.select(); bandit.update(arm, float(rng.random() < [0.1, 0.2, 0.3][arm]))
    >>> int(np.argmax(bandit.counts_))
    2
    """

    def __init__(
        self,
        n_arms: int,
        *,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        n_draws: int = 1000,
        refresh_every: int = 1,
        seed: int | None = None,
    ) -> None:
        if prior_alpha <= 0 or prior_beta <= 0:
            raise ConfigError(
                "ThompsonBernoulli needs prior_alpha > 0 and prior_beta > 0. "
                f"Got {prior_alpha!r}, {prior_beta!r} instead."
            )
        super().__init__(n_arms, n_draws, refresh_every, seed)
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta

    def update(self, arm: int, reward: float) -> None:
        """Record a reward in [0, 1]."""
        if not 0.0 <= reward <= 1.0:
            raise DataError(
                f"ThompsonBernoulli rewards must lie in [0, 1]. Got {reward!r} instead."
            )
        super().update(arm, reward)

    def _draws(self) -> NDArray[np.float64]:
        sums, counts = np.asarray(self.sums_), np.asarray(self.counts_)
        a, b = self.prior_alpha + sums, self.prior_beta + counts - sums
        return self._rng.beta(a, b, size=(self.n_draws, self.n_arms))


class ThompsonGaussian(_Thompson):
    """Thompson sampling for real-valued rewards: mean ~ N(posterior mean, sigma^2 / (n0 + n)).

    ``sigma^2`` is each arm's sample variance (``prior_variance`` until it has 2 rewards);
    ``n0`` pseudo-observations at ``prior_mean`` form the prior.

    >>> bandit = ThompsonGaussian(2, seed=1)
    >>> rng = np.random.default_rng(1)
    >>> for _ in range(500):
    ...     arm, p = bandit.select(); bandit.update(arm, rng.normal([1.0, 1.5][arm], 1.0))
    >>> int(np.argmax(bandit.counts_))
    1
    """

    def __init__(
        self,
        n_arms: int,
        *,
        prior_mean: float = 0.0,
        prior_variance: float = 1.0,
        prior_count: float = 1.0,
        n_draws: int = 1000,
        refresh_every: int = 1,
        seed: int | None = None,
    ) -> None:
        if prior_variance <= 0 or prior_count <= 0:
            raise ConfigError(
                "ThompsonGaussian needs prior_variance > 0 and prior_count > 0. "
                f"Got {prior_variance!r}, {prior_count!r} instead."
            )
        super().__init__(n_arms, n_draws, refresh_every, seed)
        self.prior_mean = prior_mean
        self.prior_variance = prior_variance
        self.prior_count = prior_count
        self.squares_ = [0.0] * n_arms

    def update(self, arm: int, reward: float) -> None:
        """Record a real-valued reward."""
        super().update(arm, reward)
        self.squares_[arm] += reward * reward

    def _draws(self) -> NDArray[np.float64]:
        n = np.asarray(self.counts_, dtype=np.float64)
        sums, squares = np.asarray(self.sums_), np.asarray(self.squares_)
        mean = np.divide(sums, n, out=np.zeros_like(sums), where=n > 0)
        var = np.divide(
            squares - n * mean**2, n - 1, out=np.full_like(sums, self.prior_variance), where=n > 1
        )
        var = np.maximum(var, 1e-12)
        post_n = self.prior_count + n
        post_mean = (self.prior_count * self.prior_mean + sums) / post_n
        scale = np.sqrt(var / post_n)
        return self._rng.normal(post_mean, scale, size=(self.n_draws, self.n_arms))
