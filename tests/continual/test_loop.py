"""The loop runner over a real workspace: first champion, policy waits, failure and resume."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.cli import main
from loopml.continual import loop_status, run_pass
from loopml.core import BackendError, Config, Workspace


def _workspace(tmp_path: Path, tracking_uri: str | None = None) -> Workspace:
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "time": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(n) * 600, unit="s"),
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "segment": rng.choice(["a", "b"], n),
        }
    )
    frame["y"] = (frame["x0"] + 0.5 * frame["x1"] + rng.normal(scale=0.7, size=n) > 0).astype(int)
    data = tmp_path / "ws" / "data"
    data.mkdir(parents=True)
    frame.to_parquet(data / "events.parquet")
    config = Config.model_validate(
        {
            "project": "loop-test",
            "task": "binary_classification",
            "sources": {"events": {"path": "data/events.parquet", "timestamp": "time"}},
            "labels": {"source": "events", "target": "y"},
            "train": {"candidates": ["baseline", "logistic_regression"], "tune": {"trials": 0}},
            "evaluate": {
                "bootstrap": 50,
                "gates": [{"metric": "roc_auc", "beats": "baseline", "by": 0.1}],
            },
            "continual": {"retrain": {"every": "7d", "min_new_labels": 100}},
            "backends": {"tracking_uri": tracking_uri} if tracking_uri else {},
        }
    )
    return Workspace.create(tmp_path / "ws", config)


def test_first_pass_promotes_a_champion_then_the_policy_waits(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    first = run_pass(workspace, now=datetime(2024, 2, 1, tzinfo=UTC))
    assert first.status == "finished"
    assert (
        first.steps["decide"]["retrain"] and "no champion yet" in first.steps["decide"]["reasons"]
    )
    assert first.steps["train"]["registered"] == 1
    assert first.steps["evaluate"]["passed"] and first.steps["rollout"]["promoted"]
    assert loop_status(workspace)["aliases"]["champion"] == 1

    second = run_pass(workspace, now=datetime(2024, 2, 2, tzinfo=UTC))
    assert second.steps["decide"]["retrain"] is False
    assert second.steps["train"] == {"skipped": "the policy did not ask for a retrain"}
    steps = [entry["step"] for entry in loop_status(workspace)["journal"]]
    assert steps.count("decide") == 2 and steps.count("rollout") == 2


def test_a_failed_retrain_keeps_the_champion_and_the_next_pass_resumes(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    run_pass(workspace, now=datetime(2024, 2, 1, tzinfo=UTC))
    good = workspace.config
    broken = good.model_copy(
        update={
            "backends": good.backends.model_copy(
                update={"tracking_uri": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
            )
        }
    )
    workspace.save_config(broken)
    with pytest.raises(BackendError):
        run_pass(workspace, now=datetime(2024, 2, 20, tzinfo=UTC), manual=True)
    workspace.save_config(good)
    status = loop_status(workspace)
    assert status["current"]["status"] == "running"  # the pass is unfinished, not lost
    assert status["aliases"]["champion"] == 1  # still serving
    resumed = run_pass(workspace, now=datetime(2024, 2, 20, tzinfo=UTC))
    assert resumed.resumed and resumed.status == "finished"
    assert resumed.steps["train"]["registered"] == 2
    failed = [e["step"] for e in loop_status(workspace)["journal"] if e["step"].endswith("failed")]
    assert len(failed) == 1 and failed[0].split()[0] in {"decide", "train"}
    assert any(e["step"] == "resumed" for e in loop_status(workspace)["journal"])


def test_cli_loop_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = _workspace(tmp_path)
    assert main(["loop", "--dir", str(workspace.root)]) == 0
    assert main(["status", "--dir", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "champion" in out


def test_evaluate_promote_and_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    workspace = _workspace(tmp_path)
    run_pass(workspace, now=datetime(2024, 2, 1, tzinfo=UTC))
    run_pass(
        workspace, now=datetime(2024, 2, 2, tzinfo=UTC), manual=True
    )  # v2, promoted (no rollout)
    root = str(workspace.root)
    assert loop_status(workspace)["aliases"]["champion"] == 2
    assert main(["evaluate", "--dir", root, "--version", "2"]) == 0
    out = capsys.readouterr().out
    assert "roc_auc" in out and "pass" in out
    assert (workspace.reports_dir / "loop-test-v2" / "model_card.md").is_file()
    from loopml import registry

    tags = registry.get_model_version("loop-test", version=2, tracking_uri=workspace.tracking_uri).tags
    assert tags["loopml.model_card"].endswith("loop-test-v2/model_card.md")
    assert tags["loopml.gates_passed"] == "true"
    assert main(["rollback", "--dir", root, "--reason", "test"]) == 0
    assert loop_status(workspace)["aliases"]["champion"] == 1
    assert main(["promote", "2", "--dir", root]) == 0
    assert loop_status(workspace)["aliases"]["champion"] == 2
    # a gate that cannot pass: promotion refused (exit 1), --force needs a reason (exit 2)
    strict = workspace.config.model_copy(deep=True)
    strict.evaluate.gates[0].by = 0.99
    workspace.save_config(strict)
    assert main(["promote", "1", "--dir", root]) == 1
    assert "failed 1 gate" in capsys.readouterr().err
    assert main(["promote", "1", "--dir", root, "--force"]) == 2
    assert main(["promote", "1", "--dir", root, "--force", "--reason", "incident 42"]) == 0
    assert loop_status(workspace)["aliases"]["champion"] == 1
    events = workspace.state_store().events("promotion")
    assert events[-1].payload["forced"] and events[-1].payload["reason"] == "incident 42"


def test_training_from_the_workspace_runs_the_leakage_checks(tmp_path: Path) -> None:
    from loopml.core import LeakageError
    from loopml.training import train_workspace

    workspace = _workspace(tmp_path)
    path = workspace.root / "data" / "events.parquet"
    frame = pd.read_parquet(path)
    frame["label_copy"] = frame["y"] * 2.0 + 1.0  # a feature that is the label
    frame.to_parquet(path)
    from loopml.data import ingest

    ingest(workspace, "events")
    with pytest.raises(LeakageError, match="label_copy"):
        train_workspace(workspace)
    acknowledged = workspace.config.model_copy(update={"acknowledge": ["single_feature_predicts_label"]})
    workspace.save_config(acknowledged)
    result = train_workspace(workspace)
    assert "label_copy" in result.features


def test_cli_freshness(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(4)
    n = 24 * 60
    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
                          "x": rng.normal(size=n)})
    frame["y"] = (frame["x"] > np.linspace(-1, 1, n)).astype(int)
    path = tmp_path / "stream.csv"
    frame.to_csv(path, index=False)
    assert main(["freshness", "--data", str(path), "--timestamp", "time", "--target", "y",
                 "--features", "x", "--train-window", "7d", "--staleness", "0,14"]) == 0
    out = capsys.readouterr().out
    assert "trained    0 days stale" in out and "trained   14 days stale" in out
    assert main(["freshness", "--data", str(path), "--timestamp", "time", "--target", "y",
                 "--features", "x", "--staleness", "a,b"]) == 2
