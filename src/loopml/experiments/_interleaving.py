"""Team-draft interleaving for rankers, its preference test, and a click simulator.

Team draft (Radlinski, Kurup & Joachims 2008): in each round a coin toss decides which
ranker picks first; each then adds its highest-ranked item not yet shown, and the item is
credited to that ranker's team. A user's clicks go to the teams of the clicked items; the
ranker with more clicked items wins the impression. Over many impressions the preference
test asks whether wins are split evenly (a two-sided sign test, ties dropped).

The simulator draws queries with graded relevance, two rankers of known quality (noisy
sorts of the true grades), and a position-based click model, and reports how many users
interleaving and an A/B test on clicks per user need for the same power.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError

__all__ = [
    "Interleaving",
    "PreferenceResult",
    "RankerSimulation",
    "credit",
    "preference_test",
    "simulate_rankers",
    "simulated_power",
    "team_draft",
    "users_needed",
]

_NORMAL = NormalDist()


@dataclass(frozen=True)
class Interleaving:
    """An interleaved list and, per position, the team (0 = ranker A, 1 = ranker B)."""

    items: tuple[Any, ...]
    teams: tuple[int, ...]


def team_draft(
    ranking_a: Sequence[Any],
    ranking_b: Sequence[Any],
    *,
    length: int | None = None,
    rng: random.Random | None = None,
) -> Interleaving:
    """Team-draft interleave two rankings (coin toss for the first pick of each round).

    >>> result = team_draft(["a", "b", "c"], ["b", "c", "a"], rng=random.Random(0))
    >>> sorted(result.items), len(result.teams)
    (['a', 'b', 'c'], 3)
    """
    rng = rng or random.Random()
    pool = set(ranking_a) | set(ranking_b)
    length = len(pool) if length is None else min(length, len(pool))
    items: list[Any] = []
    teams: list[int] = []
    shown: set[Any] = set()
    pointers = [0, 0]
    rankings = (ranking_a, ranking_b)
    while len(items) < length:
        order = (0, 1) if rng.random() < 0.5 else (1, 0)
        for team in order:
            if len(items) >= length:
                break
            ranking = rankings[team]
            while pointers[team] < len(ranking) and ranking[pointers[team]] in shown:
                pointers[team] += 1
            if pointers[team] >= len(ranking):
                continue
            item = ranking[pointers[team]]
            items.append(item)
            teams.append(team)
            shown.add(item)
        if all(pointers[t] >= len(rankings[t]) for t in (0, 1)):
            break
    return Interleaving(tuple(items), tuple(teams))


def credit(interleaving: Interleaving, clicked_positions: Sequence[int]) -> int:
    """+1 when ranker A's items got more clicks, -1 when B's did, 0 for a tie.

    >>> credit(Interleaving(("x", "y", "z"), (0, 1, 0)), [0, 2])
    1
    """
    clicks = [0, 0]
    for position in clicked_positions:
        if not 0 <= position < len(interleaving.teams):
            raise DataError(
                f"click at position {position} outside the list of {len(interleaving.teams)} items."
            )
        clicks[interleaving.teams[position]] += 1
    return (clicks[0] > clicks[1]) - (clicks[0] < clicks[1])


@dataclass(frozen=True)
class PreferenceResult:
    """Wins, ties, the preference ``delta = (wins_a + ties/2)/n - 1/2`` and the sign test."""

    wins_a: int
    wins_b: int
    ties: int
    delta: float
    p_value: float
    alpha: float

    @property
    def decision(self) -> str:
        """``A preferred``, ``B preferred`` or ``no significant preference``."""
        if self.p_value >= self.alpha:
            return "no significant preference"
        return "A preferred" if self.wins_a > self.wins_b else "B preferred"


def preference_test(outcomes: ArrayLike, *, alpha: float = 0.05) -> PreferenceResult:
    """Two-sided sign test on per-impression outcomes (+1 A wins, -1 B wins, 0 tie).

    >>> preference_test([1] * 60 + [-1] * 35 + [0] * 200).decision
    'A preferred'
    """
    from scipy import stats

    values = np.asarray(outcomes)
    if values.size == 0 or not np.isin(values, (-1, 0, 1)).all():
        raise DataError("preference_test needs outcomes in {-1, 0, 1}, at least one.")
    wins_a, wins_b = int((values == 1).sum()), int((values == -1).sum())
    ties = int(values.size - wins_a - wins_b)
    decided = wins_a + wins_b
    p_value = 1.0 if decided == 0 else float(stats.binomtest(wins_a, decided, 0.5).pvalue)
    delta = (wins_a + ties / 2) / values.size - 0.5
    return PreferenceResult(wins_a, wins_b, ties, delta, p_value, alpha)


@dataclass(frozen=True)
class RankerSimulation:
    """Per-user outcomes from the simulator: interleaving wins, clicks under A and under B."""

    interleaving: NDArray[np.int64]
    clicks_a: NDArray[np.int64]
    clicks_b: NDArray[np.int64]


def simulate_rankers(
    n_users: int,
    *,
    n_docs: int = 30,
    length: int = 10,
    noise_a: float = 1.0,
    noise_b: float = 1.3,
    examination: float = 1.0,
    mean_sessions: float = 4.0,
    seed: int = 0,
) -> RankerSimulation:
    """Simulate ``n_users`` users under interleaving and under each ranker alone.

    Each user runs ``1 + NegBin`` queries (mean ``mean_sessions``, a heavy tail of very
    active users) and has an activity level ``u ~ Beta(0.8, 1.2)``. Each query has a
    richness ``r ~ Beta(0.6, 2.5)`` and ``n_docs`` documents with grades ``Binomial(4, r)``
    (click probability ``(2^g - 1) / 16`` when examined); a ranker sorts
    ``grade + N(0, noise)``, so lower noise is a better ranker (A by default). Rank ``i``
    (0-based) is examined with probability ``u / (i + 1) ** examination``.

    The A/B metric is a user's total clicks; the interleaving outcome is the sign of the
    user's total click credit (A minus B) over their queries.

    >>> sim = simulate_rankers(2000, seed=0)
    >>> bool(sim.interleaving.mean() > 0), bool(sim.clicks_a.mean() > sim.clicks_b.mean())
    (True, True)
    """
    if (
        n_users < 1
        or length < 1
        or n_docs < length
        or min(noise_a, noise_b) < 0
        or mean_sessions < 1
    ):
        raise ConfigError(
            "simulate_rankers needs n_users >= 1, 1 <= length <= n_docs, noises >= 0 and "
            f"mean_sessions >= 1. Got n_users={n_users}, length={length}, n_docs={n_docs}, "
            f"noise_a={noise_a}, noise_b={noise_b}, mean_sessions={mean_sessions}."
        )
    rng = np.random.default_rng(seed)
    coin = random.Random(seed)
    extra = mean_sessions - 1
    sessions = 1 + (rng.poisson(rng.gamma(0.5, 2 * extra, n_users)) if extra > 0 else 0)
    owner = np.repeat(np.arange(n_users), sessions)
    n_queries = owner.size
    richness = rng.beta(0.6, 2.5, size=(n_queries, 1))
    grades = rng.binomial(4, np.broadcast_to(richness, (n_queries, n_docs)))
    attract = (2.0**grades - 1) / 16
    activity = rng.beta(0.8, 1.2, size=n_users)[owner][:, None]
    rank_a = np.argsort(-(grades + rng.normal(0, noise_a, grades.shape)), axis=1)[:, :length]
    rank_b = np.argsort(-(grades + rng.normal(0, noise_b, grades.shape)), axis=1)[:, :length]
    exam = activity / (np.arange(length) + 1.0) ** examination
    rows = np.arange(n_queries)[:, None]

    def clicks_on(ranked: NDArray[np.intp]) -> NDArray[np.bool_]:
        probs = exam * attract[rows, ranked]
        return np.asarray(rng.random(probs.shape) < probs)

    def per_user(values: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.bincount(owner, weights=values, minlength=n_users).astype(np.int64)

    clicks_a = per_user(clicks_on(rank_a).sum(axis=1))
    clicks_b = per_user(clicks_on(rank_b).sum(axis=1))
    mixed = np.empty((n_queries, length), dtype=np.intp)
    teams = np.empty((n_queries, length), dtype=np.int64)
    for query in range(n_queries):
        result = team_draft(rank_a[query].tolist(), rank_b[query].tolist(), length=length, rng=coin)
        mixed[query], teams[query] = result.items, result.teams
    clicked = clicks_on(mixed)
    margin = per_user((clicked & (teams == 0)).sum(axis=1) - (clicked & (teams == 1)).sum(axis=1))
    return RankerSimulation(np.sign(margin).astype(np.int64), clicks_a, clicks_b)


def users_needed(
    sim: RankerSimulation, *, power: float = 0.95, alpha: float = 0.05
) -> dict[str, int]:
    """Users for ``power`` at two-sided ``alpha`` (normal approximation on the simulated moments).

    Interleaving: a z-test that the mean outcome is 0, every user sees the interleaved list.
    A/B: Welch's z-test of clicks per user, half the users on each ranker (the total is given).

    >>> needs = users_needed(simulate_rankers(5000, seed=1))
    >>> needs["ab"] > needs["interleaving"]
    True
    """
    if not (0 < power < 1 and 0 < alpha < 1):
        raise ConfigError(
            f"users_needed needs power and alpha in (0, 1). Got {power!r}, {alpha!r}."
        )
    z = _NORMAL.inv_cdf(1 - alpha / 2) + _NORMAL.inv_cdf(power)
    inter = sim.interleaving.astype(np.float64)
    effect_i = abs(inter.mean())
    a, b = sim.clicks_a.astype(np.float64), sim.clicks_b.astype(np.float64)
    effect_ab = abs(a.mean() - b.mean())
    n_i = math.inf if effect_i == 0 else (z * inter.std(ddof=1) / effect_i) ** 2
    n_ab = math.inf if effect_ab == 0 else 2 * z**2 * (a.var(ddof=1) + b.var(ddof=1)) / effect_ab**2
    if math.isinf(n_i) or math.isinf(n_ab):
        raise DataError(
            "users_needed: the simulated rankers show no difference; simulate more users."
        )
    return {"interleaving": math.ceil(n_i), "ab": math.ceil(n_ab)}


def _discrete(values: NDArray[np.int64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    support, counts = np.unique(values, return_counts=True)
    return support.astype(np.float64), counts / counts.sum()


def simulated_power(
    sim: RankerSimulation,
    n_users: int,
    *,
    design: str,
    alpha: float = 0.05,
    reps: int = 2000,
    seed: int = 0,
) -> float:
    """Share of ``reps`` simulated experiments with ``n_users`` users that reject at ``alpha``.

    Each experiment resamples users from the simulated outcome distribution (multinomial
    counts, so large ``n_users`` costs nothing extra).

    >>> sim = simulate_rankers(5000, seed=2)
    >>> n = users_needed(sim, power=0.9)["interleaving"]
    >>> 0.8 < simulated_power(sim, n, design="interleaving", reps=1000) < 0.97
    True
    """
    if design not in ("interleaving", "ab") or n_users < 4:
        raise ConfigError(
            "simulated_power needs design 'interleaving' or 'ab' and n_users >= 4. Got "
            f"{design!r}, {n_users!r}."
        )
    rng = np.random.default_rng(seed)
    z_crit = _NORMAL.inv_cdf(1 - alpha / 2)
    if design == "interleaving":
        mean, var = _resampled_moments(rng, *_discrete(sim.interleaving), n_users, reps)
        z = mean / np.sqrt(np.maximum(var, 1e-300) / n_users)
    else:
        half = n_users // 2
        mean_a, var_a = _resampled_moments(rng, *_discrete(sim.clicks_a), half, reps)
        mean_b, var_b = _resampled_moments(rng, *_discrete(sim.clicks_b), n_users - half, reps)
        z = (mean_a - mean_b) / np.sqrt(np.maximum(var_a / half + var_b / (n_users - half), 1e-300))
    return float(np.mean(np.abs(z) > z_crit))


def _resampled_moments(
    rng: np.random.Generator,
    support: NDArray[np.float64],
    probs: NDArray[np.float64],
    n: int,
    reps: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    counts = rng.multinomial(n, probs, size=reps)
    mean = counts @ support / n
    var = (counts @ support**2 - n * mean**2) / max(n - 1, 1)
    return mean, var
