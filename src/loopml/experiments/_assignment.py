"""Deterministic, sticky assignment of units (users, cards, sessions) to variants.

A unit id hashed with an experiment's salt lands in one of ``n_buckets`` buckets; the
buckets are cut into the variants by their weights. The same unit always gets the same
variant, different salts give independent assignments, and a ``Layer`` makes experiments
mutually exclusive (a unit is in at most one experiment of a layer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from loopml.core import ConfigError

__all__ = ["Experiment", "Layer", "Variant", "bucket"]

N_BUCKETS = 10_000


def bucket(unit_id: str, salt: str, n_buckets: int = N_BUCKETS) -> int:
    """The unit's bucket in ``[0, n_buckets)`` for this salt (BLAKE2b, 64 bits).

    >>> bucket("user-42", "exp-1") == bucket("user-42", "exp-1")
    True
    >>> 0 <= bucket("user-42", "exp-1") < 10_000
    True
    """
    digest = hashlib.blake2b(f"{salt}\x1f{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_buckets


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: its name, the model version it serves, its traffic weight."""

    name: str
    version: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.name or not self.version:
            raise ConfigError(
                f"A Variant needs a non-empty name and version. Got {self.name!r}, "
                f"{self.version!r} instead."
            )
        if not self.weight > 0:
            raise ConfigError(
                f"The 'weight' parameter of Variant {self.name!r} must be > 0. Got "
                f"{self.weight!r} instead."
            )


class Experiment:
    """An A/B (or A/B/n) test: variants chosen by hashing the unit id with the salt.

    >>> exp = Experiment("ranker", [Variant("control", "v1"), Variant("treatment", "v2")])
    >>> exp.assign("user-1").name in {"control", "treatment"}
    True
    >>> sum(exp.assign(f"u{i}").name == "control" for i in range(10_000)) / 10_000
    0.50...
    """

    def __init__(
        self,
        name: str,
        variants: Sequence[Variant],
        *,
        salt: str | None = None,
        n_buckets: int = N_BUCKETS,
    ) -> None:
        if len(variants) < 1:
            raise ConfigError(f"Experiment {name!r} needs at least one variant. Got none.")
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ConfigError(f"Experiment {name!r} has duplicate variant names: {names}.")
        self.name = name
        self.variants = tuple(variants)
        self.salt = salt or name
        self.n_buckets = n_buckets
        total = sum(v.weight for v in variants)
        self.fractions = tuple(v.weight / total for v in variants)
        self._cuts = [round(c * n_buckets) for c in accumulate(self.fractions)]

    def assign(self, unit_id: str) -> Variant:
        """The unit's variant (always the same for the same unit and salt)."""
        b = bucket(unit_id, self.salt, self.n_buckets)
        for variant, cut in zip(self.variants, self._cuts, strict=True):
            if b < cut:
                return variant
        return self.variants[-1]

    def fraction(self, variant: str) -> float:
        """The planned share of units of a variant."""
        for v, f in zip(self.variants, self.fractions, strict=True):
            if v.name == variant:
                return f
        raise ConfigError(
            f"Experiment {self.name!r} has no variant {variant!r}; it has "
            f"{[v.name for v in self.variants]}."
        )


class Layer:
    """Mutually exclusive experiments: each claims a disjoint share of the layer's buckets.

    A unit outside every share is in no experiment of the layer (``assign`` returns ``None``).
    A single experiment on a fraction of traffic is a layer with one allocation.

    >>> a = Experiment("a", [Variant("control", "v1"), Variant("treatment", "v2")])
    >>> b = Experiment("b", [Variant("control", "v1"), Variant("treatment", "v3")])
    >>> layer = Layer("ranking", [(a, 0.3), (b, 0.3)])
    >>> hits = [layer.assign(f"u{i}") for i in range(10_000)]
    >>> round(sum(h is None for h in hits) / 10_000, 1)
    0.4
    """

    def __init__(
        self,
        name: str,
        allocations: Sequence[tuple[Experiment, float]],
        *,
        salt: str | None = None,
        n_buckets: int = N_BUCKETS,
    ) -> None:
        total = sum(fraction for _, fraction in allocations)
        if any(f <= 0 for _, f in allocations) or total > 1 + 1e-9:
            raise ConfigError(
                f"The traffic fractions of layer {name!r} must be > 0 and sum to at most 1. "
                f"Got {[f for _, f in allocations]} instead."
            )
        self.name = name
        self.salt = salt or f"layer:{name}"
        self.n_buckets = n_buckets
        self.allocations = tuple(allocations)
        self._cuts = [round(c * n_buckets) for c in accumulate(f for _, f in allocations)]

    def assign(self, unit_id: str) -> tuple[Experiment, Variant] | None:
        """The unit's experiment and variant in this layer, or ``None`` (not enrolled)."""
        b = bucket(unit_id, self.salt, self.n_buckets)
        for (experiment, _), cut in zip(self.allocations, self._cuts, strict=True):
            if b < cut:
                return experiment, experiment.assign(unit_id)
        return None
