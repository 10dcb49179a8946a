"""Off-policy estimators on generated logs whose target value is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.core import ConfigError, DataError
from loopml.experiments import estimate_policy_value, replay

N_ACTIONS, DIM = 5, 3


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Problem:
    """Contexts, a true reward function, a logging policy and a different target policy."""

    def __init__(self, seed: int, logging_temperature: float = -0.8) -> None:
        rng = np.random.default_rng(seed)
        self.temperature = logging_temperature
        self.weights = rng.normal(size=(DIM, N_ACTIONS))
        self.rng = rng

    def mean_reward(self, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(x @ self.weights)))

    def logging(self, x: np.ndarray) -> np.ndarray:
        # negative temperature: prefers the actions the target avoids (large weights)
        return _softmax(self.temperature * (x @ self.weights))

    def target(self, x: np.ndarray) -> np.ndarray:
        return _softmax(2.0 * (x @ self.weights))

    def true_value(self) -> float:
        x = np.random.default_rng(999).normal(size=(400_000, DIM))
        return float(np.sum(self.target(x) * self.mean_reward(x), axis=1).mean())


def _logs(problem: Problem, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    x = rng.normal(size=(n, DIM))
    pi_b = problem.logging(x)
    cum = pi_b.cumsum(axis=1)
    action = np.minimum((rng.random((n, 1)) > cum).sum(axis=1), N_ACTIONS - 1)
    q = problem.mean_reward(x)
    reward = (rng.random(n) < q[np.arange(n), action]).astype(float)
    return {"x": x, "action": action, "reward": reward, "pscore": pi_b[np.arange(n), action],
            "target": problem.target(x), "q": q}  # fmt: skip


@pytest.fixture(scope="module")
def runs() -> tuple[float, dict[str, np.ndarray]]:
    """300 independent logs of 2,000 rounds; every estimator's value on each."""
    problem = Problem(0)
    truth = problem.true_value()
    rng = np.random.default_rng(1)
    names = ["dm", "ipw", "snipw", "dr", "sndr", "switch_dr"]
    extra = ["dm_good", "dr_good", "switch_auto", "dr_os_auto"]
    out: dict[str, list[float]] = {n: [] for n in names + extra}
    for _ in range(300):
        logs = _logs(problem, 2000, rng)
        # a misspecified reward model: the truth shrunk towards 0.5 and shifted by action
        bad_q = 0.5 + 0.5 * (logs["q"] - 0.5) + np.linspace(-0.1, 0.1, N_ACTIONS)
        values = estimate_policy_value(
            logs["reward"], logs["action"], logs["pscore"], logs["target"],
            estimated_rewards=bad_q, estimators=names, switch_tau=20.0, n_bootstrap=0,
        )  # fmt: skip
        for name in names:
            out[name].append(values[name].value)
        good = estimate_policy_value(
            logs["reward"], logs["action"], logs["pscore"], logs["target"],
            estimated_rewards=logs["q"], estimators=["dm", "dr"], n_bootstrap=0,
        )  # fmt: skip
        out["dm_good"].append(good["dm"].value)
        out["dr_good"].append(good["dr"].value)
        tuned = estimate_policy_value(
            logs["reward"], logs["action"], logs["pscore"], logs["target"],
            estimated_rewards=bad_q, estimators=["switch_dr", "dr_os"], n_bootstrap=0,
        )  # fmt: skip
        out["switch_auto"].append(tuned["switch_dr"].value)
        out["dr_os_auto"].append(tuned["dr_os"].value)
    return truth, {k: np.asarray(v) for k, v in out.items()}


def _bias_in_se(values: np.ndarray, truth: float) -> float:
    return abs(values.mean() - truth) / (values.std(ddof=1) / np.sqrt(values.size))


def test_ipw_and_dr_are_unbiased_dm_with_a_wrong_model_is_not(
    runs: tuple[float, dict[str, np.ndarray]],
) -> None:
    truth, v = runs
    assert _bias_in_se(v["ipw"], truth) < 3.5
    assert _bias_in_se(v["dr"], truth) < 3.5  # unbiased although its reward model is wrong
    assert _bias_in_se(v["dm"], truth) > 10  # the wrong model's bias does not average out
    assert abs(v["dm_good"].mean() - truth) < 0.005  # with the true model DM is exact-ish


def test_dr_has_lower_variance_than_ipw_and_the_self_normalised_ones_too(
    runs: tuple[float, dict[str, np.ndarray]],
) -> None:
    _, v = runs
    assert v["dr"].var() < v["ipw"].var()
    assert v["dr_good"].var() < 0.5 * v["ipw"].var()  # a good model removes most variance
    assert v["snipw"].var() < v["ipw"].var()
    assert v["sndr"].var() <= v["dr"].var() * 1.05
    # Switch-DR trades a little bias for variance: never more variance than DR
    assert v["switch_dr"].var() <= v["dr"].var()


def test_bootstrap_interval_covers_the_truth_at_about_the_nominal_rate() -> None:
    """With bounded weights (logging close to uniform) the percentile interval is nominal.

    With heavy weights (max ~120, the other problem here) it under-covers (about 0.89 for
    DR, 0.78 for IPW at n = 3,000): a known limit of bootstrap intervals for IPW-type
    estimators, stated in docs/experiments.md."""
    problem = Problem(2, logging_temperature=0.3)
    truth = problem.true_value()
    rng = np.random.default_rng(3)
    covered = 0
    reps = 100
    for i in range(reps):
        logs = _logs(problem, 3000, rng)
        result = estimate_policy_value(
            logs["reward"], logs["action"], logs["pscore"], logs["target"],
            estimated_rewards=logs["q"], estimators=["dr"], n_bootstrap=200, seed=i,
        )["dr"]  # fmt: skip
        covered += result.ci_low <= truth <= result.ci_high
    assert covered / reps >= 0.90  # nominal 0.95; 100 runs leave about +-0.02


def test_replay_is_unbiased_for_a_deterministic_policy_on_uniform_logs() -> None:
    rng = np.random.default_rng(4)
    problem = Problem(4)
    estimates = []
    x_truth = np.random.default_rng(5).normal(size=(200_000, DIM))
    q_truth = problem.mean_reward(x_truth)
    truth = float(q_truth[np.arange(200_000), np.argmax(x_truth @ problem.weights, axis=1)].mean())
    for _ in range(200):
        x = rng.normal(size=(3000, DIM))
        action = rng.integers(0, N_ACTIONS, 3000)
        q = problem.mean_reward(x)
        reward = (rng.random(3000) < q[np.arange(3000), action]).astype(float)
        target = np.argmax(x @ problem.weights, axis=1)
        estimates.append(replay(reward, action, target, n_bootstrap=0).value)
    assert _bias_in_se(np.asarray(estimates), truth) < 3.5


def test_slates_with_positions_and_bad_input() -> None:
    rng = np.random.default_rng(6)
    n = 30_000
    position = rng.integers(0, 3, n)
    action = rng.integers(0, 4, n)
    ctr = np.array([[0.1, 0.2, 0.3, 0.4]]).T * np.array([1.0, 0.7, 0.5])  # (action, position)
    reward = (rng.random(n) < ctr[action, position]).astype(float)
    target = np.zeros((n, 4, 3))
    target[:, 3, :] = 1.0  # always the best item, at every position
    truth = float(np.mean(ctr[3, position]))
    out = estimate_policy_value(reward, action, np.full(n, 0.25), target, position=position,
                                estimators=["ipw", "snipw"], n_bootstrap=50)  # fmt: skip
    assert out["ipw"].value == pytest.approx(truth, abs=0.02)
    assert out["snipw"].value == pytest.approx(truth, abs=0.02)
    assert out["snipw"].ci_low < out["snipw"].value < out["snipw"].ci_high
    with pytest.raises(DataError, match="needs 'position'"):
        estimate_policy_value(reward, action, np.full(n, 0.25), target, estimators=["ipw"])
    with pytest.raises(DataError, match=r"'pscore' must lie in \(0, 1\]; row 3"):
        bad = np.full(n, 0.25)
        bad[3] = 0.0
        estimate_policy_value(reward, action, bad, target, position=position, estimators=["ipw"])
    with pytest.raises(ConfigError, match="need 'estimated_rewards'"):
        estimate_policy_value(reward, action, np.full(n, 0.25), target, position=position)
    with pytest.raises(ConfigError, match="Unknown off-policy estimator 'magic'"):
        estimate_policy_value(reward, action, np.full(n, 0.25), target, position=position,
                              estimators=["magic"])  # fmt: skip
    with pytest.raises(DataError, match="no round where the logged action"):
        replay([1.0, 0.0], [0, 0], [1, 1])


def test_tuned_switch_and_shrinkage_stay_close_to_dr_and_far_below_ipw_and_dm(
    runs: tuple[float, dict[str, np.ndarray]],
) -> None:
    truth, v = runs

    def mse(name: str) -> float:
        return float(np.mean((v[name] - truth) ** 2))

    # measured: DR 36e-4, IPW 311e-4, DM 118e-4, tuned Switch-DR 36e-4, tuned DRos 39e-4
    for tuned in ("switch_auto", "dr_os_auto"):
        assert mse(tuned) < 1.15 * mse("dr")  # the tuner never does much worse than DR
        assert mse(tuned) < 0.5 * mse("dm") and mse(tuned) < 0.2 * mse("ipw")
