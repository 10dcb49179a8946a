"""Shadow comparison reports and team-draft interleaving with its simulator."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, DataError, SchemaError
from loopml.experiments import (
    Interleaving,
    credit,
    pair_shadow_log,
    preference_test,
    shadow_report,
    simulate_rankers,
    simulated_power,
    team_draft,
    users_needed,
)


def test_shadow_report_measures_planted_differences() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    champion = rng.random(n)
    challenger = np.clip(champion + rng.normal(0.02, 0.05, n), 0, 1)
    challenger[:200] = np.nan  # 1% of shadow calls failed
    lat_c, lat_t = rng.gamma(4, 2.0, n), rng.gamma(4, 3.0, n)
    report = shadow_report(
        champion, challenger, champion_latency_ms=lat_c, challenger_latency_ms=lat_t
    )
    assert report.n == n
    assert report.error_rate == (0.0, 0.01)
    assert report.mean_delta == pytest.approx(0.02, abs=0.003)  # clipping pulls it a little
    ok = ~np.isnan(challenger)
    same = (champion[ok] >= 0.5) == (challenger[ok] >= 0.5)
    assert report.agreement == pytest.approx(same.mean())
    assert report.latency_p99_ms[1] / report.latency_p99_ms[0] == pytest.approx(1.5, rel=0.1)
    assert report.n_labelled == 0 and "paired requests" in report.summary()


def test_shadow_report_quality_once_labels_arrive() -> None:
    rng = np.random.default_rng(1)
    n = 5000
    y = rng.integers(0, 2, n).astype(float)
    champion = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, n), 0, 1)
    challenger = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.25, n), 0, 1)
    y[: n // 2] = np.nan  # half the labels have not arrived yet
    report = shadow_report(champion, challenger, labels=y)
    assert report.n_labelled == n // 2
    assert report.quality[1] > report.quality[0] and report.quality_p_value < 0.001
    truth = rng.normal(size=n)
    reg = shadow_report(truth + rng.normal(0, 1, n), truth + rng.normal(0, 1, n), labels=truth,
                        task="regression", tolerance=0.5)  # fmt: skip
    assert reg.quality_metric == "mean absolute error" and reg.quality_p_value > 0.001
    with pytest.raises(ConfigError, match="'task' parameter of shadow_report"):
        shadow_report([0.1], [0.2], task="ranking")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="'challenger' has 1 values for 2 requests"):
        shadow_report([0.1, 0.2], [0.2])


def test_pair_shadow_log_joins_by_request_id() -> None:
    log = pd.DataFrame({
        "request_id": ["a", "a", "b", "b", "c"],
        "version": ["v1", "v2", "v1", "v2", "v1"],
        "score": [0.1, 0.2, 0.8, 0.4, 0.5],
        "latency_ms": [1.0, 2.0, 1.5, 2.5, 1.0],
        "error": [False, False, False, True, False],
        "label": [0, 0, 1, 1, 1],
    })  # fmt: skip
    paired = pair_shadow_log(log, "v1", "v2")
    assert paired["request_id"].tolist() == ["a", "b"]  # c was never shadowed
    report = shadow_report(
        paired["champion"], paired["challenger"],
        champion_latency_ms=paired["champion_latency_ms"],
        challenger_latency_ms=paired["challenger_latency_ms"],
        champion_error=paired["champion_error"], challenger_error=paired["challenger_error"],
    )  # fmt: skip
    assert report.error_rate == (0.0, 0.5)
    with pytest.raises(SchemaError, match=r"lacks the column\(s\) \['score'\]"):
        pair_shadow_log(log.drop(columns="score"), "v1", "v2")
    with pytest.raises(DataError, match="no row for version 'v9'"):
        pair_shadow_log(log, "v1", "v9")


def test_team_draft_is_a_fair_interleaving() -> None:
    rng = random.Random(0)
    a, b = list(range(10)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    firsts = []
    for _ in range(2000):
        result = team_draft(a, b, length=6, rng=rng)
        assert len(set(result.items)) == 6
        # every prefix is balanced between the teams to within one item
        counts = np.cumsum([1 if t == 0 else -1 for t in result.teams])
        assert np.all(np.abs(counts) <= 1)
        # each team's items appear in its own ranker's order
        for team, ranking in ((0, a), (1, b)):
            mine = [i for i, t in zip(result.items, result.teams, strict=True) if t == team]
            assert mine == sorted(mine, key=ranking.index)
        firsts.append(result.teams[0])
    assert np.mean(firsts) == pytest.approx(0.5, abs=0.04)  # the coin toss is fair
    identical = team_draft(a, a, length=4, rng=rng)
    assert list(identical.items) == [0, 1, 2, 3]
    assert credit(Interleaving((1, 2, 3), (0, 1, 1)), [1, 2]) == -1
    with pytest.raises(DataError, match="outside the list of 3 items"):
        credit(Interleaving((1, 2, 3), (0, 1, 1)), [5])


def test_preference_test_false_positive_rate_on_equal_rankers() -> None:
    sim = simulate_rankers(8000, noise_a=1.0, noise_b=1.0, seed=3)
    assert abs(sim.interleaving.mean()) < 0.03
    rng = np.random.default_rng(4)
    samples = rng.choice(sim.interleaving, size=(1000, 400))
    rate = np.mean([preference_test(s).p_value < 0.05 for s in samples])
    assert rate <= 0.07  # the sign test is conservative (exact binomial)
    with pytest.raises(DataError, match="outcomes in"):
        preference_test([2, 0])


def test_interleaving_needs_far_fewer_users_than_ab_for_the_same_power() -> None:
    sim = simulate_rankers(12_000, seed=5)
    needs = users_needed(sim, power=0.95)
    # paired within each user, interleaving escapes the between-user spread of clicks
    assert needs["ab"] > 3 * needs["interleaving"], needs
    # the normal-theory sizes deliver the power in simulated experiments
    for design in ("interleaving", "ab"):
        power = simulated_power(sim, needs[design], design=design, reps=2000, seed=6)
        assert power == pytest.approx(0.95, abs=0.02), (design, power)
    with pytest.raises(ConfigError, match="1 <= length <= n_docs"):
        simulate_rankers(10, n_docs=5, length=10)
