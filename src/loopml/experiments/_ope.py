"""Off-policy evaluation: the value of a new policy estimated from logs of an old one.

Inputs are arrays, one row per logged round:

- ``reward`` (n,), ``action`` (n,) integer, ``pscore`` (n,) the logging policy's
  probability of the logged action (at the logged position, for slates);
- ``action_dist`` (n, n_actions) or (n, n_actions, n_positions): the evaluation
  policy's probability of each action (at each position);
- ``position`` (n,) integer, only with the 3-D shape;
- ``estimated_rewards`` shaped like ``action_dist``: a reward model's predictions, for
  the model-based estimators (DM, DR, SNDR, Switch-DR, DRos).

Estimators (Dudik et al. 2011; Swaminathan & Joachims 2015; Wang et al. 2017; Su et al.
2020): ``dm``, ``ipw``, ``snipw``, ``dr``, ``sndr``, ``switch_dr``, ``dr_os``; ``replay``
(Li et al. 2011) for a deterministic policy. ``estimate_policy_value`` adds bootstrap
percentile intervals, resampling rounds with replacement.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError

__all__ = [
    "ESTIMATORS",
    "OPEResult",
    "average_action_distribution",
    "estimate_policy_value",
    "replay",
]

F = NDArray[np.float64]


@dataclass(frozen=True)
class _Logs:
    reward: F
    w: F  # importance weight of the logged action: pi_e(a_i | x_i) / pscore_i
    q_logged: F  # reward model at the logged action
    q_policy: F  # sum_a pi_e(a | x_i) q(x_i, a)


@dataclass(frozen=True)
class OPEResult:
    """An estimate of the evaluation policy's value with a bootstrap interval."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    parameter: float | None = None


def _ratio(numerator: F, denominator: F) -> F:
    return np.asarray(numerator.sum(-1) / np.maximum(denominator.sum(-1), 1e-300))


def _dm(d: _Logs, idx: Idx) -> F:
    return _mean(d.q_policy, idx)


def _ipw(d: _Logs, idx: Idx) -> F:
    return _mean(d.w * d.reward, idx)


def _snipw(d: _Logs, idx: Idx) -> F:
    return _ratio(_take(d.w * d.reward, idx), _take(d.w, idx))


def _dr(d: _Logs, idx: Idx) -> F:
    return _mean(d.q_policy + d.w * (d.reward - d.q_logged), idx)


def _sndr(d: _Logs, idx: Idx) -> F:
    correction = _ratio(_take(d.w * (d.reward - d.q_logged), idx), _take(d.w, idx))
    return _mean(d.q_policy, idx) + correction


def _switch_weights(w: F, tau: float) -> F:
    """Switch-DR (Wang et al. 2017): keep the correction where ``w <= tau``, DM elsewhere."""
    return np.where(w <= tau, w, 0.0)


def _shrunk_weights(w: F, lambda_: float) -> F:
    """DR with optimistic shrinkage (Su et al. 2020): ``lambda w / (w^2 + lambda)``."""
    if math.isinf(lambda_):
        return w
    return lambda_ * w / (w**2 + lambda_) if lambda_ > 0 else np.zeros_like(w)


def _modified_dr(modify: Callable[[F, float], F], parameter: float) -> Estimator:
    def _estimate(d: _Logs, idx: Idx) -> F:
        return _mean(d.q_policy + modify(d.w, parameter) * (d.reward - d.q_logged), idx)

    return _estimate


SWITCH_GRID = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, math.inf)
DR_OS_GRID = (0.1, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 1000.0, math.inf)


def _tune(d: _Logs, modify: Callable[[F, float], F], grid: Sequence[float]) -> float:
    """The grid value with the least estimated MSE: variance / n + bias^2.

    The bias of modifying the weights is ``E[(w - w_hat)(r - q_hat)]``, estimated by its
    sample mean (obp's ``tuning_method='mse'`` without the upper bound).
    """
    residual = d.reward - d.q_logged
    n = d.reward.size

    def mse(parameter: float) -> float:
        w_hat = modify(d.w, parameter)
        variance = float(np.var(d.q_policy + w_hat * residual, ddof=1)) / n
        return variance + float(np.mean((d.w - w_hat) * residual)) ** 2

    return min(grid, key=mse)


Idx = NDArray[np.intp] | None
Estimator = Callable[[_Logs, Idx], F]


def _take(values: F, idx: Idx) -> F:
    return values if idx is None else values[idx]


def _mean(values: F, idx: Idx) -> F:
    return np.asarray(_take(values, idx).mean(-1))


ESTIMATORS: dict[str, Estimator] = {
    "dm": _dm,
    "ipw": _ipw,
    "snipw": _snipw,
    "dr": _dr,
    "sndr": _sndr,
}
"""The parameter-free estimators by name; ``switch_dr`` and ``dr_os`` take ``switch_tau`` and
``dr_os_lambda`` (a number, or ``"auto"``: the grid value with the least estimated MSE)."""

_MODEL_FREE = {"ipw", "snipw"}


def _validate(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    position: ArrayLike | None,
    estimated_rewards: ArrayLike | None,
) -> tuple[F, NDArray[np.intp], F, F, NDArray[np.intp], F | None]:
    r = np.asarray(reward, dtype=np.float64)
    a = np.asarray(action)
    p = np.asarray(pscore, dtype=np.float64)
    dist = np.asarray(action_dist, dtype=np.float64)
    n = r.shape[0] if r.ndim == 1 else -1
    if n < 1 or a.shape != (n,) or p.shape != (n,) or dist.ndim not in (2, 3) or dist.shape[0] != n:
        raise DataError(
            "estimate_policy_value needs reward, action and pscore of shape (n,) and action_dist "
            f"of shape (n, n_actions[, n_positions]). Got {r.shape}, {a.shape}, {p.shape}, "
            f"{dist.shape} instead."
        )
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= dist.shape[1]:
        raise DataError(
            f"'action' must hold integers in [0, {dist.shape[1] - 1}] (columns of action_dist)."
        )
    if np.any(~np.isfinite(p)) or np.any(p <= 0) or np.any(p > 1):
        row = int(np.flatnonzero(~((p > 0) & (p <= 1)))[0])
        raise DataError(
            f"'pscore' must lie in (0, 1]; row {row} holds {p[row]!r}.",
            hint="a logged action needs the positive probability its policy gave it",
        )
    if not np.all(np.isfinite(r)):
        raise DataError(
            f"'reward' holds a missing value at row {int(np.flatnonzero(~np.isfinite(r))[0])}."
        )
    pos = np.zeros(n, dtype=np.intp)
    if dist.ndim == 3:
        if position is None:
            raise DataError("a 3-D action_dist (slates) needs 'position' for every round.")
        pos = np.asarray(position).astype(np.intp)
        if pos.shape != (n,) or pos.min() < 0 or pos.max() >= dist.shape[2]:
            raise DataError(
                f"'position' must hold integers in [0, {dist.shape[2] - 1}], one per round."
            )
    else:
        dist = dist[:, :, None]
    q = None
    if estimated_rewards is not None:
        q = np.asarray(estimated_rewards, dtype=np.float64)
        q = q[:, :, None] if q.ndim == 2 else q
        if q.shape != dist.shape:
            raise DataError(
                f"'estimated_rewards' must be shaped like action_dist {dist.shape}. Got {q.shape}."
            )
    return r, a.astype(np.intp), p, dist, pos, q


def _logs(r: F, a: NDArray[np.intp], p: F, dist: F, pos: NDArray[np.intp], q: F | None) -> _Logs:
    rows = np.arange(r.shape[0])
    pi_logged = dist[rows, a, pos]
    policy_at_pos = dist[rows, :, pos]
    if q is None:
        zeros = np.zeros_like(r)
        return _Logs(r, pi_logged / p, zeros, zeros)
    q_at_pos = q[rows, :, pos]
    return _Logs(r, pi_logged / p, q[rows, a, pos], np.einsum("na,na->n", policy_at_pos, q_at_pos))


def _resolve(
    names: Sequence[str], data: _Logs | None, tau: float | str, lambda_: float | str
) -> dict[str, tuple[Estimator, float | None]]:
    chosen: dict[str, tuple[Estimator, float | None]] = {}
    valid = [*ESTIMATORS, "switch_dr", "dr_os"]
    for name in names:
        if name in ESTIMATORS:
            chosen[name] = (ESTIMATORS[name], None)
            continue
        if name not in ("switch_dr", "dr_os"):
            raise ConfigError(f"Unknown off-policy estimator {name!r}; choose from {valid}.")
        modify, grid, value = (
            (_switch_weights, SWITCH_GRID, tau)
            if name == "switch_dr"
            else (_shrunk_weights, DR_OS_GRID, lambda_)
        )
        if value == "auto":
            value = _tune(data, modify, grid) if data is not None else math.inf
        if isinstance(value, str) or not value >= 0:
            what = "switch_tau" if name == "switch_dr" else "dr_os_lambda"
            raise ConfigError(
                f"The '{what}' parameter must be >= 0 or 'auto'. Got {value!r} instead."
            )
        chosen[name] = (_modified_dr(modify, float(value)), float(value))
    return chosen


def estimate_policy_value(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    *,
    position: ArrayLike | None = None,
    estimated_rewards: ArrayLike | None = None,
    estimators: Sequence[str] = ("dm", "ipw", "snipw", "dr", "sndr", "switch_dr"),
    switch_tau: float | Literal["auto"] = "auto",
    dr_os_lambda: float | Literal["auto"] = "auto",
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, OPEResult]:
    """Each estimator's value of the evaluation policy, with a bootstrap ``1 - alpha`` interval.

    >>> rng = np.random.default_rng(0)
    >>> n = 20_000
    >>> action = rng.integers(0, 2, n)                     # uniform logging policy
    >>> reward = (rng.random(n) < np.where(action == 1, 0.3, 0.1)).astype(float)
    >>> target = np.tile([0.2, 0.8], (n, 1))               # true value 0.2*0.1 + 0.8*0.3 = 0.26
    >>> q = np.tile([0.1, 0.3], (n, 1))
    >>> out = estimate_policy_value(reward, action, np.full(n, 0.5), target, estimated_rewards=q)
    >>> dr = out["dr"]
    >>> round(out["ipw"].value, 2), round(dr.value, 2), dr.ci_low < 0.26 < dr.ci_high
    (0.26, 0.26, True)
    """
    if n_bootstrap < 0 or not 0 < alpha < 1:
        raise ConfigError(
            "estimate_policy_value needs n_bootstrap >= 0 and 0 < alpha < 1. Got "
            f"{n_bootstrap!r}, {alpha!r}."
        )
    r, a, p, dist, pos, q = _validate(
        reward, action, pscore, action_dist, position, estimated_rewards
    )
    needs_model = [name for name in estimators if name not in _MODEL_FREE]
    if needs_model and q is None:
        _resolve(estimators, None, switch_tau, dr_os_lambda)  # unknown names first
        raise ConfigError(
            f"The estimators {needs_model} need 'estimated_rewards' from a reward model."
        )
    data = _logs(r, a, p, dist, pos, q)
    chosen = _resolve(estimators, data, switch_tau, dr_os_lambda)
    rng = np.random.default_rng(seed)
    n = r.shape[0]
    results: dict[str, OPEResult] = {}
    boot = rng.integers(0, n, size=(n_bootstrap, n)) if n_bootstrap else None
    for name, (estimator, parameter) in chosen.items():
        value = float(estimator(data, None))
        low = high = value
        if boot is not None:
            draws = np.concatenate(
                [
                    estimator(data, chunk)
                    for chunk in np.array_split(boot, max(1, n_bootstrap // 50))
                ]
            )
            low, high = (float(x) for x in np.quantile(draws, [alpha / 2, 1 - alpha / 2]))
        results[name] = OPEResult(name, value, low, high, n, parameter)
    return results


def replay(
    reward: ArrayLike,
    action: ArrayLike,
    target_action: ArrayLike,
    *,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    seed: int = 0,
) -> OPEResult:
    """Replay (Li et al. 2011): the mean reward of rounds where the logged action is the target's.

    Unbiased for a deterministic target policy when the logging policy was uniformly random.

    >>> rng = np.random.default_rng(1)
    >>> action = rng.integers(0, 4, 40_000)
    >>> reward = (rng.random(40_000) < 0.1 + 0.1 * action).astype(float)
    >>> round(replay(reward, action, np.full(40_000, 3)).value, 2)
    0.4
    """
    r = np.asarray(reward, dtype=np.float64)
    a, t = np.asarray(action), np.asarray(target_action)
    if a.shape != r.shape or t.shape != r.shape or r.ndim != 1:
        raise DataError(
            f"replay needs reward, action and target_action of one shape (n,). Got {r.shape}, "
            f"{a.shape}, {t.shape}."
        )
    match = a == t
    if not match.any():
        raise DataError("replay found no round where the logged action equals the target's action.")
    kept = r[match]
    value = float(kept.mean())
    low = high = value
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        means = kept[rng.integers(0, kept.size, size=(n_bootstrap, kept.size))].mean(axis=1)
        low, high = (float(x) for x in np.quantile(means, [alpha / 2, 1 - alpha / 2]))
    return OPEResult("replay", value, low, high, int(kept.size))


def average_action_distribution(
    action: ArrayLike,
    pscore: ArrayLike,
    *,
    n_actions: int,
    position: ArrayLike | None = None,
    n_positions: int = 1,
) -> NDArray[np.float64]:
    """A changing policy's time-averaged action distribution, from its own logged propensities.

    A round logs action ``a`` with the probability ``p_t(a)`` it reports, so the harmonic
    mean of the logged propensities of ``a``, ``n(a) / sum_i 1/p_i``, estimates the average
    of ``p_t(a)`` over the rounds. Each position is normalised to sum to 1; an action never
    logged gets 0. Shape ``(n_actions, n_positions)``.

    >>> dist = average_action_distribution([0, 0, 1], [0.5, 0.5, 0.5], n_actions=3)
    >>> dist.ravel().round(3).tolist()
    [0.5, 0.5, 0.0]
    """
    a = np.asarray(action).astype(np.intp)
    p = np.asarray(pscore, dtype=np.float64)
    pos = np.zeros_like(a) if position is None else np.asarray(position).astype(np.intp)
    if a.shape != p.shape or pos.shape != a.shape or a.ndim != 1 or a.size == 0:
        raise DataError(
            "average_action_distribution needs action, pscore (and position) of one shape (n,)."
        )
    if a.min() < 0 or a.max() >= n_actions or pos.min() < 0 or pos.max() >= n_positions:
        raise DataError(
            f"actions must lie in [0, {n_actions - 1}] and positions in [0, {n_positions - 1}]."
        )
    if np.any(~(p > 0)) or np.any(p > 1):
        raise DataError("'pscore' must lie in (0, 1] to average a logged policy.")
    inverse = np.zeros((n_actions, n_positions))
    counts = np.zeros((n_actions, n_positions))
    np.add.at(inverse, (a, pos), 1.0 / p)
    np.add.at(counts, (a, pos), 1.0)
    harmonic = np.divide(counts, inverse, out=np.zeros_like(counts), where=inverse > 0)
    totals = harmonic.sum(axis=0, keepdims=True)
    return np.asarray(np.divide(harmonic, totals, out=np.zeros_like(harmonic), where=totals > 0))
