"""Reproducibility (ML Test Score "Infra 1"): retrain from a run's record, compare predictions.

Every training run stores ``record.json`` (data digest and location, split, config, seeds,
library versions, git commit) and the best model's test predictions. ``reproduce`` reads
them back, retrains with the same settings and reports whether the new predictions match.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError, DataError, LoopmlWarning, NotFoundError, TrainConfig
from loopml.training._tracking import environment_record, open_client

__all__ = ["ReproductionReport", "load_record", "reproduce"]


@dataclass
class ReproductionReport:
    """Whether a retrain from the record gave the same predictions."""

    original_run: str
    new_run: str
    matches: bool
    max_abs_difference: float
    rows_compared: int
    tolerance: float
    environment_changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verdict = "REPRODUCED" if self.matches else "NOT REPRODUCED"
        lines = [
            f"{verdict}: run {self.new_run} retrained run {self.original_run}; "
            f"{self.rows_compared} test predictions, max |difference| {self.max_abs_difference:.3g}"
            f" (tolerance {self.tolerance:g})"
        ]
        lines += [f"  {name}: {a} -> {b}" for name, (a, b) in self.environment_changes.items()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _download(client: Any, run_id: str, path: str, folder: Path) -> Path:
    from mlflow.exceptions import MlflowException

    try:
        return Path(client.download_artifacts(run_id, path, str(folder)))
    except (MlflowException, OSError):
        raise NotFoundError(
            f"run {run_id} has no artifact {path!r}",
            hint="only runs made by loopml train can be reproduced",
        ) from None


def load_record(run_id: str, *, tracking_uri: str) -> dict[str, Any]:
    """The reproducibility record of a run."""
    client = open_client(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = _download(client, run_id, "record.json", Path(tmp))
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def reproduce(
    run_id: str,
    *,
    tracking_uri: str,
    artifact_root: str | Path | None = None,
    frame: pd.DataFrame | None = None,
    tolerance: float = 1e-9,
) -> ReproductionReport:
    """Retrain run ``run_id`` from its record and compare its test predictions.

    The data is ``frame`` when given (its digest must match the record), else the copy
    stored with the run. The new run is tracked too, tagged ``loopml.reproduces``.
    """
    from loopml.training._train import data_digest, train

    client = open_client(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        record = json.loads(_download(client, run_id, "record.json", folder).read_text())
        if "predictions" not in record:
            raise DataError(
                f"run {run_id} kept no model predictions (no candidate beat the baseline)"
            )
        expected = np.load(_download(client, run_id, "predictions.npy", folder), allow_pickle=False)
        if frame is None:
            if "artifact" not in record["data"]:
                raise ConfigError(
                    f"run {run_id} did not keep its training data",
                    hint="pass the same frame (frame=...) or retrain with keep_data=True",
                )
            frame = pd.read_parquet(_download(client, run_id, record["data"]["artifact"], folder))
        split = _split_of(record, client, run_id, folder)
    if data_digest(frame) != record["data"]["digest"]:
        raise DataError(
            f"the data given to reproduce run {run_id} differs from the data it was trained on "
            "(SHA-256 of the content does not match)",
            hint="use the same snapshot version the run records",
        )
    config = TrainConfig.model_validate(record["train_config"])
    config = config.model_copy(update={"candidates": [record["predictions"]["model"]]})
    experiment = client.get_experiment(client.get_run(run_id).info.experiment_id).name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoopmlWarning)
        result = train(
            frame,
            target=record["target"],
            task=record["task"],
            timestamp=record["timestamp"],
            entity=record["entity"],
            features=record["features"],
            config=config,
            split=split,
            tracking_uri=tracking_uri,
            artifact_root=artifact_root,
            experiment=experiment,
            seed=record["seeds"]["train"],
            keep_data=False,
            lineage={"reproduces": run_id},
        )
    return _compare(run_id, result, frame, expected, record, tolerance)


def _split_of(record: dict[str, Any], client: Any, run_id: str, folder: Path) -> Any:
    from loopml.core import SplitConfig
    from loopml.trainingdata import Split

    settings = record["split"].get("settings")
    if settings is not None:
        return SplitConfig.model_validate(settings)
    stored = np.load(_download(client, run_id, "split.npz", folder), allow_pickle=False)
    return Split(stored["train"], stored["validation"], stored["test"], by=record["split"]["by"])


def _compare(
    run_id: str,
    result: Any,
    frame: pd.DataFrame,
    expected: np.ndarray,
    record: dict[str, Any],
    tolerance: float,
) -> ReproductionReport:
    notes = []
    if result.best is None:
        return ReproductionReport(
            run_id,
            result.run_id,
            False,
            float("inf"),
            0,
            tolerance,
            notes=["the retrained candidate did not beat its baseline"],
        )
    test = frame.iloc[result.split.test]
    actual = result.best.predict_scores(test)
    if actual.shape != expected.shape:
        notes.append(f"prediction shapes differ: {expected.shape} then, {actual.shape} now")
        difference = float("inf")
    else:
        difference = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    then, now = record.get("environment", {}), environment_record()
    changes = {
        k: (then.get(k), now.get(k))
        for k in sorted(set(then) | set(now))
        if then.get(k) != now.get(k)
    }
    return ReproductionReport(
        run_id,
        result.run_id,
        difference <= tolerance,
        difference,
        int(len(test)),
        tolerance,
        changes,
        notes,
    )
