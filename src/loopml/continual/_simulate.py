"""The replay simulator: a time-ordered dataset through the whole loop, step by step.

For each step (a day by default) the simulator

1. builds the step's features as of each row's time: the declared raw columns plus
   windowed aggregates (``loopml.features.aggregate_as_of``) over past values and past
   *labels*, where a label counts only from the moment it arrived (its label time);
2. sends the rows to the real prediction service (``loopml.serving.PredictionService``,
   in-process), which routes them between champion and challenger and logs them;
3. releases the labels whose time has come (the feedback), scores what was served
   (prequential, test-then-train), and checks for drift against the champion's training
   window (``loopml.monitoring.drift_report``);
4. applies the retrain policy (schedule, drift, quality drop, minimum new labels); a
   retrain is stateless (from scratch on the window) or stateful (continue the model);
5. compares a new challenger with the champion on the freshest labeled rows, then rolls
   it out (shadow, then canary steps analysed by ``loopml.experiments``) or rejects it.

Two references run on the same stream: the first model never retrained, and "predict the
last label seen" (for classification). The result holds the timeline, the events and the
prequential figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from loopml.continual._learners import Fitted, LightGBMLearner, LogisticLearner, make_learner
from loopml.continual._policy import RetrainDecision, decide_retrain
from loopml.core import (
    AggregationConfig,
    ConfigError,
    DataError,
    RetrainConfig,
    RolloutConfig,
    get_logger,
    parse_duration,
    progress,
)

__all__ = ["SimulationResult", "build_stream_features", "check_stream", "simulate"]

_log = get_logger("continual.simulate")
FloatArray = npt.NDArray[np.float64]
Learner = LightGBMLearner | LogisticLearner


@dataclass
class SimulationResult:
    """What the replay measured: a row per step, the events, and the totals."""

    timeline: pd.DataFrame
    events: list[dict[str, Any]]
    prequential: dict[str, float]
    metric: str
    wall_seconds: float
    retrains: int
    compute: float
    features: list[str]
    stage: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        timeline = self.timeline.copy()
        timeline["start"] = timeline["start"].astype(str)
        return {
            "metric": self.metric,
            "prequential": self.prequential,
            "wall_seconds": self.wall_seconds,
            "retrains": self.retrains,
            "compute": self.compute,
            "features": self.features,
            "stage": self.stage,
            "events": self.events,
            "timeline": timeline.replace({np.nan: None}).to_dict(orient="records"),
            **self.extra,
        }

    def summary(self) -> str:
        parts = [f"{name} {value:.4f}" for name, value in self.prequential.items()]
        return (
            f"prequential {self.metric}: "
            + ", ".join(parts)
            + f"; {self.retrains} retrains, {sum(e['kind'] == 'deployed' for e in self.events)} "
            f"deployments, {self.wall_seconds:.1f} s"
        )


def check_stream(frame: pd.DataFrame, *, timestamp: str, label_time: str | None = None) -> None:
    """Reject a stream that is not time-ordered, or whose labels arrive before their rows."""
    if timestamp not in frame.columns:
        raise DataError(
            f"the stream has no timestamp column {timestamp!r}",
            hint=f"columns: {list(frame.columns)}",
        )
    times = frame[timestamp]
    backwards = np.nonzero(times.to_numpy()[1:] < times.to_numpy()[:-1])[0]
    if len(backwards):
        rows = (backwards + 1)[:5].tolist()
        raise DataError(
            f"the stream is not time-ordered: {len(backwards)} rows go back in time, "
            f"first at rows {rows}",
            hint=f"sort the data by {timestamp!r} first",
        )
    if label_time is not None:
        early = np.nonzero((frame[label_time] < times).to_numpy())[0]
        if len(early):
            raise DataError(
                f"{len(early)} labels arrive before their predictions "
                f"({label_time!r} < {timestamp!r}), "
                f"first at rows {early[:5].tolist()}",
                hint="a label cannot be known before the prediction it labels; fix the label times",
            )


def build_stream_features(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    target: str,
    label_times: pd.Series,
    streaming: list[AggregationConfig],
    entity: str | None = None,
) -> pd.DataFrame:
    """Windowed aggregates of past values and past labels, as of each row's time.

    A row's own value and its own label are never included: the query time is one
    microsecond before the row, and a label counts from its arrival time.
    """
    from loopml.features import aggregate_as_of
    from loopml.features._definitions import Aggregation

    if not streaming:
        return pd.DataFrame(index=frame.index)
    key = entity or "__entity"
    base = pd.DataFrame({key: frame[entity] if entity else 0, "__t": frame[timestamp]})
    queries = pd.DataFrame({key: base[key], "__q": base["__t"] - pd.Timedelta(microseconds=1)})
    parts = []
    value_aggs = [
        Aggregation(a.column, a.functions, a.windows) for a in streaming if a.column != target
    ]
    label_aggs = [
        Aggregation(a.column, a.functions, a.windows) for a in streaming if a.column == target
    ]
    if value_aggs:
        events = base.assign(**{a.column: frame[a.column].to_numpy() for a in value_aggs})
        parts.append(
            aggregate_as_of(
                events,
                queries,
                keys=key,
                event_timestamp="__t",
                query_timestamp="__q",
                aggregations=value_aggs,
            )
        )
    if label_aggs:
        labeled = label_times.notna().to_numpy()
        events = pd.DataFrame(
            {
                key: base[key].to_numpy()[labeled],
                "__t": label_times.to_numpy()[labeled],
                target: frame[target].to_numpy(dtype=float)[labeled],
            }
        )
        parts.append(
            aggregate_as_of(
                events,
                queries,
                keys=key,
                event_timestamp="__t",
                query_timestamp="__q",
                aggregations=label_aggs,
            )
        )
    features = pd.concat(parts, axis=1)
    features.index = frame.index
    return features


def simulate(
    frame: pd.DataFrame,
    *,
    timestamp: str,
    target: str,
    task: str = "binary_classification",
    features: list[str] | None = None,
    streaming: list[AggregationConfig] | None = None,
    entity: str | None = None,
    step: str | timedelta = "1d",
    warmup: str | timedelta = "7d",
    label_delay: str | timedelta | None = None,
    label_time: str | None = None,
    retrain: RetrainConfig | None = None,
    rollout: RolloutConfig | None = None,
    learner: str | Learner = "lightgbm",
    window: str | timedelta | None = None,
    metric: str = "accuracy",
    monitor: bool = True,
    drift_alpha: float = 0.01,
    gate_tolerance: float = 0.0,
    quality_window: int = 500,
    refit: bool = True,
    service: Any = None,
    seed: int = 0,
) -> SimulationResult:
    """Replay ``frame`` through the loop and measure it prequentially (test, then train).

    ``label_time`` names a column holding when each label arrived (NaT: never), or
    ``label_delay`` gives one delay for all (default: right after the prediction).
    A challenger is judged on the labels that arrived during the last step, trained without
    them; with ``refit`` (the default) the accepted challenger is then refitted with them
    before it serves. When the challenger would train on exactly the rows the champion last
    learned from (daily retraining on all history with a daily step), the gate would compare
    the champion with itself: it is skipped (``"skipped"`` in the event) and the challenger is
    fitted once on every label known. ``service`` chooses the prediction log: ``None`` serves
    in-process without a log; ``"log:<folder>"`` logs every prediction there.
    """
    replay = _Replay(
        frame,
        timestamp=timestamp,
        target=target,
        task=task,
        features=features,
        streaming=streaming or [],
        entity=entity,
        step=step,
        warmup=warmup,
        label_delay=label_delay,
        label_time=label_time,
        retrain=retrain or RetrainConfig(every="1d"),
        rollout=rollout,
        learner=learner,
        window=window,
        metric=metric,
        monitor=monitor,
        drift_alpha=drift_alpha,
        gate_tolerance=gate_tolerance,
        quality_window=quality_window,
        refit=refit,
        service=service,
        seed=seed,
    )
    return replay.run()


class _Replay:
    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        timestamp: str,
        target: str,
        task: str,
        features: list[str] | None,
        streaming: list[AggregationConfig],
        entity: str | None,
        step: str | timedelta,
        warmup: str | timedelta,
        label_delay: str | timedelta | None,
        label_time: str | None,
        retrain: RetrainConfig,
        rollout: RolloutConfig | None,
        learner: str | Learner,
        window: str | timedelta | None,
        metric: str,
        monitor: bool,
        drift_alpha: float,
        gate_tolerance: float,
        quality_window: int,
        refit: bool,
        service: Any,
        seed: int,
    ) -> None:
        self.started = time.perf_counter()
        if task not in ("binary_classification", "regression"):
            raise ConfigError(
                f"the simulator handles binary_classification and regression. Got {task!r}."
            )
        check_stream(frame, timestamp=timestamp, label_time=label_time)
        if target not in frame.columns:
            raise DataError(f"the stream has no target column {target!r}")
        self.frame = frame.reset_index(drop=True)
        self.timestamp, self.target, self.task = timestamp, target, task
        self.y = self.frame[target].to_numpy(dtype=np.float64)
        self.times = self.frame[timestamp]
        if label_time is not None:
            self.label_times = self.frame[label_time]
        else:
            delay = parse_duration(label_delay or "0s", name="label_delay")
            self.label_times = self.times + delay
        self.label_times = self.label_times.where(~np.isnan(self.y))
        self.step = parse_duration(step, name="step")
        self.warmup = parse_duration(warmup, name="warmup")
        self.window = (
            parse_duration(window, name="window") if window is not None else retrain.window
        )
        self.retrain_config, self.rollout = retrain, rollout
        self.metric, self.monitor, self.alpha = metric, monitor, drift_alpha
        self.gate_tolerance, self.seed = gate_tolerance, seed
        self.quality_window = quality_window
        self.refit = refit
        self.champion_since = 0
        self.learner: Learner = (
            make_learner(learner, task=task, seed=seed) if isinstance(learner, str) else learner
        )
        excluded = {target, timestamp, label_time, entity} - {None}
        raw = (
            features
            if features is not None
            else [c for c in self.frame.columns if c not in excluded]
        )
        self._encode(raw, streaming, entity)
        self.service = self._service(service)
        self.events: list[dict[str, Any]] = []
        self.compute = 0.0
        self._bins: tuple[int, Any] | None = None  # (newest row binned, the bins)

    # -- features ----------------------------------------------------------------------
    def _encode(
        self, raw: list[str], streaming: list[AggregationConfig], entity: str | None
    ) -> None:
        from loopml.training import FeatureEncoder

        stream = build_stream_features(
            self.frame,
            timestamp=self.timestamp,
            target=self.target,
            label_times=self.label_times,
            streaming=streaming,
            entity=entity,
        )
        table = pd.concat([self.frame[raw], stream], axis=1)
        first = self.times.iloc[0]
        warm = (self.times < first + self.warmup).to_numpy()
        self.encoder = FeatureEncoder.fit(table[warm], list(table.columns))
        self.x = self.encoder.transform(table)
        self.feature_names = list(table.columns)
        self.spec = self.encoder.to_json()["features"]
        self.table = table

    def _service(self, service: Any) -> Any:
        from loopml.data import EventLog
        from loopml.serving import PredictionLogWriter

        if service is None:
            return None
        if isinstance(service, str) and service.startswith("log:"):
            folder = service[4:]
            return PredictionLogWriter(EventLog(folder), rotate_seconds=2.0)
        raise ConfigError("the 'service' parameter must be None or 'log:<folder>'")

    # -- models ------------------------------------------------------------------------
    def _served(self, fitted: Fitted, version: str) -> Any:
        from loopml.serving import RowEncoder, ServedModel

        learner = self.learner
        return ServedModel(version, RowEncoder(self.spec), lambda m: learner.predict(fitted, m))

    def _fit(
        self,
        rows: FloatArray | npt.NDArray[np.int64],
        previous: Fitted | None,
        stateful: bool,
        *,
        knows: npt.NDArray[np.int64] | None = None,
    ) -> Fitted:
        """Fit on ``rows``; ``knows``: the rows the model has learned from (a continued model
        knows its whole window though its new trees saw only the last part of it)."""
        fitted = self.learner.fit(
            self.x[rows],
            self.y[rows],
            previous=previous,
            stateful=stateful,
            reference=self._bins_for(rows),
        )
        self.compute += fitted.work
        fitted.extra["trained_on"] = _rows_key(rows if knows is None else knows)
        return fitted

    def _recent(self, rows: npt.NDArray[np.int64], now: pd.Timestamp) -> npt.NDArray[np.int64]:
        """The rows of the last ``continue_window`` before ``now`` (all rows when unset)."""
        window = self.retrain_config.continue_window
        if window is None or len(rows) == 0:
            return rows
        return rows[(self.times.iloc[rows] > now - window).to_numpy()]

    def _bins_for(self, rows: npt.NDArray[Any]) -> Any:
        """Feature bins for a fit on ``rows``, learned from rows an earlier fit trained on.

        Fits run in time order, so the bins hold no row from the future; they are learned
        again once a fifth of the rows are newer than the binned ones (as the window grows
        or slides), so drifting features keep fine bins.
        """
        bins = getattr(self.learner, "bins", None)
        if bins is None or len(rows) == 0:
            return None
        if self._bins is None or np.count_nonzero(rows > self._bins[0]) > 0.2 * len(rows):
            self._bins = (int(rows.max()), bins(self.x[rows], self.y[rows]))
        return self._bins[1]

    def _labeled(
        self, now: pd.Timestamp, since: pd.Timestamp | None = None
    ) -> npt.NDArray[np.int64]:
        known = (self.label_times <= now).to_numpy().copy()
        if since is not None:
            known &= (self.label_times > since).to_numpy()
        if self.window is not None:
            known &= (self.times > now - self.window).to_numpy()
        return np.nonzero(known)[0]

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> SimulationResult:
        from loopml.experiments import ChampionPolicy
        from loopml.serving import Deployment, PredictionService

        start = self.times.iloc[0] + self.warmup
        train_rows = self._labeled(start)
        if len(train_rows) < 10 or len(np.unique(self.y[train_rows])) < 2:
            raise DataError(
                f"the warm-up period ({self.warmup}) holds {len(train_rows)} labeled rows; "
                "too few to train a first model",
                hint="lengthen the warm-up",
            )
        champion = self._fit(train_rows, None, False)
        first = champion
        versions: dict[str, Fitted] = {"1": champion}
        champion_version, next_version = "1", 2
        # A replayed step is one batch request: no per-request latency budget applies.
        service = PredictionService(
            Deployment.single(self._served(champion, "1")),
            enforce_budget=False,
            latency_budget_ms=float("inf"),
            log_writer=self.service,
        )
        reference_rows = train_rows
        last_trained, last_label_count = start, len(train_rows)
        rollout_state: dict[str, Any] | None = None
        served = np.full(len(self.y), np.nan)
        never = np.full(len(self.y), np.nan)
        version_of = np.full(len(self.y), "", dtype=object)
        rows_per_step: list[dict[str, Any]] = []
        steps = pd.date_range(
            start, self.times.iloc[-1] + self.step, freq=self.step, inclusive="left"
        )
        for step_start in progress(steps, description="replaying"):
            step_end = step_start + self.step
            rows = np.nonzero(((self.times >= step_start) & (self.times < step_end)).to_numpy())[0]
            if len(rows) == 0:
                continue
            scores, versions_used = self._serve(service, rows, rollout_state)
            served[rows], version_of[rows] = scores, versions_used
            never[rows] = self.learner.predict(first, self.x[rows])
            drift = self._drift(reference_rows, rows) if self.monitor else None
            labeled_now = self._labeled(step_end)
            new_labels = (
                len(labeled_now) - last_label_count
                if self.window is None
                else int(((self.label_times > last_trained) & (self.label_times <= step_end)).sum())
            )
            quality_drop = self._quality_drop(served, step_end)
            if rollout_state is not None:
                rollout_state = self._advance_rollout(
                    rollout_state, rows, served, version_of, step_end, service, versions
                )
                if rollout_state is not None and rollout_state.get("done"):
                    if rollout_state["promoted"]:
                        champion_version = rollout_state["challenger"]
                        champion = versions[champion_version]
                        reference_rows = rollout_state["train_rows"]
                        self.champion_since = self._row_at(step_end)
                    rollout_state = None
            decision = decide_retrain(
                self.retrain_config,
                now=step_end.to_pydatetime(),
                last_trained=last_trained.to_pydatetime(),
                new_labels=new_labels,
                drift_alert=bool(drift and drift["alert"]),
                quality_drop=quality_drop,
            )
            event: dict[str, Any] = {}
            if decision.retrain and rollout_state is None:
                event = self._retrain(decision, step_end, champion, champion_version, next_version)
                last_trained, last_label_count = step_end, len(labeled_now)
                candidate: Fitted = event.pop("fitted")
                if event["accepted"]:
                    version = str(next_version)
                    versions[version] = candidate
                    next_version += 1
                    if self.rollout is not None and (
                        self.rollout.canary is not None or self.rollout.shadow is not None
                    ):
                        rollout_state = self._start_rollout(
                            champion_version,
                            version,
                            step_end,
                            service,
                            versions,
                            event["train_rows"],
                        )
                    else:
                        champion_version, champion = version, candidate
                        reference_rows = event["train_rows"]
                        self.champion_since = self._row_at(step_end)
                        service.swap(
                            Deployment(
                                {version: self._served(candidate, version)}, ChampionPolicy(version)
                            )
                        )
                        self.events.append(
                            {
                                "kind": "deployed",
                                "time": str(step_end),
                                "version": version,
                                "how": "direct",
                            }
                        )
                event.pop("train_rows")
            elif decision.waiting:
                self.events.append(
                    {"kind": "waiting", "time": str(step_end), "why": decision.waiting}
                )
            rows_per_step.append(
                self._step_row(
                    step_start,
                    rows,
                    served,
                    never,
                    champion_version,
                    drift,
                    decision,
                    event,
                    rollout_state,
                )
            )
        if self.service is not None:
            service.close()
        return self._result(served, never, rows_per_step)

    def _serve(
        self, service: Any, rows: npt.NDArray[np.int64], rollout_state: dict[str, Any] | None
    ) -> tuple[FloatArray, list[str]]:
        records = [
            dict(zip(self.feature_names, values, strict=True))
            for values in self.table.iloc[rows].itertuples(index=False, name=None)
        ]
        for record in records:
            for key, value in record.items():
                if isinstance(value, float) and value != value:
                    record[key] = None
                elif isinstance(value, np.generic):
                    record[key] = value.item()
        if rollout_state is None:
            answer = service.predict({"dataframe_records": records})
            return np.asarray(answer["predictions"]), [answer["model_version"]] * len(rows)
        scores, used = np.empty(len(rows)), []
        for i, (row, record) in enumerate(zip(rows, records, strict=True)):
            answer = service.predict({"dataframe_records": [record], "unit_id": f"row{row}"})
            scores[i] = answer["predictions"][0]
            used.append(answer["model_version"])
        return scores, used

    def _drift(
        self, reference_rows: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
    ) -> dict[str, Any] | None:
        from loopml.monitoring import drift_report

        if len(rows) < 30:
            return None
        numeric = [
            name
            for name, spec in zip(self.feature_names, self.spec, strict=True)
            if spec["kind"] == "numeric"
        ]
        sample = reference_rows[-20_000:]
        reference = pd.DataFrame(
            self.x[sample][:, : len(self.feature_names)], columns=self.feature_names
        )[numeric]
        current = pd.DataFrame(self.x[rows], columns=self.feature_names)[numeric]
        report = drift_report(
            reference.dropna(axis=1, how="all"),
            current[reference.dropna(axis=1, how="all").columns],
            alpha=self.alpha,
        )
        return {
            "alert": report.drifted,
            "share": report.share_drifted,
            "columns": report.drifted_columns,
        }

    def _quality(self, scores: FloatArray, y: FloatArray) -> float:
        if self.task == "regression":
            return float(-np.mean(np.abs(scores - y)))
        if self.metric == "accuracy":
            return float(np.mean((scores >= 0.5) == (y == 1)))
        from loopml.evaluation import compute_metrics

        return float(compute_metrics(y, scores, task=self.task)[self.metric])

    def _row_at(self, when: pd.Timestamp) -> int:
        return int(self.times.searchsorted(when, side="left"))

    def _quality_drop(self, served: FloatArray, now: pd.Timestamp) -> float | None:
        """Quality of the champion's first labeled rows minus that of its latest ones.

        Both windows hold ``quality_window`` rows served by the current champion since it
        was deployed; ``None`` until there are two such windows.
        """
        if self.retrain_config.on_quality_drop is None:
            return None
        known = (self.label_times <= now).to_numpy() & ~np.isnan(served)
        known[: self.champion_since] = False
        rows = np.nonzero(known)[0]
        n = self.quality_window
        if len(rows) < 2 * n:
            return None
        first, last = rows[:n], rows[-n:]
        return self._quality(served[first], self.y[first]) - self._quality(
            served[last], self.y[last]
        )

    def _retrain(
        self,
        decision: RetrainDecision,
        now: pd.Timestamp,
        champion: Fitted,
        champion_version: str,
        next_version: int,
    ) -> dict[str, Any]:
        # The freshest labels (those that arrived during the last step) judge the challenger,
        # so it trains only on labels known before them: the gate is out of sample for both.
        stateful = self.retrain_config.mode == "stateful"
        cutoff = now - self.step
        fresh = self._labeled(now, since=cutoff)
        rows = self._labeled(cutoff)
        judged = len(rows) >= 10 and len(fresh) > 0
        # A challenger trained on exactly the rows the champion last learned from would be the
        # champion (deterministic fit) or the champion refitted on nothing new: the gate would
        # compare the champion with itself. Daily retraining on all history with a daily step is
        # this case every day; it then trains once, on every label known now.
        same = judged and champion.extra.get("trained_on") == _rows_key(rows)
        if not judged or same:  # nothing fresh to judge with: train on everything, say so
            rows, fresh = self._labeled(now), np.zeros(0, dtype=np.int64)
            judged = False
        # a continued model fits its few new trees on the whole training window, or on its
        # last `continue_window`: trees fitted to one step's rows alone are too small to move
        # it (Elec2 fell below the last label)
        newest = self._recent(rows, now)
        continuing = self.learner.continues(champion, stateful) and len(newest) > 0
        used = newest if continuing else rows
        candidate = self._fit(used, champion, stateful, knows=rows)
        if judged:
            challenger_quality = self._quality(
                self.learner.predict(candidate, self.x[fresh]), self.y[fresh]
            )
            champion_quality = self._quality(
                self.learner.predict(champion, self.x[fresh]), self.y[fresh]
            )
        else:
            challenger_quality = champion_quality = float("nan")
        accepted = not judged or challenger_quality >= champion_quality - self.gate_tolerance
        if accepted and judged and self.refit:
            # judged out of sample; what serves also learns from the labels that judged it:
            # a continued model continues on them, a rebuilt one is rebuilt with them
            rows = self._labeled(now)
            if continuing:
                known = self._labeled(now)
                candidate = self._fit(self._recent(known, now), candidate, stateful, knows=known)
            else:
                candidate = self._fit(rows, None, stateful)
        event = {
            "kind": "retrained",
            "time": str(now),
            "version": str(next_version),
            "mode": candidate.mode,
            "rows": int(len(used)),
            "reasons": list(decision.reasons),
            "gate": {
                "metric": self.metric,
                "challenger": challenger_quality,
                "champion": champion_quality,
                "champion_version": champion_version,
                "fresh_rows": int(len(fresh)),
                "judged": judged,
                **(
                    {"skipped": "the challenger would train on the champion's rows"} if same else {}
                ),
            },
            "accepted": bool(accepted),
        }
        if not accepted:
            event["why_rejected"] = (
                f"challenger {self.metric} {challenger_quality:.4f} is below the champion's "
                f"{champion_quality:.4f} on the {len(fresh)} freshest labeled rows"
            )
        self.events.append({k: v for k, v in event.items()})
        return {**event, "fitted": candidate, "train_rows": rows}

    # -- rollout -----------------------------------------------------------------------
    def _start_rollout(
        self,
        champion: str,
        challenger: str,
        now: pd.Timestamp,
        service: Any,
        versions: dict[str, Fitted],
        train_rows: npt.NDArray[np.int64],
    ) -> dict[str, Any]:
        from loopml.experiments import CanaryPolicy, ChampionPolicy, ShadowPolicy
        from loopml.serving import Deployment

        models = {v: self._served(versions[v], v) for v in (champion, challenger)}
        assert self.rollout is not None
        shadow = self.rollout.shadow
        state: dict[str, Any] = {
            "phase": "shadow" if shadow is not None else "canary",
            "champion": champion,
            "challenger": challenger,
            "shadow_until": now + shadow if shadow is not None else now,
            "since": now,
            "train_rows": train_rows,
            "done": False,
            "promoted": False,
        }
        policy: Any
        if shadow is not None:
            policy = ShadowPolicy(ChampionPolicy(champion), [challenger], fraction=1.0)
        else:
            state["controller"] = self._start_controller(state, now)
            policy = CanaryPolicy(champion, challenger, weight=state["controller"].weight)
        service.swap(Deployment(models, policy))
        self.events.append(
            {
                "kind": "rollout_started",
                "time": str(now),
                "phase": state["phase"],
                "champion": champion,
                "challenger": challenger,
            }
        )
        return state

    def _start_controller(self, state: dict[str, Any], now: pd.Timestamp) -> Any:
        from loopml.experiments import start_canary

        return start_canary(
            "simulation",
            state["champion"],
            state["challenger"],
            self._canary_spec(),
            now=now.to_pydatetime(),
        )

    def _advance_rollout(
        self,
        state: dict[str, Any],
        rows: npt.NDArray[np.int64],
        served: FloatArray,
        version_of: npt.NDArray[Any],
        now: pd.Timestamp,
        service: Any,
        versions: dict[str, Fitted],
    ) -> dict[str, Any]:
        from loopml.experiments import CanaryPolicy
        from loopml.serving import Deployment

        champion, challenger = state["champion"], state["challenger"]
        del rows
        served_window = (self.times >= state["since"]).to_numpy() & (self.times < now).to_numpy()
        window = np.nonzero(served_window & (self.label_times <= now).to_numpy())[0]
        if state["phase"] == "shadow":
            if now < state["shadow_until"]:
                return state
            quality = (
                {
                    v: self._quality(
                        self.learner.predict(versions[v], self.x[window]), self.y[window]
                    )
                    for v in (champion, challenger)
                }
                if len(window)
                else {}
            )
            self.events.append(
                {
                    "kind": "shadow_report",
                    "time": str(now),
                    "quality": quality,
                    "rows": int(len(window)),
                }
            )
            if quality and quality[challenger] < quality[champion] - self.gate_tolerance:
                return self._finish(
                    state,
                    now,
                    service,
                    versions,
                    promoted=False,
                    reason=f"shadow: challenger {quality[challenger]:.4f} "
                    f"< champion {quality[champion]:.4f}",
                )
            state.update(phase="canary", since=now, controller=self._start_controller(state, now))
            weight = state["controller"].weight
            policy: Any = CanaryPolicy(champion, challenger, weight=weight)
            service.swap(
                Deployment(
                    {v: self._served(versions[v], v) for v in (champion, challenger)}, policy
                )
            )
            self.events.append({"kind": "canary_step", "time": str(now), "weight": weight})
            return state
        return self._canary_analysis(
            state, np.nonzero(served_window)[0], served, version_of, now, service, versions
        )

    def _canary_spec(self) -> Any:
        from loopml.experiments import CanarySpec

        canary = self.rollout.canary if self.rollout is not None else None
        if canary is None:
            return CanarySpec(steps=(100.0,), max_drift=None)
        return CanarySpec(
            steps=tuple(canary.steps),
            min_samples=canary.min_samples,
            min_labels=canary.min_samples,
            max_drift=None,
            max_quality_drop=canary.max_quality_drop,
            max_error_increase=canary.max_error_increase,
            inconclusive_limit=canary.inconclusive_limit,
        )

    def _canary_analysis(
        self,
        state: dict[str, Any],
        window: npt.NDArray[np.int64],
        served: FloatArray,
        version_of: npt.NDArray[Any],
        now: pd.Timestamp,
        service: Any,
        versions: dict[str, Fitted],
    ) -> dict[str, Any]:
        from loopml.experiments import ArmWindow, CanaryPolicy, advance, analyze_step
        from loopml.serving import Deployment

        controller = state["controller"]
        champion, challenger = state["champion"], state["challenger"]
        arms = {}
        for version in (champion, challenger):
            mine = window[version_of[window] == version]
            labeled = mine[(self.label_times.iloc[mine] <= now).to_numpy()]
            if self.task == "regression":
                quality = -np.abs(served[labeled] - self.y[labeled])
            else:
                quality = ((served[labeled] >= 0.5) == (self.y[labeled] == 1)).astype(float)
            arms[version] = ArmWindow.of(len(mine), 0, np.zeros(len(mine)), served[mine], quality)
        analysis = analyze_step(
            controller.spec, arms[champion], arms[challenger], weight=controller.weight
        )
        moved = advance(controller, analysis, now=now.to_pydatetime())
        state["controller"] = moved
        if moved.status == "promoted":
            return self._finish(
                state, now, service, versions, promoted=True, reason=f"canary: {moved.reason}"
            )
        if moved.status in ("rolled_back", "paused"):
            return self._finish(
                state,
                now,
                service,
                versions,
                promoted=False,
                reason=f"canary {moved.status}: {moved.reason}",
            )
        if moved.weight != controller.weight:
            state["since"] = now
            models = {v: self._served(versions[v], v) for v in (champion, challenger)}
            service.swap(
                Deployment(models, CanaryPolicy(champion, challenger, weight=moved.weight))
            )
            self.events.append({"kind": "canary_step", "time": str(now), "weight": moved.weight})
        return state

    def _finish(
        self,
        state: dict[str, Any],
        now: pd.Timestamp,
        service: Any,
        versions: dict[str, Fitted],
        *,
        promoted: bool,
        reason: str,
    ) -> dict[str, Any]:
        from loopml.experiments import ChampionPolicy
        from loopml.serving import Deployment

        winner = state["challenger"] if promoted else state["champion"]
        service.swap(
            Deployment({winner: self._served(versions[winner], winner)}, ChampionPolicy(winner))
        )
        kind = "deployed" if promoted else "rolled_back"
        self.events.append(
            {
                "kind": kind,
                "time": str(now),
                "version": winner,
                "how": "canary" if promoted else "",
                "reason": reason,
                "challenger": state["challenger"],
            }
        )
        state.update(done=True, promoted=promoted)
        return state

    # -- results -----------------------------------------------------------------------
    def _step_row(
        self,
        start: pd.Timestamp,
        rows: npt.NDArray[np.int64],
        served: FloatArray,
        never: FloatArray,
        champion: str,
        drift: dict[str, Any] | None,
        decision: RetrainDecision,
        event: dict[str, Any],
        rollout_state: dict[str, Any] | None,
    ) -> dict[str, Any]:
        labeled = rows[~np.isnan(self.y[rows])]
        return {
            "start": start,
            "rows": int(len(rows)),
            "champion": champion,
            "quality": self._quality(served[labeled], self.y[labeled]) if len(labeled) else np.nan,
            "never_retrained": self._quality(never[labeled], self.y[labeled])
            if len(labeled)
            else np.nan,
            "drift_share": drift["share"] if drift else np.nan,
            "drift_alert": bool(drift and drift["alert"]),
            "retrained": bool(event),
            "retrain_reasons": "; ".join(decision.reasons) if decision.retrain else "",
            "rollout": rollout_state["phase"] if rollout_state else "",
        }

    def _result(
        self, served: FloatArray, never: FloatArray, rows: list[dict[str, Any]]
    ) -> SimulationResult:
        from loopml.continual._policy import stage_of

        scored = ~np.isnan(served) & ~np.isnan(self.y)
        prequential = {
            "loopml": self._quality(served[scored], self.y[scored]),
            "never_retrained": self._quality(never[scored], self.y[scored]),
        }
        if self.task == "binary_classification":
            last = self._last_label()
            ok = scored & ~np.isnan(last)
            prequential["last_label"] = self._quality(last[ok], self.y[ok])
        return SimulationResult(
            timeline=pd.DataFrame(rows),
            events=self.events,
            prequential=prequential,
            metric=self.metric,
            wall_seconds=time.perf_counter() - self.started,
            retrains=sum(e["kind"] == "retrained" for e in self.events),
            compute=self.compute,
            features=self.feature_names,
            stage=stage_of(self.retrain_config),
        )

    def _last_label(self) -> FloatArray:
        """For each row, the most recent label known before its time (NaN before any)."""
        order = np.argsort(self.label_times.to_numpy(), kind="stable")
        known_times = self.label_times.to_numpy()[order]
        valid = ~pd.isna(known_times)
        known_times, values = known_times[valid], self.y[order][valid]
        index = np.searchsorted(known_times, self.times.to_numpy(), side="left") - 1
        out = np.full(len(self.y), np.nan)
        has = index >= 0
        out[has] = values[index[has]]
        return out


def _rows_key(rows: npt.NDArray[Any]) -> tuple[int, int]:
    """Which rows a model was fitted on, as a comparable key (count and content hash)."""
    return len(rows), hash(np.ascontiguousarray(rows, dtype=np.int64).tobytes())
