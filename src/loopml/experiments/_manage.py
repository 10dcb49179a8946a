"""Experiments and rollouts kept in the state store (``loopml.core.StateStore``).

The statistics and the canary state machine are pure; these functions read a record, call
them, and write the new record with compare-and-set (so two writers cannot lose an update),
journalling every transition as an event. The store is any object with the
``StateStore`` methods used here (``get_with_revision``, ``compare_and_set``, ``list``,
``append_event``, ``events``).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from loopml.core import ConfigError, NotFoundError, StateEvent, ensure_utc, utcnow
from loopml.experiments._assignment import Experiment, Variant
from loopml.experiments._canary import (
    ArmWindow,
    CanarySpec,
    CanaryState,
    StepAnalysis,
    abort,
    advance,
    analyze_step,
    resume,
    start_canary,
)

__all__ = [
    "abort_rollout",
    "experiment_from_record",
    "get_experiment",
    "get_rollout",
    "list_experiments",
    "list_rollouts",
    "observe_rollout",
    "resume_rollout",
    "start_experiment",
    "start_rollout",
    "stop_experiment",
]

EXPERIMENT = "experiment"
ROLLOUT = "rollout"


class Store(Protocol):
    """The part of ``loopml.core.StateStore`` this module uses."""

    def get_with_revision(self, kind: str, key: str) -> tuple[dict[str, Any], int] | None: ...

    def compare_and_set(
        self, kind: str, key: str, value: dict[str, Any], expected_revision: int | None
    ) -> int: ...

    def list(self, kind: str) -> list[tuple[str, dict[str, Any]]]: ...

    def append_event(
        self, kind: str, payload: dict[str, Any], *, time: datetime | None = None
    ) -> int: ...

    def events(
        self,
        kind: str | None = None,
        *,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[StateEvent]: ...


def _load(store: Store, kind: str, name: str) -> tuple[dict[str, Any], int]:
    found = store.get_with_revision(kind, name)
    if found is None:
        known = [key for key, _ in store.list(kind)]
        raise NotFoundError(
            f"No {kind} named {name!r}; known: {known or 'none'}.",
            hint=f"start one with `loopml {kind if kind == ROLLOUT else 'experiment'} start`",
        )
    return found


# -- experiments ---------------------------------------------------------------------------
def start_experiment(
    store: Store,
    name: str,
    variants: Sequence[Variant],
    *,
    salt: str | None = None,
    unit: str = "user",
    layer: str | None = None,
    traffic: float = 1.0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record a running A/B experiment; an existing name is an error.

    >>> import tempfile, pathlib
    >>> from loopml.core import StateStore
    >>> store = StateStore(f"sqlite:///{pathlib.Path(tempfile.mkdtemp()) / 's.sqlite'}")
    >>> variants = [Variant("control", "v1"), Variant("treatment", "v2")]
    >>> record = start_experiment(store, "ranker", variants)
    >>> record["status"], experiment_from_record(record).fractions
    ('running', (0.5, 0.5))
    """
    if not 0 < traffic <= 1:
        raise ConfigError(
            f"The 'traffic' of experiment {name!r} must be in (0, 1]. Got {traffic!r} instead."
        )
    Experiment(name, variants, salt=salt)  # validates the variants
    stamp = ensure_utc(now or utcnow()).isoformat()
    record = {
        "name": name,
        "status": "running",
        "unit": unit,
        "salt": salt or name,
        "layer": layer,
        "traffic": traffic,
        "started_at": stamp,
        "stopped_at": None,
        "stop_reason": None,
        "variants": [{"name": v.name, "version": v.version, "weight": v.weight} for v in variants],
    }
    if store.get_with_revision(EXPERIMENT, name) is not None:
        raise ConfigError(f"An experiment named {name!r} already exists.", hint="pick another name")
    store.compare_and_set(EXPERIMENT, name, record, None)
    store.append_event(
        EXPERIMENT, {"experiment": name, "action": "start", "variants": record["variants"]}
    )
    return record


def experiment_from_record(record: dict[str, Any]) -> Experiment:
    """The ``Experiment`` (assignment) a stored record describes."""
    variants = [Variant(v["name"], v["version"], float(v["weight"])) for v in record["variants"]]
    return Experiment(record["name"], variants, salt=record["salt"])


def get_experiment(store: Store, name: str) -> dict[str, Any]:
    """The stored record of an experiment."""
    return _load(store, EXPERIMENT, name)[0]


def list_experiments(store: Store) -> list[dict[str, Any]]:
    """Every experiment record, by name."""
    return [value for _, value in store.list(EXPERIMENT)]


def stop_experiment(
    store: Store, name: str, *, reason: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """Mark an experiment stopped (the service then serves the default version)."""
    record, revision = _load(store, EXPERIMENT, name)
    if record["status"] == "stopped":
        raise ConfigError(f"Experiment {name!r} was already stopped at {record['stopped_at']}.")
    stamp = ensure_utc(now or utcnow()).isoformat()
    record = {**record, "status": "stopped", "stopped_at": stamp, "stop_reason": reason or None}
    store.compare_and_set(EXPERIMENT, name, record, revision)
    store.append_event(EXPERIMENT, {"experiment": name, "action": "stop", "reason": reason})
    return record


# -- rollouts ------------------------------------------------------------------------------
def start_rollout(
    store: Store,
    name: str,
    champion: str,
    challenger: str,
    spec: CanarySpec | None = None,
    *,
    now: datetime | None = None,
) -> CanaryState:
    """Start a canary rollout at its first step (one active rollout per name)."""
    now = now or utcnow()
    found = store.get_with_revision(ROLLOUT, name)
    if found is not None and not CanaryState.from_dict(found[0]).done:
        raise ConfigError(f"Rollout {name!r} is still {found[0]['status']}.", hint="abort it first")
    state = start_canary(name, champion, challenger, spec, now=now)
    store.compare_and_set(ROLLOUT, name, state.to_dict(), None if found is None else found[1])
    store.append_event(
        ROLLOUT,
        {
            "rollout": name,
            "action": "start",
            "weight": state.weight,
            "champion": champion,
            "challenger": challenger,
        },
    )
    return state


def get_rollout(store: Store, name: str) -> CanaryState:
    """The current state of a rollout."""
    return CanaryState.from_dict(_load(store, ROLLOUT, name)[0])


def list_rollouts(store: Store) -> list[CanaryState]:
    """Every rollout, by name."""
    return [CanaryState.from_dict(value) for _, value in store.list(ROLLOUT)]


def _transition(
    store: Store, name: str, revision: int, before: CanaryState, after: CanaryState, action: str
) -> None:
    store.compare_and_set(ROLLOUT, name, after.to_dict(), revision)
    if after != before:
        store.append_event(
            ROLLOUT,
            {
                "rollout": name,
                "action": action,
                "status": after.status,
                "weight": after.weight,
                "reason": after.reason,
            },
        )


def observe_rollout(
    store: Store,
    name: str,
    champion: ArmWindow,
    challenger: ArmWindow,
    *,
    now: datetime | None = None,
) -> tuple[CanaryState, StepAnalysis]:
    """Analyse the current step's windows and move the rollout on (what the loop calls)."""
    data, revision = _load(store, ROLLOUT, name)
    state = CanaryState.from_dict(data)
    analysis = analyze_step(state.spec, champion, challenger, weight=state.weight)
    after = advance(state, analysis, now=now or utcnow())
    _transition(store, name, revision, state, after, f"analysis:{analysis.outcome}")
    return after, analysis


def abort_rollout(
    store: Store, name: str, reason: str, *, now: datetime | None = None
) -> CanaryState:
    """Roll back to 0% now, recording the reason."""
    data, revision = _load(store, ROLLOUT, name)
    state = CanaryState.from_dict(data)
    if state.done:
        raise ConfigError(f"Rollout {name!r} already finished ({state.status}); nothing to abort.")
    after = abort(state, reason, now=now or utcnow())
    _transition(store, name, revision, state, after, "abort")
    return after


def resume_rollout(store: Store, name: str, *, now: datetime | None = None) -> CanaryState:
    """Continue a paused rollout."""
    data, revision = _load(store, ROLLOUT, name)
    state = CanaryState.from_dict(data)
    after = resume(state, now=now or utcnow())
    _transition(store, name, revision, state, after, "resume")
    return after
