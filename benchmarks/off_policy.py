"""Off-policy evaluation on the Open Bandit Dataset, against obp's published small-sample errors.

obp's protocol (examples/obd/evaluate_off_policy_estimators.py, obp 0.4.1 preprocessing):
estimate the policy value of the Bernoulli Thompson sampling policy (``bts``) from the logs
of the uniform-random policy (``random``), campaign ``all``; the ground truth is the
on-policy click rate of the ``bts`` logs. For each of 30 bootstrap resamples of the random
logs (10,000 rounds with replacement, ``random_state = b``) a logistic-regression reward
model (``C=100, max_iter=10000``, one model per position, features = one-hot user features
(``drop_first``) + label-encoded item features, 3-fold cross-fitting) feeds DM/DR/SNDR/
Switch-DR/DRos; IPW and SNIPW use the logged propensities (1/80). The score is the mean
relative error ``|estimate - truth| / truth`` over the bootstrap samples.

The evaluation policy's action distribution. obp simulates Bernoulli TS from ZOZOTOWN's
prior parameters (shipped in obp's code, not in the data). We use the data only: the bts
logs carry the propensity of each shown (item, position), and that propensity changed
during the week as the live policy was updated. The week-averaged probability of
(item, position) is estimated by the harmonic mean of its logged propensities,
``n(a, p) / sum_i 1/pscore_i`` (unbiased for the time average, because a round logs an item
with the very probability it reports), then each position is normalised to sum to 1 (the
raw sums are 1.12/1.11/1.08; one of the 240 pairs never appears and gets 0). The result is
one distribution, the same for every round, as in obp.

    python benchmarks/off_policy.py            # 30 bootstrap samples
    python benchmarks/off_policy.py --quick    # 3 samples
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from loopml.experiments import average_action_distribution, estimate_policy_value

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "open_bandit"
PUBLISHED = {  # obp's published mean relative error, small-sample protocol
    "dm": 0.157,
    "dr_os": 0.160,
    "switch_dr": 0.258,
    "dr": 0.292,
    "sndr": 0.302,
    "ipw": 0.311,
    "snipw": 0.312,
}
N_ACTIONS, N_POSITIONS = 80, 3


def load(folder: Path, policy: str) -> dict[str, np.ndarray]:
    """One policy's logs as obp 0.4.1 pre-processes them."""
    from sklearn.preprocessing import LabelEncoder

    frame = pd.read_csv(folder / policy / "all.csv", index_col=0).sort_values("timestamp")
    items = pd.read_csv(folder / policy / "item_context.csv", index_col=0)
    users = frame.loc[:, frame.columns.str.contains("user_feature")].astype(str)
    categorical = items.drop(columns="item_feature_0").apply(LabelEncoder().fit_transform)
    action_context = pd.concat([categorical, items["item_feature_0"]], axis=1)
    return {
        "context": pd.get_dummies(users, drop_first=True).to_numpy(dtype=np.float64),
        "action_context": action_context.to_numpy(dtype=np.float64),
        "action": frame["item_id"].to_numpy(dtype=np.intp),
        "position": frame["position"].to_numpy(dtype=np.intp) - 1,
        "reward": frame["click"].to_numpy(dtype=np.float64),
        "pscore": frame["propensity_score"].to_numpy(dtype=np.float64),
    }


def bts_action_distribution(bts: dict[str, np.ndarray]) -> np.ndarray:
    """Week-averaged P(item at position) of the bts policy, from its logged propensities."""
    return average_action_distribution(
        bts["action"], bts["pscore"], n_actions=N_ACTIONS, position=bts["position"],
        n_positions=N_POSITIONS,
    )  # fmt: skip


def cross_fitted_rewards(
    logs: dict[str, np.ndarray], n_folds: int = 3, seed: int = 12345
) -> np.ndarray:
    """obp's RegressionModel(fitting_method='normal') with logistic regression, cross-fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    context, actions = logs["context"], logs["action_context"]
    n = context.shape[0]
    out = np.zeros((n, N_ACTIONS, N_POSITIONS))
    for train, test in KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(context):
        for pos in range(N_POSITIONS):
            rows = train[logs["position"][train] == pos]
            x = np.c_[context[rows], actions[logs["action"][rows]]]
            model = LogisticRegression(C=100, max_iter=10_000, random_state=12345)
            model.fit(x, logs["reward"][rows])
            grid = np.c_[
                np.repeat(context[test], N_ACTIONS, axis=0), np.tile(actions, (len(test), 1))
            ]
            out[test, :, pos] = model.predict_proba(grid)[:, 1].reshape(len(test), N_ACTIONS)
    return out


def run(n_boot: int, folder: Path) -> dict[str, list[float]]:
    random_logs, bts = load(folder, "random"), load(folder, "bts")
    truth = float(bts["reward"].mean())
    dist = bts_action_distribution(bts)
    n = random_logs["reward"].size
    print(f"data: {folder}  random logs {n:,} rounds, {int(random_logs['reward'].sum())} clicks; "
          f"ground truth (bts on-policy click rate) {truth:.5f}")  # fmt: skip
    errors: dict[str, list[float]] = {name: [] for name in [*PUBLISHED, *FIXED]}
    chosen: dict[str, list[float]] = {"switch_dr": [], "dr_os": []}
    for b in range(n_boot):
        idx = np.random.RandomState(b).choice(np.arange(n), size=n, replace=True)
        sample = {k: (v[idx] if k != "action_context" else v) for k, v in random_logs.items()}
        q = cross_fitted_rewards(sample)
        estimates = estimate_policy_value(
            sample["reward"], sample["action"], sample["pscore"],
            np.broadcast_to(dist, (n, N_ACTIONS, N_POSITIONS)), position=sample["position"],
            estimated_rewards=q, estimators=list(PUBLISHED), n_bootstrap=0,
        )  # fmt: skip
        fixed = estimate_policy_value(
            sample["reward"], sample["action"], sample["pscore"],
            np.broadcast_to(dist, (n, N_ACTIONS, N_POSITIONS)), position=sample["position"],
            estimated_rewards=q, estimators=["switch_dr", "dr_os"], switch_tau=SWITCH_TAU,
            dr_os_lambda=DR_OS_LAMBDA, n_bootstrap=0,
        )  # fmt: skip
        for name, result in estimates.items():
            errors[name].append(abs(result.value - truth) / truth)
            if name in chosen and result.parameter is not None:
                chosen[name].append(result.parameter)
        for name, result in fixed.items():
            errors[f"{name} (fixed)"].append(abs(result.value - truth) / truth)
    for name, values in chosen.items():
        print(f"{name}: parameter chosen by estimated MSE, median {np.median(values):g} "
              f"(range {min(values):g}..{max(values):g})")  # fmt: skip
    return errors


SWITCH_TAU = 20.0  # fixed before the first run: weights above 20 fall back to the model
DR_OS_LAMBDA = 20.0
FIXED = {"switch_dr (fixed)": "switch_dr", "dr_os (fixed)": "dr_os"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 bootstrap samples")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not (args.data / "random" / "all.csv").is_file():
        print(f"skipped: the Open Bandit data is not at {args.data}")
        return 0
    n_boot = 3 if args.quick else 30
    start = time.perf_counter()
    from sklearn.linear_model import LogisticRegression  # noqa: F401  (load BLAS first)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # BLAS threads on tiny fits cost 10x on a shared machine
        errors = run(n_boot, args.data)
    print(f"\nmean relative error over {n_boot} bootstrap samples; 'fixed' rows use "
          f"tau = {SWITCH_TAU:g}, lambda = {DR_OS_LAMBDA:g}, the others tune them by estimated MSE")  # fmt: skip
    print(f"{'estimator':<18} {'loopml':>8} {'(sd)':>7} {'obp':>7} {'ratio':>7}")
    rows = [*PUBLISHED.items(), *((k, PUBLISHED[v]) for k, v in FIXED.items())]
    for name, published in rows:
        ours = float(np.mean(errors[name]))
        sd = float(np.std(errors[name], ddof=1)) if len(errors[name]) > 1 else float("nan")
        flag = "" if ours <= published else "  above published"
        print(f"{name:<18} {ours:8.3f} {sd:7.3f} {published:7.3f} {ours / published:7.2f}{flag}")
    print(f"\n{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
