"""Generic contract checks, run by the test suite over every routing policy and bandit.

A new implementation passes the same checks as the built-in ones (the River habit).
"""

from __future__ import annotations

import math

import numpy as np

from loopml.experiments._bandits import UCB1, EpsilonGreedy, ThompsonBernoulli, ThompsonGaussian
from loopml.experiments._routing import RoutingDecision, RoutingPolicy

__all__ = ["check_bandit", "check_routing_policy"]

Bandit = EpsilonGreedy | UCB1 | ThompsonBernoulli | ThompsonGaussian


def check_routing_policy(policy: RoutingPolicy, *, n_units: int = 200, sticky: bool = True) -> None:
    """Raise ``AssertionError`` unless ``policy`` honours the routing contract.

    The decision is a ``RoutingDecision`` with a non-empty version, a propensity in (0, 1],
    no shadow equal to the serving version; with ``sticky`` the same unit and request get
    the same decision every time.

    >>> from loopml.experiments import CanaryPolicy
    >>> check_routing_policy(CanaryPolicy("v1", "v2", weight=10.0))
    """
    for i in range(n_units):
        unit, request = f"unit-{i}", f"request-{i}"
        decision = policy.route(unit, request)
        assert isinstance(decision, RoutingDecision), f"route returned {type(decision).__name__}"
        assert decision.version, "a decision needs the version that answers"
        assert 0.0 < decision.propensity <= 1.0, f"propensity {decision.propensity} not in (0, 1]"
        assert decision.version not in decision.shadow_versions, "a version shadows itself"
        assert len(set(decision.shadow_versions)) == len(decision.shadow_versions)
        if sticky:
            assert policy.route(unit, request) == decision, f"unit {unit} is not sticky"


def check_bandit(bandit: Bandit, *, steps: int = 300, seed: int = 0) -> None:
    """Raise ``AssertionError`` unless ``bandit`` honours the bandit contract.

    ``probabilities()`` is a distribution over the arms; ``select()`` returns an arm and
    the probability that distribution gave it; updates with rewards in [0, 1] are accepted.

    >>> from loopml.experiments import UCB1
    >>> check_bandit(UCB1(3, seed=0))
    """
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        probs = bandit.probabilities()
        assert probs.shape == (bandit.n_arms,), f"probabilities() has shape {probs.shape}"
        assert np.all(probs >= 0) and math.isclose(float(probs.sum()), 1.0, abs_tol=1e-9)
        arm, propensity = bandit.select()
        assert 0 <= arm < bandit.n_arms, f"arm {arm} out of range"
        assert propensity == probs[arm] and propensity > 0, "the propensity is not the chosen arm's"
        bandit.update(arm, float(rng.random() < 0.2 + 0.1 * arm))
    assert sum(bandit.counts_) >= steps
