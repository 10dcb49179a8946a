"""Assignment and the routing seam: sticky, balanced, independent, exclusive, cheap."""

from __future__ import annotations

import time

import numpy as np
import pytest

from loopml.core import ConfigError, DataError
from loopml.experiments import (
    UCB1,
    ABPolicy,
    BanditPolicy,
    CanaryPolicy,
    ChampionPolicy,
    EpsilonGreedy,
    Experiment,
    Layer,
    RoutingDecision,
    RoutingPolicy,
    ShadowPolicy,
    ThompsonBernoulli,
    ThompsonGaussian,
    Variant,
    bucket,
    check_bandit,
    check_routing_policy,
    srm_test,
)

UNITS = [f"user-{i}" for i in range(40_000)]


def _ab(name: str = "ranker", weights: tuple[float, float] = (1.0, 1.0)) -> Experiment:
    return Experiment(
        name, [Variant("control", "v1", weights[0]), Variant("treatment", "v2", weights[1])]
    )


def test_buckets_are_uniform() -> None:
    counts = np.bincount([bucket(u, "salt", 100) for u in UNITS], minlength=100)
    from scipy import stats

    assert stats.chisquare(counts).pvalue > 0.001


def test_assignment_is_sticky_and_matches_the_weights() -> None:
    exp = _ab(weights=(9.0, 1.0))
    first = [exp.assign(u).name for u in UNITS]
    again = [exp.assign(u).name for u in reversed(UNITS)][::-1]
    assert first == again
    treated = sum(name == "treatment" for name in first)
    assert not srm_test([len(UNITS) - treated, treated], [0.9, 0.1]).alarm


def test_salts_give_independent_assignments() -> None:
    a = np.array([_ab("exp-a").assign(u).name == "treatment" for u in UNITS])
    b = np.array([_ab("exp-b").assign(u).name == "treatment" for u in UNITS])
    table = np.array([[np.sum(~a & ~b), np.sum(~a & b)], [np.sum(a & ~b), np.sum(a & b)]])
    from scipy import stats

    assert stats.chi2_contingency(table).pvalue > 0.001


def test_layers_keep_experiments_mutually_exclusive() -> None:
    exp_a, exp_b = _ab("exp-a"), _ab("exp-b")
    layer = Layer("ranking", [(exp_a, 0.2), (exp_b, 0.3)])
    hits = [layer.assign(u) for u in UNITS]
    names = [h[0].name if h else None for h in hits]
    share_a, share_b = names.count("exp-a") / len(UNITS), names.count("exp-b") / len(UNITS)
    assert share_a == pytest.approx(0.2, abs=0.01) and share_b == pytest.approx(0.3, abs=0.01)
    # inside each experiment the variants are balanced
    in_a = [h[1].name for h in hits if h and h[0] is exp_a]
    assert not srm_test([in_a.count("control"), in_a.count("treatment")]).alarm
    with pytest.raises(ConfigError, match="sum to at most 1"):
        Layer("full", [(exp_a, 0.7), (exp_b, 0.5)])


def test_policies_satisfy_the_protocol_and_log_what_the_service_needs() -> None:
    exp = _ab()
    policies: list[RoutingPolicy] = [
        ChampionPolicy("v1"),
        ABPolicy(exp, default_version="v1"),
        ABPolicy(Layer("l", [(exp, 0.5)]), default_version="v0"),
        ShadowPolicy(ChampionPolicy("v1"), ["v2"], fraction=0.25),
        CanaryPolicy("v1", "v2", weight=5.0),
        BanditPolicy(["v1", "v2"], ThompsonBernoulli(2, seed=0)),
    ]
    for policy in policies:
        assert isinstance(policy, RoutingPolicy)
        decision = policy.route("user-1", "req-1")
        assert isinstance(decision, RoutingDecision)
        assert 0 < decision.propensity <= 1
        assert decision.version not in decision.shadow_versions
    layered = ABPolicy(Layer("l", [(exp, 0.5)]), default_version="v0")
    arms = [layered.route(u, "r").arm for u in UNITS[:10_000]]
    assert arms.count("default") / 10_000 == pytest.approx(0.5, abs=0.02)


def test_shadow_samples_requests_not_units_and_never_changes_the_answer() -> None:
    base = ABPolicy(_ab(), default_version="v1")
    shadow = ShadowPolicy(base, ["v3"], fraction=0.1)
    decisions = [
        (base.route(u, f"req-{i}"), shadow.route(u, f"req-{i}")) for i, u in enumerate(UNITS)
    ]
    assert all(a.version == b.version and a.arm == b.arm for a, b in decisions)
    sampled = sum(bool(b.shadow_versions) for _, b in decisions) / len(decisions)
    assert sampled == pytest.approx(0.1, abs=0.01)
    assert shadow.route("u", "req-9").shadow_versions == shadow.route("u", "req-9").shadow_versions
    with pytest.raises(ConfigError, match="'fraction' parameter of ShadowPolicy"):
        ShadowPolicy(base, ["v3"], fraction=1.5)


def test_canary_weight_moves_units_monotonically() -> None:
    policy = CanaryPolicy("v1", "v2", weight=5.0)
    at_5 = {u for u in UNITS if policy.route(u, "r").version == "v2"}
    policy.set_weight(25.0)
    at_25 = {u for u in UNITS if policy.route(u, "r").version == "v2"}
    assert len(at_5) / len(UNITS) == pytest.approx(0.05, abs=0.01)
    assert len(at_25) / len(UNITS) == pytest.approx(0.25, abs=0.01)
    assert at_5 <= at_25  # a unit on the challenger stays there as the weight grows
    policy.set_weight(0.0)
    assert all(policy.route(u, "r").version == "v1" for u in UNITS[:1000])
    with pytest.raises(ConfigError, match=r"percentage in \[0, 100\]"):
        policy.set_weight(120)


def test_bandit_policy_learns_from_rewards_and_rejects_foreign_decisions() -> None:
    rng = np.random.default_rng(0)
    policy = BanditPolicy(["v1", "v2", "v3"], ThompsonBernoulli(3, seed=0, refresh_every=10))
    rates = {"v1": 0.05, "v2": 0.15, "v3": 0.10}
    served = []
    for i in range(4000):
        decision = policy.route(f"u{i}", f"r{i}")
        policy.reward(decision, float(rng.random() < rates[decision.version]))
        served.append(decision.version)
    assert served[-1000:].count("v2") > 800
    with pytest.raises(DataError, match="never serves version 'v9'"):
        policy.reward(RoutingDecision("v9"), 1.0)


def test_routing_costs_a_few_microseconds() -> None:
    exp = _ab()
    policies = {
        "champion": ChampionPolicy("v1"),
        "ab": ABPolicy(Layer("l", [(exp, 0.5)]), default_version="v1"),
        "shadow": ShadowPolicy(ABPolicy(exp, default_version="v1"), ["v3"], fraction=0.1),
        "canary": CanaryPolicy("v1", "v2", weight=25.0),
        "bandit": BanditPolicy(["v1", "v2"], ThompsonBernoulli(2, seed=0, refresh_every=100)),
    }
    ids = UNITS[:20_000]
    for name, policy in policies.items():
        best = float("inf")
        for _ in range(3):  # CPU time of this process, best of 3: robust to a busy machine
            start = time.process_time()
            for unit in ids:
                policy.route(unit, unit)
            best = min(best, time.process_time() - start)
        per_call_us = best / len(ids) * 1e6
        # a few microseconds on an idle core; the bound leaves room for a slow CI machine
        assert per_call_us < 25, (name, per_call_us)


def test_bad_variants_are_named() -> None:
    with pytest.raises(ConfigError, match="'weight' parameter of Variant 'a' must be > 0"):
        Variant("a", "v1", 0)
    with pytest.raises(ConfigError, match="duplicate variant names"):
        Experiment("e", [Variant("a", "v1"), Variant("a", "v2")])
    with pytest.raises(ConfigError, match="has no variant 'zz'"):
        _ab().fraction("zz")


@pytest.mark.parametrize(
    "make",
    [
        lambda: ChampionPolicy("v1"),
        lambda: ABPolicy(_ab(), default_version="v1"),
        lambda: ABPolicy(Layer("l", [(_ab(), 0.4)]), default_version="v0"),
        lambda: ShadowPolicy(ABPolicy(_ab(), default_version="v1"), ["v2", "v3"], fraction=0.5),
        lambda: CanaryPolicy("v1", "v2", weight=50.0),
    ],
    ids=["champion", "ab", "layer", "shadow", "canary"],
)
def test_every_routing_policy_passes_the_contract_checks(make: object) -> None:
    check_routing_policy(make())  # type: ignore[operator]


def test_bandit_policy_passes_the_non_sticky_contract_checks() -> None:
    check_routing_policy(BanditPolicy(["v1", "v2"], UCB1(2, seed=0)), sticky=False)


@pytest.mark.parametrize(
    "make",
    [
        lambda: EpsilonGreedy(3, epsilon=0.2, seed=0),
        lambda: UCB1(3, seed=0),
        lambda: ThompsonBernoulli(3, seed=0),
        lambda: ThompsonGaussian(3, seed=0, refresh_every=3),
    ],
    ids=["epsilon-greedy", "ucb1", "thompson-bernoulli", "thompson-gaussian"],
)
def test_every_bandit_passes_the_contract_checks(make: object) -> None:
    check_bandit(make())  # type: ignore[operator]
