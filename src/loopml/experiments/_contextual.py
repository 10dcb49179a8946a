"""Contextual bandits for choosing items: LinUCB and linear Thompson sampling.

Two model shapes (Li et al. 2010):

- **disjoint**: one ridge regression per arm over the request's context ``x`` (shape ``(d,)``);
- **shared**: one ridge regression over per-arm feature vectors ``x_a`` (shape ``(n_arms, d)``),
  so what is learnt about one item transfers to items with similar features.

``select(context)`` returns ``(arm, propensity)``. LinUCB is deterministic (propensity 1,
or 1/ties); linear Thompson sampling draws ``n_draws`` parameter vectors, takes the
frequency with which each arm wins as the action distribution, and samples from it, so the
logged propensity is the exact probability of the choice that was made.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError

__all__ = ["LinUCB", "LinearThompson"]


class _Linear:
    """Ridge statistics (``A^-1`` by Sherman-Morrison, ``b``) per arm or shared."""

    def __init__(self, n_arms: int, dim: int, ridge: float, shared: bool, seed: int | None) -> None:
        owner = type(self).__name__
        if n_arms < 1 or dim < 1:
            raise ConfigError(
                f"{owner} needs n_arms >= 1 and dim >= 1. Got {n_arms!r}, {dim!r} instead."
            )
        if ridge <= 0:
            raise ConfigError(
                f"The 'ridge' parameter of {owner} must be > 0. Got {ridge!r} instead."
            )
        self.n_arms, self.dim, self.ridge, self.shared, self.seed = n_arms, dim, ridge, shared, seed
        models = 1 if shared else n_arms
        self.a_inv_ = np.tile(np.eye(dim) / ridge, (models, 1, 1))
        self.b_ = np.zeros((models, dim))
        self.counts_ = np.zeros(n_arms, dtype=np.int64)
        self._rng = np.random.default_rng(seed)

    def _features(self, context: ArrayLike) -> NDArray[np.float64]:
        """Per-arm feature matrix ``(n_arms, dim)``."""
        x = np.asarray(context, dtype=np.float64)
        expected = (self.n_arms, self.dim) if self.shared else (self.dim,)
        if x.shape != expected:
            raise DataError(
                f"{type(self).__name__}(shared={self.shared}) needs a context of shape "
                f"{expected}. Got {x.shape} instead."
            )
        if not np.all(np.isfinite(x)):
            raise DataError(
                f"{type(self).__name__} got a context with a missing or infinite value."
            )
        return x if self.shared else np.broadcast_to(x, (self.n_arms, self.dim))

    def _model(self, arm: int) -> int:
        return 0 if self.shared else arm

    def theta_(self) -> NDArray[np.float64]:
        """Ridge coefficients, shape ``(models, dim)``."""
        return np.asarray(np.einsum("mij,mj->mi", self.a_inv_, self.b_), dtype=np.float64)

    def update(self, context: ArrayLike, arm: int, reward: float) -> None:
        """Add ``(x_arm, reward)`` to the arm's (or the shared) ridge regression."""
        if not 0 <= arm < self.n_arms:
            raise DataError(
                f"{type(self).__name__}.update got arm {arm!r}; arms are 0..{self.n_arms - 1}."
            )
        if not np.isfinite(reward):
            raise DataError(f"{type(self).__name__}.update got a non-finite reward {reward!r}.")
        x = self._features(context)[arm]
        m = self._model(arm)
        a_inv_x = self.a_inv_[m] @ x
        self.a_inv_[m] -= np.outer(a_inv_x, a_inv_x) / (1.0 + x @ a_inv_x)
        self.b_[m] += reward * x
        self.counts_[arm] += 1

    def _sample(self, probs: NDArray[np.float64]) -> tuple[int, float]:
        arm = int(self._rng.choice(self.n_arms, p=probs))
        return arm, float(probs[arm])


class LinUCB(_Linear):
    """LinUCB: ``x_a . theta_a + alpha * sqrt(x_a' A_a^-1 x_a)``, ties split uniformly.

    >>> bandit = LinUCB(n_arms=2, dim=2, alpha=0.5, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(300):
    ...     x = rng.normal(size=2); arm, p = bandit.select(x)
    ...     bandit.update(x, arm, float(x[arm] > 0))
    >>> bandit.select(np.array([2.0, -2.0]))[0], bandit.select(np.array([-2.0, 2.0]))[0]
    (0, 1)
    """

    def __init__(
        self,
        n_arms: int,
        dim: int,
        *,
        alpha: float = 1.0,
        ridge: float = 1.0,
        shared: bool = False,
        seed: int | None = None,
    ) -> None:
        if alpha < 0:
            raise ConfigError(
                f"The 'alpha' parameter of LinUCB must be >= 0. Got {alpha!r} instead."
            )
        super().__init__(n_arms, dim, ridge, shared, seed)
        self.alpha = alpha

    def probabilities(self, context: ArrayLike) -> NDArray[np.float64]:
        """All mass on the arm(s) with the highest upper confidence bound."""
        x = self._features(context)
        index = np.zeros(self.n_arms, dtype=np.int64) if self.shared else np.arange(self.n_arms)
        theta = self.theta_()[index]
        mean = np.einsum("ad,ad->a", x, theta)
        width = np.sqrt(np.einsum("ad,ade,ae->a", x, self.a_inv_[index], x))
        scores = mean + self.alpha * width
        ties = scores >= scores.max() - 1e-12
        return np.asarray(ties / ties.sum(), dtype=np.float64)

    def select(self, context: ArrayLike) -> tuple[int, float]:
        """Choose an arm for this context; returns ``(arm, propensity)``."""
        return self._sample(self.probabilities(context))


class LinearThompson(_Linear):
    """Linear Thompson sampling (Agrawal & Goyal 2013): ``theta ~ N(A^-1 b, v^2 A^-1)``.

    >>> bandit = LinearThompson(n_arms=3, dim=3, shared=True, seed=0)
    >>> items = np.eye(3)
    >>> for _ in range(300):
    ...     arm, p = bandit.select(items); bandit.update(items, arm, [0.1, 0.5, 0.9][arm])
    >>> int(np.argmax(bandit.counts_))
    2
    """

    def __init__(
        self,
        n_arms: int,
        dim: int,
        *,
        scale: float = 0.5,
        ridge: float = 1.0,
        shared: bool = False,
        n_draws: int = 200,
        seed: int | None = None,
    ) -> None:
        if scale <= 0 or n_draws < 1:
            raise ConfigError(
                f"LinearThompson needs scale > 0 and n_draws >= 1. Got {scale!r}, {n_draws!r} "
                "instead."
            )
        super().__init__(n_arms, dim, ridge, shared, seed)
        self.scale = scale
        self.n_draws = n_draws

    def probabilities(self, context: ArrayLike) -> NDArray[np.float64]:
        """Monte Carlo estimate of P(arm scores highest) under the posterior."""
        x = self._features(context)
        theta = self.theta_()
        chol = np.linalg.cholesky(self.a_inv_ + 1e-12 * np.eye(self.dim))
        noise = self._rng.standard_normal((self.n_draws, theta.shape[0], self.dim))
        draws = theta[None] + self.scale * np.einsum("mij,smj->smi", chol, noise)
        shared = self.shared
        scores = draws[:, 0, :] @ x.T if shared else np.einsum("sad,ad->sa", draws, x)
        winners = np.argmax(scores, axis=1)
        return np.bincount(winners, minlength=self.n_arms) / self.n_draws

    def select(self, context: ArrayLike) -> tuple[int, float]:
        """Choose an arm for this context; returns ``(arm, propensity)``."""
        return self._sample(self.probabilities(context))
