"""Training from a workspace: ``loopml.yaml`` says what to train on and how.

The rows come from the feature views joined point-in-time to the labels
(``loopml.features.build_workspace_training_set``) when views are configured, else from the
newest snapshot of the labels' source table. Snapshot and view versions are recorded on the run.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from loopml.core import ConfigError, Workspace
from loopml.training._train import TrainingResult, train

__all__ = ["get_run", "list_runs", "train_workspace", "workspace_frame"]


def workspace_frame(workspace: Workspace) -> tuple[pd.DataFrame, dict[str, Any], str | None]:
    """The training rows, their lineage (versions) and the timestamp column."""
    config = workspace.config
    if config.labels is None:
        raise ConfigError(
            f"{workspace.config_path} has no `labels:` section, so there is nothing to learn",
            hint="add labels: {source: ..., target: ...}",
        )
    source = config.sources.get(config.labels.source)
    timestamp = config.labels.timestamp or (source.timestamp if source else None)
    if config.features:
        from loopml.features import build_workspace_training_set

        built, _ = build_workspace_training_set(workspace, save=False)
        lineage = _flatten(built.record, "training_set")
        return built.frame, lineage, timestamp
    from loopml.data import get_snapshot, load_snapshot

    snapshot = get_snapshot(workspace, config.labels.source)
    frame = load_snapshot(workspace, config.labels.source, snapshot.version)
    return frame, {f"snapshot.{snapshot.table}": snapshot.version}, timestamp


def _flatten(record: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}.{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        elif isinstance(value, str | int | float | bool) or value is None:
            out[name] = value
    return out


def train_workspace(
    workspace: Workspace,
    *,
    compute: Any = None,
    seed: int | None = None,
) -> TrainingResult:
    """Train as ``loopml.yaml`` says (register the result with ``loopml.registry``).

    Entity keys and the timestamp are never features; ``train:`` picks candidates, heuristics
    and tuning, ``split:`` the split, ``backends:`` the tracking URI and compute backend.
    """
    config = workspace.config
    if config.task is None:
        raise ConfigError(
            f"{workspace.config_path} has no `task:`",
            hint="add task: binary_classification | multiclass_classification | regression",
        )
    frame, lineage, timestamp = workspace_frame(workspace)
    assert config.labels is not None
    keys = [k for entity in config.entities.values() for k in entity.keys]
    entity = config.entities[config.labels.entity].keys[0] if config.labels.entity else None
    created = [s.created_timestamp for s in config.sources.values() if s.created_timestamp]
    skip = {config.labels.target, *(c for c in (timestamp,) if c), *keys, *created}
    features = [
        str(c)
        for c in frame.columns
        if c not in skip and not pd.api.types.is_datetime64_any_dtype(frame[c].dtype)
    ]
    backend = compute or (
        "dask" if "dask" in (config.train.backend, config.backends.compute) else "local"
    )
    if backend == "dask" and config.backends.dask_scheduler:
        from loopml.training._distributed import local_client

        backend = local_client(config.backends.dask_scheduler)
    # The training set is built through the training-data stage, so its leakage checks run
    # every time: a severe finding stops training unless loopml.yaml acknowledges it.
    from loopml.trainingdata import build_training_set

    frame = frame[frame[config.labels.target].notna()].reset_index(drop=True)
    built = build_training_set(
        frame[[*features, config.labels.target, *([timestamp] if timestamp else [])]],
        config,
        timestamp=timestamp,
    )
    return train(
        frame,
        target=config.labels.target,
        task=config.task,
        timestamp=timestamp,
        entity=entity,
        features=features,
        config=config.train,
        split=built.split,
        tracking_uri=workspace.tracking_uri,
        artifact_root=workspace.artifacts_dir,
        experiment=config.project,
        seed=seed,
        compute=backend,
        lineage=lineage,
    )


def list_runs(
    *, tracking_uri: str, experiment: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Training runs (not their nested baseline/candidate/trial runs), newest first."""
    from loopml.training._tracking import open_client

    client = open_client(tracking_uri)
    experiments = client.search_experiments()
    if experiment is not None:
        experiments = [e for e in experiments if e.name == experiment]
    ids = [e.experiment_id for e in experiments]
    if not ids:
        return []
    runs = client.search_runs(
        ids,
        "tags.`loopml.kind` = 'training'",
        max_results=limit,
        order_by=["attributes.start_time DESC"],
    )
    return [_run_summary(run) for run in runs]


def _run_summary(run: Any) -> dict[str, Any]:
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "start_time": pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").isoformat(),
        "task": tags.get("loopml.task"),
        "best": tags.get("loopml.best"),
        "beats_baseline": tags.get("loopml.beats_baseline") == "true",
        "metrics": dict(run.data.metrics),
    }


def get_run(run_id: str, *, tracking_uri: str) -> dict[str, Any]:
    """One training run: tags, params, metrics and its nested runs' metrics."""
    from loopml.training._tracking import get_run_info, open_client

    client = open_client(tracking_uri)
    run = get_run_info(client, run_id)
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'", max_results=1000
    )
    return {
        **_run_summary(run),
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "params": dict(run.data.params),
        "children": [
            {
                "name": c.info.run_name,
                "kind": c.data.tags.get("loopml.kind"),
                "metrics": dict(c.data.metrics),
            }
            for c in children
        ],
    }
