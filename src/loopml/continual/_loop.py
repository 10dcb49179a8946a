"""``loopml loop``: one pass of the continual loop over a workspace, resumable.

A pass runs named steps in order, and writes each step's outcome to the state store as it
finishes::

    ingest    snapshot every source (content-addressed: unchanged data, same version)
    monitor   drift and quality over the prediction log since the last pass
    decide    the retrain policy (schedule, drift, quality drop, minimum new labels)
    train     train as loopml.yaml says; register the result
    evaluate  the new version against the baselines and the champion, with the gates
    rollout   no champion yet: it becomes champion; a rollout configured: alias
              ``challenger`` and a canary rollout in the state store; else promote

A pass that crashes leaves its finished steps recorded; the next ``run_pass`` resumes at
the first unfinished step (ingest and training are idempotent by content and by run), so a
killed retrain never changes the champion and never leaves the state half-written. Every
decision is also appended to the journal (kind ``loop``) that ``loopml status`` shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loopml.continual._policy import decide_retrain
from loopml.core import (
    NotFoundError,
    StateStore,
    Workspace,
    ensure_utc,
    get_logger,
    new_id,
    utcnow,
)

__all__ = ["PassResult", "loop_status", "run_pass"]

_log = get_logger("continual.loop")
PASS, STATE, JOURNAL = "loop_pass", "loop_state", "loop"
STEP_NAMES = ("ingest", "monitor", "decide", "train", "evaluate", "rollout")


@dataclass
class PassResult:
    """What one pass did: the outcome of each step, and whether it finished."""

    pass_id: str
    started_at: str
    status: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    resumed: bool = False
    failed: dict[str, str] | None = None
    manual: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "pass_id": self.pass_id,
            "started_at": self.started_at,
            "status": self.status,
            "steps": self.steps,
            "failed": self.failed,
            "manual": self.manual,
            "resumed": self.resumed,
        }


def run_pass(
    workspace: Workspace, *, now: datetime | None = None, manual: bool = False
) -> PassResult:
    """Run (or resume) one pass of the loop; every step's outcome lands in the state store."""
    store = workspace.state_store()
    now = ensure_utc(now, where="now") if now is not None else utcnow()
    current = store.get(STATE, "current")
    resumed = current is not None and current.get("status") == "running"
    if resumed:
        assert current is not None
        record = store.get(PASS, current["pass_id"]) or {}
        manual = manual or bool(record.get("manual"))
        result = PassResult(
            current["pass_id"],
            record.get("started_at", now.isoformat()),
            "running",
            dict(record.get("steps", {})),
            resumed=True,
        )
        _journal(store, result, "resumed", {"after": list(result.steps)})
    else:
        result = PassResult(new_id("pass"), now.isoformat(), "running")
        store.put(STATE, "current", {"pass_id": result.pass_id, "status": "running"})
    result.manual = manual
    context = _Context(workspace, store, now, manual, result)
    for name in STEP_NAMES:
        if name in result.steps:
            continue
        try:
            outcome = _STEPS[name](context)
        except Exception as error:
            result.status = "failed"
            result.failed = {"step": name, "error": f"{type(error).__name__}: {error}"}
            _save(store, result)
            _journal(store, result, f"{name} failed", {"error": str(error)})
            store.put(STATE, "current", {"pass_id": result.pass_id, "status": "running"})
            raise
        result.steps[name] = outcome
        _save(store, result)
        _journal(store, result, name, outcome)
    result.status = "finished"
    _save(store, result)
    store.put(STATE, "current", {"pass_id": result.pass_id, "status": "finished"})
    return result


def loop_status(workspace: Workspace, *, limit: int = 20) -> dict[str, Any]:
    """The last decisions, the loop's state and the model aliases, for ``loopml status``."""
    from loopml import registry

    store = workspace.state_store()
    name = workspace.config.project
    aliases: dict[str, Any] = {}
    for alias in ("champion", "challenger"):
        try:
            aliases[alias] = registry.get_model_version(
                name, alias=alias, tracking_uri=workspace.tracking_uri
            ).version
        except NotFoundError:  # no such model or alias yet
            aliases[alias] = None
    events = store.events(JOURNAL)[-limit:]
    return {
        "current": store.get(STATE, "current"),
        "memory": store.get(STATE, "memory"),
        "aliases": aliases,
        "journal": [{"time": e.time.isoformat(), **e.payload} for e in events],
    }


@dataclass
class _Context:
    workspace: Workspace
    store: StateStore
    now: datetime
    manual: bool
    result: PassResult

    @property
    def memory(self) -> dict[str, Any]:
        return self.store.get(STATE, "memory") or {}

    def remember(self, **values: Any) -> None:
        self.store.put(STATE, "memory", {**self.memory, **values})


def _save(store: StateStore, result: PassResult) -> None:
    store.put(PASS, result.pass_id, result.to_dict())


def _journal(store: StateStore, result: PassResult, step: str, outcome: dict[str, Any]) -> None:
    store.append_event(JOURNAL, {"pass_id": result.pass_id, "step": step, **outcome})


def _ingest(context: _Context) -> dict[str, Any]:
    from loopml.data import ingest

    versions = {
        table: ingest(context.workspace, table).version
        for table in context.workspace.config.sources
    }
    return {"versions": versions}


def _monitor(context: _Context) -> dict[str, Any]:
    from loopml.data import prediction_log

    log = prediction_log(context.workspace)
    if not log.segments():
        return {"drift_alert": False, "note": "no predictions logged yet"}
    from loopml.monitoring import run_monitor

    since = context.memory.get("monitored_until")
    start = datetime.fromisoformat(since) if since else None
    run = run_monitor(context.workspace, start=start, now=context.now, store=context.store)
    drifted = [w.window.label for w in run.windows if w.drift is not None and w.drift.drifted]
    context.remember(monitored_until=context.now.isoformat())
    return {
        "drift_alert": bool(drifted),
        "drifted_windows": drifted[-5:],
        "windows": len(run.windows),
        "alerts": [e.to_dict() for e in run.alert_events][-5:],
    }


def _decide(context: _Context) -> dict[str, Any]:
    from loopml.data import get_snapshot

    config = context.workspace.config
    labels = config.labels
    rows = get_snapshot(context.workspace, labels.source).rows if labels is not None else 0
    memory = context.memory
    trained = memory.get("last_trained")
    has_champion = _champion(context) is not None
    decision = decide_retrain(
        config.continual.retrain,
        now=context.now,
        last_trained=datetime.fromisoformat(trained) if trained else None,
        new_labels=rows - int(memory.get("label_rows_at_training", 0)),
        drift_alert=bool(context.result.steps.get("monitor", {}).get("drift_alert")),
        manual=context.manual or not has_champion,
    )
    out = decision.to_dict()
    out["label_rows"] = rows
    if not has_champion:
        out["reasons"] = ["no champion yet", *[r for r in out["reasons"] if r != "manual request"]]
    return out


def _train(context: _Context) -> dict[str, Any]:
    if not context.result.steps["decide"]["retrain"]:
        return {"skipped": "the policy did not ask for a retrain"}
    from loopml import registry
    from loopml.training import train_workspace

    workspace = context.workspace
    result = train_workspace(workspace, seed=workspace.config.train.seed)
    context.remember(
        last_trained=context.now.isoformat(),
        label_rows_at_training=context.result.steps["decide"]["label_rows"],
    )
    if result.best is None:
        return {
            "run_id": result.run_id,
            "registered": None,
            "why": f"no candidate beat the baseline {result.best_baseline.name}",
        }
    version = registry.register_model(
        result, workspace.config.project, tracking_uri=workspace.tracking_uri
    )
    return {"run_id": result.run_id, "registered": version.version, "best": result.best_name}


def _evaluate(context: _Context) -> dict[str, Any]:
    version = context.result.steps["train"].get("registered")
    if version is None:
        return {"skipped": "nothing new to evaluate"}
    from loopml.continual._promote import evaluate_version

    return evaluate_version(context.workspace, version).to_dict()


def _rollout(context: _Context) -> dict[str, Any]:
    evaluated = context.result.steps["evaluate"]
    version = evaluated.get("version")
    if version is None:
        return {"skipped": "no new version"}
    from loopml import registry

    workspace = context.workspace
    name = workspace.config.project
    if not evaluated["passed"]:
        failed = [g["reason"] for g in evaluated["gates"] if not g["passed"]]
        return {
            "promoted": False,
            "champion": evaluated["champion"],
            "why": "gates failed: " + "; ".join(failed),
        }
    champion = evaluated["champion"]
    rollout = workspace.config.continual.rollout
    if champion is None or (rollout.canary is None and rollout.shadow is None):
        from loopml.continual._promote import move_champion

        move_champion(
            workspace,
            name,
            version,
            previous=champion,
            forced=False,
            reason="first model, every gate passed"
            if champion is None
            else "every gate passed; no rollout configured",
        )
        return {
            "promoted": True,
            "champion": version,
            "why": "first model" if champion is None else "gates passed; no rollout configured",
        }
    from loopml.experiments import CanarySpec, start_rollout

    registry.set_alias(name, "challenger", version, tracking_uri=workspace.tracking_uri)
    steps = tuple(rollout.canary.steps) if rollout.canary else (100.0,)
    state = start_rollout(
        context.store, name, str(champion), str(version), CanarySpec(steps=steps), now=context.now
    )
    return {
        "promoted": False,
        "champion": champion,
        "challenger": version,
        "rollout": state.status,
        "weight": state.weight,
        "why": "gates passed; canary started (loopml rollout status)",
    }


def _champion(context: _Context) -> int | None:
    from loopml import registry

    try:
        return int(
            registry.get_model_version(
                context.workspace.config.project,
                alias="champion",
                tracking_uri=context.workspace.tracking_uri,
            ).version
        )
    except NotFoundError:  # no model or no champion alias yet
        return None


_STEPS: dict[str, Callable[[_Context], dict[str, Any]]] = {
    "ingest": _ingest,
    "monitor": _monitor,
    "decide": _decide,
    "train": _train,
    "evaluate": _evaluate,
    "rollout": _rollout,
}
