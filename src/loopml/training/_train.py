"""The training entry point: baselines first, then candidates, every run tracked.

``train`` takes a DataFrame; ``train_workspace`` reads ``loopml.yaml`` and the workspace's
data and calls it. The book's rule holds in code: a candidate that does not beat the best
baseline on the validation rows is reported as such and is never the run's best model.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import (
    ConfigError,
    DataError,
    LoopmlWarning,
    SplitConfig,
    TrainConfig,
    get_logger,
    sha256_bytes,
    sha256_file,
)
from loopml.training._artifacts import save_model_dir
from loopml.training._baselines import (
    Baseline,
    HeuristicBaseline,
    LastValueBaseline,
    PriorBaseline,
)
from loopml.training._candidates import TrainedModel, check_candidates, fit_candidate
from loopml.training._encoding import FeatureEncoder
from loopml.training._metrics import check_metric, default_metric, evaluate, higher_is_better
from loopml.training._profile import score_profile
from loopml.training._tracking import Tracker, environment_record, git_record
from loopml.training._tuning import TuningResult, cv_folds, tune_candidate

__all__ = ["ModelScore", "TrainingResult", "data_digest", "train"]

_log = get_logger("training")
TASKS = ("binary_classification", "multiclass_classification", "regression")


@dataclass
class ModelScore:
    """How one baseline or candidate scored."""

    name: str
    kind: str
    validation: dict[str, float]
    test: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    beats_baseline: bool | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time (all threads) while it was fitted and scored
    predictions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass
class TrainingResult:
    """What a training run produced.

    ``best`` is the best candidate that beat the best baseline on validation, or ``None``
    when none did (``best_name`` then names the baseline that would serve).
    """

    run_id: str
    tracking_uri: str
    task: str
    target: str
    metric: str
    features: list[str]
    scores: list[ModelScore]
    best: TrainedModel | None
    best_baseline: Baseline
    baselines: dict[str, Baseline]
    split: Any
    model_uri: str | None = None
    tuning: dict[str, TuningResult] = field(default_factory=dict)

    @property
    def best_name(self) -> str:
        return self.best.name if self.best is not None else self.best_baseline.name

    def leaderboard(self) -> pd.DataFrame:
        """One row per model: kind, validation and test metric, beats-baseline flag."""
        rows = [
            {
                "model": s.name,
                "kind": s.kind,
                f"validation_{self.metric}": s.validation.get(self.metric),
                f"test_{self.metric}": s.test.get(self.metric),
                "beats_baseline": s.beats_baseline,
                "seconds": round(s.seconds, 3),
            }
            for s in self.scores
        ]
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"run {self.run_id}: {self.task}, ranked by validation {self.metric}"]
        for s in self.scores:
            verdict = {
                True: "beats the best baseline",
                False: "does NOT beat the best baseline",
                None: "baseline",
            }[s.beats_baseline]
            valid = s.validation.get(self.metric, float("nan"))
            test = s.test.get(self.metric, float("nan"))
            lines.append(
                f"  {s.name:<22} {s.kind:<9} validation {valid:.4f}  test {test:.4f}  {verdict}"
            )
        lines.append(f"best: {self.best_name}")
        return "\n".join(lines)


# -- input checks ------------------------------------------------------------------------


def _check_inputs(frame: pd.DataFrame, target: str, task: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"train needs a pandas DataFrame. Got {type(frame).__name__} instead.")
    if task not in TASKS:
        raise ConfigError(
            f"The 'task' parameter of train must be one of {', '.join(TASKS)}. "
            f"Got {task!r} instead."
        )
    if target not in frame.columns:
        raise DataError(
            f"the target column '{target}' is not in the data",
            hint=f"columns are: {', '.join(map(str, frame.columns))}",
        )
    labels = frame[target]
    if labels.isna().all():
        raise DataError(
            f"the target column '{target}' is null in all {len(frame)} rows",
            hint="check the label join (labels.source / labels.target) or the feedback window",
        )
    if task != "regression":
        classes = labels.dropna().unique().tolist()
        if len(classes) < 2:
            raise DataError(
                f"the target column '{target}' has one class only ({classes[0]!r} in "
                f"{int(labels.notna().sum())} rows); a classifier needs at least two",
                hint="widen the time range, check the labels, or choose task: regression",
            )


def _feature_columns(
    frame: pd.DataFrame, target: str, exclude: list[str], features: list[str] | None
) -> list[str]:
    if features is not None:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise DataError(
                f"feature column(s) {', '.join(missing)} are not in the data",
                hint=f"columns are: {', '.join(map(str, frame.columns))}",
            )
        return list(features)
    skip = {target, *exclude}
    return [
        str(c)
        for c in frame.columns
        if c not in skip and not pd.api.types.is_datetime64_any_dtype(frame[c].dtype)
    ]


def _encode_target(
    labels: pd.Series, task: str, train_rows: np.ndarray
) -> tuple[list[Any], np.ndarray]:
    if task == "regression":
        return [], labels.to_numpy(dtype=np.float64)
    train_labels = labels.iloc[train_rows]
    classes = sorted(train_labels.unique().tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise DataError(
            f"the training rows of target '{labels.name}' hold one class only ({classes!r})",
            hint="the split put every other class into validation/test; use a longer history",
        )
    if task == "binary_classification" and len(classes) != 2:
        raise DataError(
            f"binary_classification needs two classes in '{labels.name}'; "
            f"found {len(classes)}: {classes[:10]!r}",
            hint="choose task: multiclass_classification",
        )
    codes = pd.Categorical(labels, categories=classes).codes
    unseen = labels[(codes < 0)].unique().tolist()
    if unseen:
        raise DataError(
            f"target '{labels.name}' has class(es) {unseen[:10]!r} after the training period "
            "that the training rows never show",
            hint="a classifier cannot predict a class it never saw; check the labels",
        )
    return classes, codes.astype(np.int64)


def data_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's content, column names and dtypes (row order matters).

    >>> data_digest(pd.DataFrame({"a": [1, 2]})) == data_digest(pd.DataFrame({"a": [1, 2]}))
    True
    """
    import hashlib

    header = json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode()
    digest = hashlib.sha256(header)
    for _, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):  # as UTC nanoseconds, never Timestamp objects
            column = column.dt.tz_convert("UTC").dt.tz_localize(None)
            dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":  # hash the buffer itself
            digest.update(np.ascontiguousarray(column.to_numpy()).view(np.uint8).data)
        else:
            digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
    return digest.hexdigest()


# -- the run -----------------------------------------------------------------------------


def _make_split(
    frame: pd.DataFrame, split: Any, timestamp: str | None, target: str, task: str, seed: int
) -> tuple[Any, dict[str, Any] | None]:
    """The split, and the settings that rebuild it (None when a ready Split was given)."""
    from loopml.trainingdata import Split, split_from_config

    if isinstance(split, Split):
        return split, None
    if split is None:
        by = "time" if timestamp else ("random" if task == "regression" else "stratified")
        split = SplitConfig(by=by, seed=seed)
    if not isinstance(split, SplitConfig):
        raise ConfigError(
            "The 'split' parameter of train must be a Split, a SplitConfig or None. "
            f"Got {type(split).__name__} instead."
        )
    if split.by == "time" and timestamp is None:
        split = split.model_copy(update={"by": "random" if task == "regression" else "stratified"})
    return split_from_config(frame, split, timestamp=timestamp, target=target), split.model_dump(
        mode="json"
    )


@dataclass
class _Data:
    frame: pd.DataFrame
    X: np.ndarray
    y: np.ndarray
    rows: dict[str, np.ndarray]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    matrices: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def matrix(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows and targets of one part, copied once and reused by every model."""
        if name not in self.matrices:
            rows = self.rows[name]
            span = _as_slice(rows)  # a time split's parts are runs of rows: views, no copies
            self.matrices[name] = (
                (self.X[rows], self.y[rows]) if span is None else (self.X[span], self.y[span])
            )
        return self.matrices[name]

    def frame_of(self, name: str) -> pd.DataFrame:
        """The frame rows of one part (for baselines and the profile), copied once."""
        if name not in self.frames:
            rows = self.rows[name]
            span = _as_slice(rows)  # a slice is a view (copy-on-write protects the frame)
            self.frames[name] = self.frame.iloc[rows if span is None else span]
        return self.frames[name]

    def part(self, name: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Frame rows, encoded rows and targets of one part."""
        return (self.frame_of(name), *self.matrix(name))


def _as_slice(rows: np.ndarray) -> slice | None:
    """``rows`` as a slice when they are consecutive positions in order, else None.

    >>> _as_slice(np.arange(3, 7)), _as_slice(np.array([0, 2]))
    (slice(3, 7, None), None)
    """
    if len(rows) == 0 or rows[-1] - rows[0] != len(rows) - 1:
        return None
    if len(rows) > 1 and not bool(np.all(np.diff(rows) == 1)):
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1)


def _baselines(
    task: str, config: TrainConfig, timestamp: str | None, entity: str | None
) -> list[Baseline]:
    found: list[Baseline] = [PriorBaseline(task)]
    for name, expression in config.heuristics.items():
        found.append(HeuristicBaseline(expression, task=task, name=name))
    if timestamp is not None:
        found.append(LastValueBaseline(task, timestamp=timestamp, entity=entity))
    return found


def _is_better(metric: str, a: float, b: float) -> bool:
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    return a > b if higher_is_better(metric) else a < b


def _resolve_compute(compute: Any) -> Any:
    if compute in (None, "local"):
        return None
    if compute == "dask":
        from loopml.training._distributed import local_client

        return local_client()
    if hasattr(compute, "submit") and hasattr(compute, "scheduler_info"):
        return compute
    raise ConfigError(
        "The 'compute' parameter of train must be 'local', 'dask' or a dask.distributed "
        f"Client. Got {compute!r} instead."
    )


def train(
    frame: pd.DataFrame,
    *,
    target: str,
    task: str,
    timestamp: str | None = None,
    entity: str | None = None,
    features: list[str] | None = None,
    config: TrainConfig | None = None,
    split: Any = None,
    tracking_uri: str | None = None,
    artifact_root: str | Path | None = None,
    experiment: str = "loopml",
    seed: int | None = None,
    compute: Any = "local",
    lineage: dict[str, Any] | None = None,
    keep_data: bool = True,
) -> TrainingResult:
    """Train baselines, then candidates (tuned when ``config.tune.trials > 0``); track it all.

    ``split`` is a ``loopml.trainingdata.Split``, a ``SplitConfig`` or ``None`` (a time split
    when ``timestamp`` is given, else stratified / random). ``tracking_uri`` defaults to the
    SQLite database of the workspace in the current folder. ``compute`` is ``"local"``,
    ``"dask"`` (a LocalCluster, or ``backends.dask_scheduler``) or a ``distributed.Client``.
    ``lineage`` (snapshot versions, feature view versions) is recorded on the run.
    ``keep_data`` stores the training frame with the run so ``reproduce`` can retrain.

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=600)})
    >>> frame["y"] = (frame.x + rng.normal(scale=0.5, size=600) > 0).astype(int)
    >>> root = tempfile.mkdtemp()
    >>> result = train(frame, target="y", task="binary_classification",
    ...     config=TrainConfig(candidates=["logistic_regression"]),
    ...     tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=f"{root}/artifacts")
    >>> result.best_name, result.scores[-1].beats_baseline
    ('logistic_regression', True)
    """
    config = config or TrainConfig()
    seed = config.seed if seed is None else int(seed)
    _check_inputs(frame, target, task)
    names = check_candidates(list(config.candidates), task)
    metric = check_metric(task, config.tune.metric or default_metric(task))
    tracking_uri = tracking_uri or _default_tracking_uri()
    tracker = Tracker(tracking_uri, experiment, artifact_root)  # fails before any work
    dropped = int(frame[target].isna().sum())
    if dropped:
        if split is not None and not isinstance(split, SplitConfig):
            raise DataError(
                f"{dropped} rows have a null target '{target}' and a ready-made split was given",
                hint="drop rows without labels before splitting",
            )
        frame = frame[frame[target].notna()].reset_index(drop=True)
    exclude = [c for c in (timestamp, entity) if c]
    columns = _feature_columns(frame, target, exclude, features)
    part, split_settings = _make_split(frame, split, timestamp, target, task, seed)
    classes, y = _encode_target(frame[target], task, part.train)
    encoder = FeatureEncoder.fit(frame, columns, rows=part.train)
    rows = {"train": part.train, "validation": part.validation, "test": part.test}
    data = _Data(frame, encoder.transform(frame), y, rows)
    run = _Run(tracker, task, metric, seed, classes, encoder, data, timestamp)
    parent = tracker.start(
        "train",
        tags={
            "loopml.kind": "training",
            "loopml.task": task,
            "loopml.target": target,
            "loopml.metric": metric,
            "loopml.seed": seed,
            **{f"loopml.git.{k}": v for k, v in git_record().items()},
            **{f"loopml.lineage.{k}": v for k, v in (lineage or {}).items()},
        },
    )
    run.parent = parent
    try:
        baselines = [run.fit_baseline(b) for b in _baselines(task, config, timestamp, entity)]
        best_baseline = _pick(metric, baselines)
        for score, _ in baselines:
            score.beats_baseline = None
        candidates = [
            run.fit_candidate(name, config, best_baseline[0], compute, timestamp, part)
            for name in names
        ]
        result = _finish(
            run,
            frame,
            target,
            timestamp,
            entity,
            columns,
            config,
            part,
            baselines,
            best_baseline,
            candidates,
            lineage,
            keep_data,
            dropped,
            split_settings,
        )
    except BaseException:
        tracker.finish(parent, failed=True)
        raise
    tracker.finish(parent)
    return result


def _default_tracking_uri() -> str:
    from loopml.core import Workspace

    return Workspace.open(".").tracking_uri


def _pick(metric: str, scored: list[tuple[ModelScore, Any]]) -> tuple[ModelScore, Any]:
    best = scored[0]
    for item in scored[1:]:
        if _is_better(metric, item[0].validation[metric], best[0].validation[metric]):
            best = item
    return best


@dataclass
class _Run:
    tracker: Tracker
    task: str
    metric: str
    seed: int
    classes: list[Any]
    encoder: FeatureEncoder
    data: _Data
    timestamp: str | None
    parent: str = ""
    tuning: dict[str, TuningResult] = field(default_factory=dict)

    def _score(self, predict: Any) -> tuple[dict[str, float], dict[str, float]]:
        validation, test = self._predict_and_score(predict)
        return validation[0], test[0]

    def _predict_and_score(
        self, predict: Any, known: dict[str, np.ndarray | None] | None = None
    ) -> tuple[tuple[dict[str, float], np.ndarray], tuple[dict[str, float], np.ndarray]]:
        """Scores and metrics on validation and test; ``known`` holds scores a fit already
        computed (they are used instead of predicting the rows again)."""
        out = []
        for name in ("validation", "test"):
            given = (known or {}).get(name)
            y = self.data.matrix(name)[1]
            predictions = np.asarray(predict(name) if given is None else given)
            out.append((evaluate(self.task, y, predictions) if len(y) else {}, predictions))
        return out[0], out[1]

    def _track(self, score: ModelScore, extra_tags: dict[str, Any]) -> None:
        run_id = self.tracker.start(
            score.name, parent=self.parent, tags={"loopml.kind": score.kind, **extra_tags}
        )
        metrics = {f"validation_{k}": v for k, v in score.validation.items()}
        metrics.update({f"test_{k}": v for k, v in score.test.items()})
        self.tracker.log(run_id, params=score.params, metrics=metrics)
        self.tracker.finish(run_id)
        score.run_id = run_id

    def fit_baseline(self, baseline: Baseline) -> tuple[ModelScore, Baseline]:
        started, cpu = time.perf_counter(), time.process_time()
        frame, _, y = self.data.part("train")
        baseline.fit(frame, y)
        validation, test = self._score(lambda part: baseline.predict(self.data.frame_of(part)))
        params = {
            k: v for k, v in baseline.to_json().items() if k in ("kind", "expression", "entity")
        }
        score = ModelScore(
            baseline.name,
            "baseline",
            validation,
            test,
            params,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
        )
        self._track(score, {})
        return score, baseline

    def fit_candidate(
        self,
        name: str,
        config: TrainConfig,
        best: ModelScore,
        compute: Any,
        timestamp: str | None,
        part: Any,
    ) -> tuple[ModelScore, TrainedModel]:
        started, cpu = time.perf_counter(), time.process_time()
        client = _resolve_compute(compute)
        params = self._tune(name, config, part, client) if config.tune.trials > 0 else {}
        X, y = self.data.matrix("train")
        X_valid, y_valid = self.data.matrix("validation")
        if client is not None and name == "lightgbm":
            from loopml.training._distributed import fit_lightgbm_dask

            model = fit_lightgbm_dask(
                client,
                self.task,
                params,
                self.encoder,
                X,
                y,
                classes=self.classes,
                seed=self.seed,
                validation=(X_valid, y_valid),
            )
        else:
            model = fit_candidate(
                name,
                self.task,
                params,
                self.encoder,
                (X, y, X_valid, y_valid),
                classes=self.classes,
                seed=self.seed,
                test=self.data.matrix("test"),
            )
        (validation, valid_p), (test, test_p) = self._predict_and_score(
            lambda part: model.predict_matrix(self.data.matrix(part)[0]),
            {"validation": model.validation_scores, "test": model.test_scores},
        )
        # kept in the score below; the model stays lean
        model.validation_scores = model.test_scores = None
        beats = _is_better(self.metric, validation[self.metric], best.validation[self.metric])
        score = ModelScore(
            name,
            "candidate",
            validation,
            test,
            model.params,
            beats_baseline=beats,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu,
            predictions={"validation": valid_p, "test": test_p},
        )
        if not beats:
            warnings.warn(
                f"candidate {name!r} does not beat the best baseline {best.name!r} on validation "
                f"{self.metric} ({validation[self.metric]:.4f} vs "
                f"{best.validation[self.metric]:.4f})",
                LoopmlWarning,
                stacklevel=4,
            )
        self._track(
            score,
            {
                "loopml.beats_baseline": beats,
                "loopml.best_baseline": best.name,
                "loopml.compute": "dask" if client is not None else "local",
                "loopml.distributed_fit": client is not None and name == "lightgbm",
            },
        )
        return score, model

    def _tune(self, name: str, config: TrainConfig, part: Any, client: Any) -> dict[str, Any]:
        from loopml.training._candidates import search_space

        probe: dict[str, Any] = {}

        class _Probe:
            def __getattr__(self, attr: str) -> Any:
                return lambda key, *a, **k: probe.setdefault(key, a[0] if a else None)

        if not search_space(name, _Probe()):
            return {}
        train_frame, X, y = self.data.part("train")
        folds = cv_folds(
            train_frame.reset_index(drop=True),
            timestamp=self.timestamp,
            n_folds=3,
            gap=part.boundaries.get("gap") if isinstance(part.boundaries, dict) else None,
            y=y,
            task=self.task,
            seed=self.seed,
        )
        tune = config.tune
        timeout = tune.timeout.total_seconds() if isinstance(tune.timeout, timedelta) else None

        def on_trial(record: dict[str, Any]) -> None:
            run_id = self.tracker.start(
                f"{name}-trial-{record['number']}",
                parent=self.parent,
                tags={
                    "loopml.kind": "trial",
                    "loopml.candidate": name,
                    "loopml.trial_state": record["state"],
                },
            )
            metrics = {f"cv_fold{i}_{self.metric}": v for i, v in enumerate(record["fold_scores"])}
            if record["value"] is not None:
                metrics[f"cv_{self.metric}"] = record["value"]
            self.tracker.log(run_id, params=record["params"], metrics=metrics)
            self.tracker.finish(run_id, failed=record["state"] == "FAIL")

        result = tune_candidate(
            name,
            task=self.task,
            metric=self.metric,
            encoder=self.encoder,
            X=X,
            y=y,
            folds=folds,
            classes=self.classes,
            trials=tune.trials,
            timeout=timeout,
            parallel=tune.parallel,
            seed=self.seed,
            on_trial=on_trial,
            client=client,
        )
        self.tuning[name] = result
        return result.best_params


def _finish(
    run: _Run,
    frame: pd.DataFrame,
    target: str,
    timestamp: str | None,
    entity: str | None,
    columns: list[str],
    config: TrainConfig,
    part: Any,
    baselines: list[tuple[ModelScore, Baseline]],
    best_baseline: tuple[ModelScore, Baseline],
    candidates: list[tuple[ModelScore, TrainedModel]],
    lineage: dict[str, Any] | None,
    keep_data: bool,
    dropped: int,
    split_settings: dict[str, Any] | None,
) -> TrainingResult:
    winners = [c for c in candidates if c[0].beats_baseline]
    best = _pick(run.metric, winners) if winners else None
    scores = [s for s, _ in baselines] + [s for s, _ in candidates]
    tracker, parent = run.tracker, run.parent
    summary = {
        s.name: {
            "validation": s.validation,
            "test": s.test,
            "kind": s.kind,
            "beats_baseline": s.beats_baseline,
        }
        for s in scores
    }
    tracker.log(
        parent,
        params={
            "candidates": [s.name for s, _ in candidates],
            "features": columns,
            "split": part.to_dict(),
            "train_config": config.model_dump(mode="json"),
        },
        metrics={
            f"best_validation_{run.metric}": (best or best_baseline)[0].validation[run.metric]
        },
        tags={
            "loopml.best": (best or best_baseline)[0].name,
            "loopml.beats_baseline": best is not None,
        },
    )
    model_uri = None
    with tempfile.TemporaryDirectory(prefix="loopml-train-") as tmp:
        folder = Path(tmp)
        if best is not None:
            predictions = best[0].predictions["test"]  # scored once, in fit_candidate
            np.save(folder / "predictions.npy", predictions, allow_pickle=False)
            profile, data_schema = _reference(run.data.frame_of("train"), columns)
            evaluation = {
                "metric": run.metric,
                "model": summary[best[0].name],
                "baseline": summary[best_baseline[0].name],
                "all": summary,
                "score_profile": score_profile(best[0].predictions["validation"]),
            }
            save_model_dir(
                best[1],
                best_baseline[1],
                folder / "model",
                profile=profile,
                data_schema=data_schema,
                evaluation=evaluation,
                extra={
                    "target": target,
                    "timestamp": timestamp,
                    "entity": entity,
                    "run_id": parent,
                    "lineage": lineage or {},
                },
            )
            tracker.log_artifacts(parent, folder / "model", "model")
            model_uri = f"runs:/{parent}/model"
        record = _record(
            frame,
            target,
            run.task,
            timestamp,
            entity,
            columns,
            config,
            part,
            run.seed,
            lineage,
            best,
            folder,
            keep_data,
            dropped,
            run.metric,
            split_settings,
        )
        (folder / "record.json").write_text(json.dumps(record, indent=1, default=str))
        for name in ("record.json", "predictions.npy", "data.parquet", "split.npz"):
            if (folder / name).exists():
                _store_artifact(tracker, parent, folder / name)
    return TrainingResult(
        run_id=parent,
        tracking_uri=tracker.tracking_uri,
        task=run.task,
        target=target,
        metric=run.metric,
        features=columns,
        scores=scores,
        best=best[1] if best else None,
        best_baseline=best_baseline[1],
        baselines={b.name: b for _, b in baselines},
        split=part,
        model_uri=model_uri,
        tuning=run.tuning,
    )


def _store_artifact(tracker: Tracker, run_id: str, path: Path) -> None:
    """Move a file into the run's artifacts (a rename when they are local), else upload it."""
    from loopml.training._tracking import local_folder

    local = local_folder(tracker.artifact_uri(run_id))
    if local is None:
        tracker.client.log_artifact(run_id, str(path))
        return
    local.mkdir(parents=True, exist_ok=True)
    try:
        path.replace(local / path.name)
    except OSError:  # another file system: copy
        tracker.client.log_artifact(run_id, str(path))


def _reference(train_frame: pd.DataFrame, columns: list[str]) -> tuple[dict[str, Any], Any]:
    """The reference profile and schema of the training rows, in loopml.data's formats."""
    from loopml.data import infer_schema, profile

    features = train_frame[columns]
    return profile(features).to_json(), infer_schema(features).to_json()


def _record(
    frame: pd.DataFrame,
    target: str,
    task: str,
    timestamp: str | None,
    entity: str | None,
    columns: list[str],
    config: TrainConfig,
    part: Any,
    seed: int,
    lineage: dict[str, Any] | None,
    best: tuple[ModelScore, TrainedModel] | None,
    folder: Path,
    keep_data: bool,
    dropped: int,
    metric: str,
    split_settings: dict[str, Any] | None,
) -> dict[str, Any]:
    positions = np.concatenate([part.train, [-1], part.validation, [-1], part.test]).astype(
        np.int64
    )
    if split_settings is None:  # a ready-made split: keep its positions
        np.savez(folder / "split.npz", train=part.train, validation=part.validation, test=part.test)
    data: dict[str, Any] = {
        "digest": data_digest(frame),
        "rows": len(frame),
        "dropped_null_target": dropped,
        "lineage": lineage or {},
    }
    if keep_data:
        # a small dictionary page: high-cardinality columns (most floats) give up on
        # dictionary encoding after 64 KiB instead of 1 MiB (half the CPU of the write),
        # low-cardinality ones still get it
        frame.to_parquet(folder / "data.parquet", index=False, dictionary_pagesize_limit=1 << 16)
        data["artifact"] = "data.parquet"
    record: dict[str, Any] = {
        "format": "loopml.reproducibility/1",
        "target": target,
        "task": task,
        "timestamp": timestamp,
        "entity": entity,
        "features": columns,
        "metric": metric,
        "train_config": config.model_dump(mode="json"),
        "split": {
            **part.to_dict(),
            "settings": split_settings,
            "positions_sha256": sha256_bytes(positions.tobytes()),
        },
        "seeds": {"train": seed, "split": seed, "tuning": seed, "lightgbm": seed},
        "data": data,
        "environment": environment_record(),
        "git": git_record(),
    }
    if best is not None:
        record["predictions"] = {
            "model": best[0].name,
            "artifact": "predictions.npy",
            "sha256": sha256_file(folder / "predictions.npy"),
        }
    return record
