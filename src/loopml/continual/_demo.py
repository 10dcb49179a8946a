"""The loop half of ``loopml demo``: train, evaluate, register, then replay the rest.

Appended to the data steps of ``loopml.datasets.run_demo``:

8. ``train``     natural labels (chargebacks within 30 days, else legitimate) joined to the
                 transactions known on the deployment day; point-in-time card features;
                 baselines, then LightGBM with a small Optuna budget, tracked in MLflow;
9. ``evaluate``  the best model against the baselines on the latest labeled weeks, with
                 the gates, slices, behaviour tests; model card and report; registered and
                 aliased ``champion`` only if the gates pass;
10. ``replay``   the days after deployment through the prediction service (logged), labels
                 released as they arrive, drift monitored daily, retrains on drift or
                 schedule, shadow then canary rollouts;
11. ``report``   one HTML page with the timeline (quality, drift, alerts, deployments).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loopml.core import (
    AggregationConfig,
    CanaryConfig,
    EvaluateConfig,
    GateConfig,
    RetrainConfig,
    RolloutConfig,
    TrainConfig,
    atomic_write_text,
    parse_duration,
)

if TYPE_CHECKING:
    from loopml.datasets import DemoResult

__all__ = ["LOOP_MIN_DAYS", "LOOP_STEPS", "card_features"]

FEATURES = ["amount", "merchant_category", "country", "channel", "device", "device_age_days"]
STREAMING = [
    AggregationConfig(
        column="amount", functions=["count", "mean", "max"], windows=["1h", "1d", "7d"]
    ),
]
FEEDBACK_WINDOW = "30d"
DEPLOY_AFTER_DAYS = 55
LOOP_MIN_DAYS = 60
EVALUATION_DAYS = 10


def card_features(transactions: pd.DataFrame, labels: pd.DataFrame | None = None) -> pd.DataFrame:
    """Transactions with point-in-time card aggregates (never including the row itself)."""
    from loopml.continual._simulate import build_stream_features

    frame = transactions.sort_values("event_time", kind="stable").reset_index(drop=True)
    label_times = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    stream = build_stream_features(
        frame.assign(is_fraud=np.nan),
        timestamp="event_time",
        target="is_fraud",
        label_times=label_times,
        streaming=STREAMING,
        entity="card_id",
    )
    return pd.concat([frame, stream], axis=1)


def _labeled(result: DemoResult) -> pd.DataFrame:
    """Every transaction with its natural label and the time that label became known."""
    from loopml.trainingdata import join_labels

    world = result.world
    assert world is not None
    tx = world.transactions.sort_values("event_time", kind="stable").reset_index(drop=True)
    joined = join_labels(
        tx,
        world.chargebacks,
        key="transaction_id",
        target="is_fraud",
        prediction_time="event_time",
        label_time="reported_at",
        window=FEEDBACK_WINDOW,
        implicit_label=0,
        # every label eventually known: the replay releases each one at its own time
        now=world.ground_truth.end + pd.Timedelta(days=90),
    )
    frame = joined.frame
    implicit = frame["label_status"] == "implicit"
    window = parse_duration(FEEDBACK_WINDOW)
    frame.loc[implicit, "label_time"] = frame.loc[implicit, "event_time"] + window
    frame["is_fraud"] = pd.to_numeric(frame["label"], errors="coerce")
    return frame.drop(columns=["label", "label_status", "label_delay"])


def step_train(result: DemoResult) -> str:
    from loopml import registry
    from loopml.training import train

    workspace = result.workspace
    assert workspace is not None and result.world is not None
    labeled = _labeled(result)
    deploy = result.world.ground_truth.start + pd.Timedelta(
        days=min(DEPLOY_AFTER_DAYS, result.days - 3)
    )
    features = card_features(labeled.drop(columns=["label_time"]))
    features["label_time"] = (
        labeled.set_index("transaction_id").loc[features["transaction_id"], "label_time"].to_numpy()
    )
    complete = deploy - parse_duration(FEEDBACK_WINDOW)  # every label before this is final
    holdout = complete - pd.Timedelta(days=EVALUATION_DAYS)
    known = features[(features["event_time"] < holdout) & (features["label_time"] <= deploy)].copy()
    columns = FEATURES + [n for a in STREAMING for n in _names(a)]
    config = TrainConfig(  # a small tuning budget: the demo runs in about a minute
        candidates=["baseline", "logistic_regression", "lightgbm"],
        tune={"trials": 3, "metric": "average_precision"},
        seed=result.seed,
    )
    training = train(
        known[[*columns, "event_time", "is_fraud"]],
        target="is_fraud",
        task="binary_classification",
        timestamp="event_time",
        config=config,
        tracking_uri=workspace.tracking_uri,
        artifact_root=str(workspace.artifacts_dir),
        experiment="card-fraud-demo",
        lineage={k: v.version for k, v in result.snapshots.items()},
    )
    result.extra["training"] = training
    result.extra["registered"] = None
    if training.best is not None:
        result.extra["registered"] = registry.register_model(
            training, "card-fraud", tracking_uri=workspace.tracking_uri
        )
    result.extra["deploy_at"] = deploy
    result.extra["holdout"] = (holdout, complete)
    result.extra["features"] = features
    result.extra["columns"] = columns
    scores = {s.name: s.validation.get("average_precision") for s in training.scores}
    parts = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if v is not None)
    return (
        f"{len(known):,} labeled transactions known on {deploy.date()} "
        f"({int(known['is_fraud'].sum())} frauds, before {holdout.date()}); validation average "
        f"precision: {parts}; best: {training.best_name}"
    )


def _names(aggregation: AggregationConfig) -> list[str]:
    from loopml.features._definitions import Aggregation

    return Aggregation(aggregation.column, aggregation.functions, aggregation.windows).feature_names


def step_evaluate(result: DemoResult) -> str:
    from loopml import evaluation, registry

    workspace = result.workspace
    assert workspace is not None
    training, registered = result.extra["training"], result.extra["registered"]
    if registered is None:
        return f"no candidate beat the baselines ({training.best_name} serves); nothing registered"
    version = registered.version
    model = registry.load_model("card-fraud", version=version, tracking_uri=workspace.tracking_uri)
    features, (holdout, complete) = result.extra["features"], result.extra["holdout"]
    recent = features[(features["event_time"] >= holdout) & (features["event_time"] < complete)]
    columns = result.extra["columns"]
    prior = float(features.loc[features["event_time"] < holdout, "is_fraud"].mean())
    config = EvaluateConfig(
        slices=["channel", "merchant_category"],
        sensitive=["country"],
        directional={"amount": "increasing"},
        bootstrap=200,
        gates=[
            GateConfig(metric="average_precision", beats="baseline", by=0.05),
            GateConfig(metric="roc_auc", at_least=0.7),
        ],
    )
    evaluated = evaluation.evaluate(
        model,
        recent[[*columns, "is_fraud"]],
        target="is_fraud",
        baselines={"prior": lambda f: np.full(len(f), prior)},
        config=config,
        seed=result.seed,
    )
    folder = workspace.reports_dir / f"card-fraud-v{version}"
    paths = evaluation.write_report(
        evaluated,
        folder,
        name="card-fraud",
        version=str(version),
        intended_use="Score card transactions for fraud review (demo).",
    )
    if evaluated.passed:
        registry.set_alias("card-fraud", "champion", version, tracking_uri=workspace.tracking_uri)
    result.extra["evaluation"] = evaluated
    result.files["model_card"] = paths["card_md"]
    result.files["evaluation_report"] = paths["html"]
    ap = evaluated.metrics["average_precision"]
    verdict = (
        "gates passed, alias champion -> v" + str(version)
        if evaluated.passed
        else ("gates FAILED: " + "; ".join(g.reason for g in evaluated.failed_gates))
    )
    return (
        f"v{version} on {evaluated.rows:,} recent rows: average precision {ap.value:.3f} "
        f"[{ap.low:.3f}, {ap.high:.3f}] vs prior "
        f"{evaluated.baselines['prior']['average_precision']:.3f}; "
        f"{verdict}; model card {paths['card_md'].relative_to(result.directory)}"
    )


def step_replay(result: DemoResult) -> str:
    from loopml import continual

    workspace = result.workspace
    assert workspace is not None and result.world is not None
    features = result.extra["features"]
    columns = result.extra["columns"]
    deploy = result.extra["deploy_at"]
    start = result.world.ground_truth.start
    frame = features[[*columns, "event_time", "label_time", "is_fraud"]]
    simulated = continual.simulate(
        frame,
        timestamp="event_time",
        target="is_fraud",
        features=columns,
        label_time="label_time",
        step="1d",
        warmup=deploy - start,
        metric="roc_auc",
        monitor=True,
        drift_alpha=0.001,
        retrain=RetrainConfig(every="14d", on_drift=True, min_new_labels=1000),
        rollout=RolloutConfig(
            shadow="2d",
            canary=CanaryConfig(
                steps=[10, 50, 100], every="1d", min_samples=500, max_quality_drop=0.02
            ),
        ),
        learner=continual.LightGBMLearner(
            rounds=80, params={"num_leaves": 15, "min_data_in_leaf": 50}
        ),
        gate_tolerance=0.01,
        service=f"log:{workspace.predictions_log_dir}",
        seed=result.seed,
    )
    result.extra["simulation"] = simulated
    truth = result.world.ground_truth
    alerts = simulated.timeline.loc[simulated.timeline["drift_alert"], "start"]
    shift = truth.spending_shift_at
    after = alerts[alerts >= shift]
    before = alerts[alerts < shift]
    detected = (
        f"drift flagged on {len(before)} day(s) before the planted spending shift and from "
        f"{after.iloc[0].date()} after it ({shift.date()})"
        if len(after)
        else "the planted spending shift was NOT flagged"
    )
    kinds = [e["kind"] for e in simulated.events]
    p = simulated.prequential
    return (
        f"{int(simulated.timeline['rows'].sum()):,} transactions served over "
        f"{len(simulated.timeline)} days; "
        f"ROC AUC {p['loopml']:.3f} (never retrained {p['never_retrained']:.3f}); {detected}; "
        f"{kinds.count('retrained')} retrains, {kinds.count('rollout_started')} rollouts, "
        f"{kinds.count('deployed')} promoted, {kinds.count('rolled_back')} rolled back"
    )


def step_report(result: DemoResult) -> str:
    from loopml.continual._report import render_timeline

    workspace = result.workspace
    assert workspace is not None
    simulated = result.extra["simulation"]
    truth = result.world.ground_truth if result.world is not None else None
    marks = (
        {}
        if truth is None
        else {
            "new fraud pattern": truth.new_fraud_pattern_at,
            "spending shift": truth.spending_shift_at,
        }
    )
    page = render_timeline(
        simulated,
        title="loopml demo: card fraud",
        planted=marks,
        links={
            "model card": "card-fraud-v1/model_card.html",
            "evaluation report": "card-fraud-v1/report.html",
        },
    )
    target = workspace.reports_dir / "demo.html"
    atomic_write_text(target, page)
    atomic_write_text(
        workspace.reports_dir / "simulation.json", json.dumps(simulated.to_dict(), default=str)
    )
    result.files["report"] = target
    return f"timeline report: {target}"


LOOP_STEPS: list[Any] = [step_train, step_evaluate, step_replay, step_report]
