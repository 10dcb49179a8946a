"""Always-valid sequential testing: the mixture SPRT of Johari, Pekelis and Walsh (2017).

With a normal mixture ``theta ~ N(0, tau^2)`` over the difference in means and the
difference estimate ``d_n ~ N(theta, s_n^2)``, the mixture likelihood ratio is::

    L_n = sqrt(s_n^2 / (s_n^2 + tau^2)) * exp(d_n^2 tau^2 / (2 s_n^2 (s_n^2 + tau^2)))

and ``p_n = min(1, min_{m <= n} 1 / L_m)`` is a p-value that stays valid however often one
looks (Ville's inequality): stopping the first time ``p_n <= alpha`` keeps the false
positive rate at or below ``alpha``. Variances are the running plug-in estimates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError

__all__ = ["SequentialResult", "msprt"]


@dataclass(frozen=True)
class SequentialResult:
    """Always-valid p-values and intervals at each look, and the decision at the last one."""

    looks: NDArray[np.int64]
    effect: NDArray[np.float64]
    p_values: NDArray[np.float64]
    ci_low: NDArray[np.float64]
    ci_high: NDArray[np.float64]
    alpha: float
    mixture_sd: float

    @property
    def p_value(self) -> float:
        """The always-valid p-value at the last look."""
        return float(self.p_values[-1])

    @property
    def stopped_at(self) -> int | None:
        """Observations per group at the first look where ``p <= alpha``, or ``None``."""
        hits = np.flatnonzero(self.p_values <= self.alpha)
        return int(self.looks[hits[0]]) if hits.size else None

    @property
    def decision(self) -> str:
        """``treatment better``, ``control better`` or ``keep running`` at the last look."""
        if self.stopped_at is None:
            return "keep running"
        first = int(np.flatnonzero(self.p_values <= self.alpha)[0])
        return "treatment better" if self.effect[first] > 0 else "control better"


def _running(
    values: NDArray[np.float64], looks: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    sums = np.cumsum(values)[looks - 1]
    squares = np.cumsum(values**2)[looks - 1]
    mean = sums / looks
    var = np.maximum(squares - looks * mean**2, 0.0) / np.maximum(looks - 1, 1)
    return mean, var


def msprt(
    control: ArrayLike,
    treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    mixture_sd: float | None = None,
    looks: Sequence[int] | None = None,
    min_samples: int = 100,
) -> SequentialResult:
    """Mixture SPRT over observations in arrival order; one p-value and interval per look.

    ``looks`` are the numbers of observations per group at which someone looks (every
    observation by default). ``mixture_sd`` is the prior scale of the effect; when omitted
    it is a tenth of the pooled standard deviation of the first ``min_samples``
    observations (a burn-in: looks before ``min_samples`` get p = 1).

    >>> rng = np.random.default_rng(3)
    >>> result = msprt(rng.normal(0, 1, 20_000), rng.normal(0.05, 1, 20_000),
    ...                looks=range(1000, 20_001, 1000))
    >>> result.decision, result.stopped_at is not None
    ('treatment better', True)
    """
    if not 0.0 < alpha < 1.0:
        raise ConfigError(
            f"The 'alpha' parameter of msprt must be in (0, 1). Got {alpha!r} instead."
        )
    c = np.asarray(control, dtype=np.float64).ravel()
    t = np.asarray(treatment, dtype=np.float64).ravel()
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(t))):
        raise DataError("msprt found a missing or infinite outcome", hint="drop them first")
    longest = min(c.size, t.size)
    at = np.arange(1, longest + 1) if looks is None else np.asarray(list(looks), dtype=np.int64)
    if at.size == 0 or at.min() < 1 or at.max() > longest or np.any(np.diff(at) <= 0):
        raise DataError(
            "The 'looks' parameter of msprt must be increasing counts between 1 and "
            f"{longest} (the smaller group). Got {list(at[:5])}... instead."
        )
    tau = _mixture_sd(c, t, min_samples) if mixture_sd is None else float(mixture_sd)
    if not tau > 0:
        raise ConfigError(f"The 'mixture_sd' parameter of msprt must be > 0. Got {tau!r} instead.")
    mean_c, var_c = _running(c, at)
    mean_t, var_t = _running(t, at)
    effect = mean_t - mean_c
    s2 = np.maximum((var_c + var_t) / at, 1e-300)
    tau2 = tau * tau
    log_lr = 0.5 * np.log(s2 / (s2 + tau2)) + effect**2 * tau2 / (2 * s2 * (s2 + tau2))
    log_lr[at < min_samples] = -np.inf
    p_values = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)))
    half = _always_valid_half_width(s2, tau2, alpha)
    half[at < min_samples] = np.inf
    low = np.maximum.accumulate(effect - half)  # a confidence sequence may be intersected
    high = np.minimum.accumulate(effect + half)
    return SequentialResult(at, effect, p_values, low, high, alpha, tau)


def _mixture_sd(c: NDArray[np.float64], t: NDArray[np.float64], burn_in: int) -> float:
    head = np.concatenate([c[:burn_in], t[:burn_in]])
    sd = float(head.std(ddof=1)) if head.size > 1 else 0.0
    return 0.1 * sd if sd > 0 else 1e-3


def _always_valid_half_width(
    s2: NDArray[np.float64], tau2: float, alpha: float
) -> NDArray[np.float64]:
    """Half width of the confidence sequence that inverts the mixture test."""
    inner = (s2 + tau2) / tau2 * (np.log((s2 + tau2) / s2) - 2 * math.log(alpha))
    return np.sqrt(s2 * np.maximum(inner, 0.0))
