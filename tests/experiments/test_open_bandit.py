"""Off-policy evaluation on the real Open Bandit logs (skips without ../shared/datasets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import DataError
from loopml.experiments import average_action_distribution, estimate_policy_value


def _logs(datasets_dir: Path, policy: str) -> pd.DataFrame:
    path = datasets_dir / "open_bandit" / policy / "all.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    columns = ["timestamp", "item_id", "position", "click", "propensity_score"]
    return pd.read_csv(path, usecols=columns).sort_values("timestamp")


def test_bts_value_estimated_from_random_logs(datasets_dir: Path) -> None:
    random_logs, bts = _logs(datasets_dir, "random"), _logs(datasets_dir, "bts")
    dist = average_action_distribution(
        bts["item_id"], bts["propensity_score"], n_actions=80,
        position=bts["position"] - 1, n_positions=3,
    )  # fmt: skip
    assert dist.shape == (80, 3) and np.allclose(dist.sum(axis=0), 1.0)
    assert (dist > 0).sum() == 239  # one (item, position) pair never appears in the bts logs
    # the uniform logging policy's own distribution comes back exactly
    uniform = average_action_distribution(
        random_logs["item_id"], random_logs["propensity_score"], n_actions=80,
        position=random_logs["position"] - 1, n_positions=3,
    )  # fmt: skip
    assert np.allclose(uniform, 1 / 80)
    truth = bts["click"].mean()
    n = len(random_logs)
    out = estimate_policy_value(
        random_logs["click"], random_logs["item_id"], random_logs["propensity_score"],
        np.broadcast_to(dist, (n, 80, 3)), position=random_logs["position"] - 1,
        estimators=["ipw", "snipw"], n_bootstrap=300, seed=0,
    )  # fmt: skip
    for result in out.values():
        # 38 clicks in the random logs: the estimate is rough, the interval must hold it
        assert result.ci_low < truth < result.ci_high
        assert abs(result.value - truth) / truth < 0.5


def test_average_action_distribution_rejects_bad_logs() -> None:
    with pytest.raises(DataError, match=r"'pscore' must lie in \(0, 1\]"):
        average_action_distribution([0, 1], [0.5, 0.0], n_actions=2)
    with pytest.raises(DataError, match=r"actions must lie in \[0, 1\]"):
        average_action_distribution([0, 2], [0.5, 0.5], n_actions=2)
