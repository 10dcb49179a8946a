"""Evaluate a registered version on the workspace's test split, and move aliases by the gates.

``promote`` moves the ``champion`` alias only when every gate of ``loopml.yaml`` passes, or
with ``force`` and a recorded reason; the previous champion is remembered so ``rollback``
can restore it. Every move is written to the state store's journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopml.core import ConfigError, GateFailed, NotFoundError, Workspace, utcnow

__all__ = [
    "VersionEvaluation",
    "champion_version",
    "evaluate_version",
    "move_champion",
    "promote",
    "rollback",
]

ALIASES = "model_aliases"


@dataclass
class VersionEvaluation:
    """A version's evaluation against its baseline and the champion, and where it was written."""

    name: str
    version: int
    champion: int | None
    evaluation: Any
    report_dir: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "champion": self.champion,
            "passed": self.evaluation.passed,
            "report": self.report_dir,
            "gates": [g.to_dict() for g in self.evaluation.gates],
        }


def champion_version(workspace: Workspace, name: str | None = None) -> int | None:
    """The version the ``champion`` alias points at, or ``None``."""
    from loopml import registry

    try:
        return int(
            registry.get_model_version(
                name or workspace.config.project,
                alias="champion",
                tracking_uri=workspace.tracking_uri,
            ).version
        )
    except NotFoundError:
        return None


def evaluate_version(
    workspace: Workspace, version: int | None = None, *, name: str | None = None
) -> VersionEvaluation:
    """Evaluate ``version`` (default: the newest) on the test split of the workspace's data.

    The baseline stored with the model and the current champion are compared with it, the
    gates of ``evaluate:`` are checked, and the HTML/JSON report and the model card are
    written to ``.loopml/reports/<name>-v<version>/``.
    """
    from loopml import evaluation, registry
    from loopml.training._workspace import workspace_frame
    from loopml.trainingdata import split_from_config

    config = workspace.config
    if config.labels is None or config.task is None:
        raise ConfigError(
            f"{workspace.config_path} needs `labels:` and `task:` to evaluate a model"
        )
    name = name or config.project
    info = registry.get_model_version(name, version=version, tracking_uri=workspace.tracking_uri)
    frame, _, timestamp = workspace_frame(workspace)
    target = config.labels.target
    frame = frame[frame[target].notna()].reset_index(drop=True)
    split = split_from_config(frame, config.split, timestamp=timestamp, target=target)
    model = registry.load_model(name, version=info.version, tracking_uri=workspace.tracking_uri)
    champion = champion_version(workspace, name)
    champion_model = None
    if champion is not None and champion != info.version:
        champion_model = registry.load_model(
            name, version=champion, tracking_uri=workspace.tracking_uri
        )
    test = frame.iloc[split.test][[*model.features, target]]
    evaluated = evaluation.evaluate(
        model,
        test,
        target=target,
        task=config.task,
        baselines={"baseline": model.predict_baseline},
        champion=champion_model,
        config=config.evaluate,
        seed=config.train.seed,
    )
    folder = workspace.reports_dir / f"{name}-v{info.version}"
    paths = evaluation.write_report(evaluated, folder, name=name, version=str(info.version))
    _tag_version(workspace, name, int(info.version), paths, evaluated.passed)
    return VersionEvaluation(name, int(info.version), champion, evaluated, str(folder))


def _tag_version(
    workspace: Workspace, name: str, version: int, paths: dict[str, Any], passed: bool
) -> None:
    """Record the model card, the report and the gate verdict on the registry version."""
    from loopml.training import open_client

    client = open_client(workspace.tracking_uri)
    tags = {
        "loopml.model_card": str(paths["card_md"]),
        "loopml.evaluation_report": str(paths["html"]),
        "loopml.gates_passed": str(passed).lower(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, value)


def promote(
    workspace: Workspace,
    version: int,
    *,
    name: str | None = None,
    force: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    """Point ``champion`` at ``version`` if every gate passes (or ``force`` with a reason)."""
    if force and not reason:
        raise ConfigError("--force needs --reason: a forced promotion is recorded with its reason")
    name = name or workspace.config.project
    result = evaluate_version(workspace, version, name=name)
    if not result.evaluation.passed and not force:
        failed = [g.reason for g in result.evaluation.failed_gates]
        raise GateFailed(
            f"{name} v{version} failed {len(failed)} gate(s): " + "; ".join(failed),
            failures=failed,
            hint="fix the model, or pass --force --reason '...'",
        )
    record = move_champion(
        workspace,
        name,
        version,
        previous=result.champion,
        forced=force,
        reason=reason or "every gate passed",
    )
    return {**record, "gates": result.to_dict()["gates"]}


def move_champion(
    workspace: Workspace,
    name: str,
    version: int,
    *,
    previous: int | None,
    forced: bool,
    reason: str,
) -> dict[str, Any]:
    """Set the alias and record the move (from, to, why) so it can be rolled back."""
    from loopml import registry

    registry.set_alias(name, "champion", version, tracking_uri=workspace.tracking_uri)
    store = workspace.state_store()
    history = (store.get(ALIASES, name) or {}).get("history", [])
    record = {
        "time": utcnow().isoformat(),
        "from": previous,
        "to": version,
        "forced": forced,
        "reason": reason,
    }
    store.put(ALIASES, name, {"history": [*history, record]})
    store.append_event("promotion", {"model": name, **record})
    return {**record, "model": name}


def rollback(
    workspace: Workspace, *, name: str | None = None, reason: str = "rollback"
) -> dict[str, Any]:
    """Point ``champion`` back at the version it held before the last promotion."""
    from loopml import registry

    name = name or workspace.config.project
    store = workspace.state_store()
    history = (store.get(ALIASES, name) or {}).get("history", [])
    if not history or history[-1]["from"] is None:
        raise NotFoundError(f"{name} has no earlier champion to roll back to")
    last = history[-1]
    registry.set_alias(name, "champion", last["from"], tracking_uri=workspace.tracking_uri)
    record = {
        "time": utcnow().isoformat(),
        "from": last["to"],
        "to": last["from"],
        "forced": True,
        "reason": reason,
    }
    store.put(ALIASES, name, {"history": [*history[:-1]]})
    store.append_event("promotion", {"model": name, "rollback": True, **record})
    return {**record, "model": name}
