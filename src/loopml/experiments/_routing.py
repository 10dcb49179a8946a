"""The routing seam between the prediction service and the experiments.

The service calls ``policy.route(unit_id, request_id)`` once per request and gets a
``RoutingDecision``: the model version that answers, the versions that score a copy in
shadow (off the request path), the arm name and the propensity of that choice, all of
which it logs with the prediction. Every policy here costs a few microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from loopml.core import ConfigError, DataError
from loopml.experiments._assignment import Experiment, Layer, bucket
from loopml.experiments._bandits import UCB1, EpsilonGreedy, ThompsonBernoulli, ThompsonGaussian

__all__ = [
    "ABPolicy",
    "BanditPolicy",
    "CanaryPolicy",
    "ChampionPolicy",
    "RoutingDecision",
    "RoutingPolicy",
    "ShadowPolicy",
]

Bandit = EpsilonGreedy | UCB1 | ThompsonBernoulli | ThompsonGaussian


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """Which version answers, which score in shadow, under which arm, with what probability."""

    version: str
    shadow_versions: tuple[str, ...] = ()
    arm: str = "champion"
    propensity: float = 1.0
    experiment: str | None = None


@runtime_checkable
class RoutingPolicy(Protocol):
    """Anything with ``route(unit_id, request_id) -> RoutingDecision``."""

    def route(self, unit_id: str, request_id: str) -> RoutingDecision:
        """Decide how to serve one request."""
        ...


class ChampionPolicy:
    """Every request goes to the champion.

    >>> ChampionPolicy("v3").route("user-1", "req-1").version
    'v3'
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self._decision = RoutingDecision(version)

    def route(self, unit_id: str, request_id: str) -> RoutingDecision:
        """Always the champion, propensity 1."""
        return self._decision


class ABPolicy:
    """A/B assignment through an experiment or a layer of exclusive experiments.

    Units not enrolled are served ``default_version`` with arm ``"default"``. The propensity
    of an enrolled unit is its variant's planned share within the experiment.

    >>> from loopml.experiments import Experiment, Variant
    >>> exp = Experiment("ranker", [Variant("control", "v1"), Variant("treatment", "v2")])
    >>> decision = ABPolicy(exp, default_version="v1").route("user-7", "req-1")
    >>> decision.experiment, decision.propensity
    ('ranker', 0.5)
    """

    def __init__(self, assignment: Experiment | Layer, *, default_version: str) -> None:
        self.assignment = assignment
        self.default_version = default_version
        self._default = RoutingDecision(default_version, arm="default")
        self._decisions: dict[tuple[str, str], RoutingDecision] = {}
        experiments = (
            [assignment]
            if isinstance(assignment, Experiment)
            else [e for e, _ in assignment.allocations]
        )
        for experiment in experiments:
            for variant, fraction in zip(experiment.variants, experiment.fractions, strict=True):
                self._decisions[(experiment.name, variant.name)] = RoutingDecision(
                    variant.version,
                    arm=variant.name,
                    propensity=fraction,
                    experiment=experiment.name,
                )

    def route(self, unit_id: str, request_id: str) -> RoutingDecision:
        """The unit's sticky variant, or the default version when it is not enrolled."""
        if isinstance(self.assignment, Experiment):
            variant = self.assignment.assign(unit_id)
            return self._decisions[(self.assignment.name, variant.name)]
        found = self.assignment.assign(unit_id)
        if found is None:
            return self._default
        return self._decisions[(found[0].name, found[1].name)]


class ShadowPolicy:
    """Wraps another policy and adds shadow versions for a sampled share of requests.

    Sampling hashes the request id, so a retried request is sampled the same way. The
    response never waits for the shadows: the service scores them off the request path.

    >>> policy = ShadowPolicy(ChampionPolicy("v1"), ["v2"], fraction=1.0)
    >>> policy.route("user-1", "req-1").shadow_versions
    ('v2',)
    """

    def __init__(
        self,
        base: RoutingPolicy,
        challengers: Sequence[str],
        *,
        fraction: float = 1.0,
        salt: str = "shadow",
    ) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(
                "The 'fraction' parameter of ShadowPolicy must be in [0, 1]. Got "
                f"{fraction!r} instead."
            )
        if not challengers:
            raise ConfigError("ShadowPolicy needs at least one challenger version. Got none.")
        self.base = base
        self.challengers = tuple(challengers)
        self.fraction = fraction
        self.salt = salt
        self._cut = round(fraction * 10_000)

    def route(self, unit_id: str, request_id: str) -> RoutingDecision:
        """The base decision, plus the challengers in shadow when the request is sampled."""
        decision = self.base.route(unit_id, request_id)
        if self._cut < 10_000 and bucket(request_id, self.salt) >= self._cut:
            return decision
        shadows = tuple(v for v in self.challengers if v != decision.version)
        return RoutingDecision(
            decision.version,
            decision.shadow_versions + shadows,
            decision.arm,
            decision.propensity,
            decision.experiment,
        )


class CanaryPolicy:
    """Sends a sticky ``weight`` percent of units to the challenger, the rest to the champion.

    ``set_weight`` is how the canary controller's current step reaches the router.

    >>> policy = CanaryPolicy("v1", "v2", weight=25.0)
    >>> share = sum(policy.route(f"u{i}", "r").version == "v2" for i in range(10_000)) / 10_000
    >>> round(share, 1)
    0.2...
    """

    def __init__(
        self,
        champion: str,
        challenger: str,
        *,
        weight: float = 0.0,
        salt: str = "canary",
        name: str = "canary",
    ) -> None:
        self.champion = champion
        self.challenger = challenger
        self.salt = salt
        self.name = name
        self.set_weight(weight)

    def set_weight(self, weight: float) -> None:
        """Move the challenger's share (percent, 0 to 100)."""
        if not 0.0 <= weight <= 100.0:
            raise ConfigError(
                "The 'weight' of CanaryPolicy must be a percentage in [0, 100]. Got "
                f"{weight!r} instead."
            )
        self.weight = weight
        self._cut = round(weight * 100)
        share = weight / 100.0
        self._to_challenger = RoutingDecision(self.challenger, (), "challenger", share, self.name)
        self._to_champion = RoutingDecision(self.champion, (), "champion", 1.0 - share, self.name)

    def route(self, unit_id: str, request_id: str) -> RoutingDecision:
        """Challenger for units hashed below the weight, champion otherwise."""
        if bucket(unit_id, self.salt) < self._cut:
            return self._to_challenger
        return self._to_champion


class BanditPolicy:
    """Chooses among versions with a bandit; ``reward(decision, value)`` feeds it back.

    >>> from loopml.experiments import ThompsonBernoulli
    >>> policy = BanditPolicy(["v1", "v2"], ThompsonBernoulli(2, seed=0))
    >>> decision = policy.route("user-1", "req-1")
    >>> decision.version in {"v1", "v2"}, 0 < decision.propensity <= 1
    (True, True)
    >>> policy.reward(decision, 1.0)
    """

    def __init__(self, versions: Sequence[str], bandit: Bandit, *, name: str = "bandit") -> None:
        if len(versions) != bandit.n_arms:
            raise ConfigError(
                f"BanditPolicy got {len(versions)} versions for a bandit with {bandit.n_arms} arms."
            )
        self.versions = tuple(versions)
        self.bandit = bandit
        self.name = name
        self._index = {v: i for i, v in enumerate(self.versions)}

    def route(self, unit_id: str, request_id: str) -> RoutingDecision:
        """The bandit's choice for this request, with its propensity."""
        arm, propensity = self.bandit.select()
        version = self.versions[arm]
        return RoutingDecision(version, (), version, propensity, self.name)

    def reward(self, decision: RoutingDecision, value: float) -> None:
        """Feed back the reward observed for a decision this policy made."""
        arm = self._index.get(decision.version)
        if arm is None:
            raise DataError(
                f"BanditPolicy {self.name!r} never serves version {decision.version!r}; "
                f"its versions are {list(self.versions)}."
            )
        self.bandit.update(arm, value)
