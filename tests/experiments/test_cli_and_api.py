"""The command line over a real workspace and state store; the public names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml import experiments
from loopml.cli import main
from loopml.core import StateStore, Workspace
from loopml.experiments import ArmWindow, get_rollout, observe_rollout


def test_all_matches_public_names() -> None:
    public = {n for n in vars(experiments) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(experiments, n)).__name__ == "module"}
    assert sorted(experiments.__all__) == sorted(public - modules)
    assert experiments.__all__ == sorted(experiments.__all__, key=lambda n: (not n.isupper(), n))


def _outcomes(path: Path, treated_share: float, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n = 20_000
    variant = np.where(rng.random(n) < treated_share, "treatment", "control")
    pre = rng.normal(10, 3, n)
    revenue = pre + rng.normal(0, 1, n) + np.where(variant == "treatment", 0.05, 0.0)
    frame = pd.DataFrame({"variant": variant, "revenue": revenue, "pre_revenue": pre,
                          "arrived": np.arange(n)})  # fmt: skip
    frame.to_parquet(path)
    return path


def test_experiment_commands(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = ["--dir", str(workspace.root)]
    start = [
        "experiment",
        "start",
        "checkout",
        "--variant",
        "control=v1",
        "--variant",
        "treatment=v2",
    ]
    assert main([*start, *ws]) == 0
    assert "started experiment 'checkout'" in capsys.readouterr().out
    assert main([*start, *ws]) == 2  # the name is taken
    assert "already exists" in capsys.readouterr().err
    assert main(["experiment", "status", "--json", *ws]) == 0
    assert json.loads(capsys.readouterr().out)[0]["status"] == "running"
    data = _outcomes(tmp_path / "outcomes.parquet", 0.5)
    report = ["experiment", "report", "checkout", "--data", str(data), "--metric", "revenue"]
    assert (
        main([*report, "--covariate", "pre_revenue", "--order-column", "arrived", "--json", *ws])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["test"] == "CUPED Welch t-test" and out["variance_reduction"] > 0.8
    assert out["decision"] == "treatment better" and out["ci"][0] < 0.05 < out["ci"][1]
    # a broken split is reported and exits 1
    skewed = _outcomes(tmp_path / "skewed.parquet", 0.47)
    assert (
        main(
            ["experiment", "report", "checkout", "--data", str(skewed), "--metric", "revenue", *ws]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "ALARM" in captured.out and "sample ratio mismatch" in captured.err
    assert (
        main(
            [
                "experiment",
                "report",
                "checkout",
                "--data",
                str(tmp_path / "nope.csv"),
                "--metric",
                "x",
                *ws,
            ]
        )
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
    assert main(["experiment", "stop", "checkout", "--reason", "shipped", *ws]) == 0
    assert main(["experiment", "status", "checkout", *ws]) == 0
    status = capsys.readouterr().out
    assert "checkout: stopped" in status and "(shipped)" in status
    assert main(["experiment", "stop", "checkout", *ws]) == 2
    assert main(["experiment", "status", "missing", *ws]) == 2
    assert (
        main(["experiment", "start", "bad", "--variant", "control=v1:-1", "--variant", "t=v2", *ws])
        == 2
    )


def test_rollout_commands(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws = ["--dir", str(workspace.root)]
    assert main(["rollout", "start", "fraud", "--champion", "v1", "--challenger", "v2",
                 "--steps", "10,50,100", "--min-samples", "100", *ws]) == 0  # fmt: skip
    assert "progressing at 10%" in capsys.readouterr().out
    # the continual loop observes windows through the same store
    store = StateStore(workspace.state_url)
    observe_rollout(store, "fraud", ArmWindow.of(5000, 50), ArmWindow.of(600, 6))
    assert get_rollout(store, "fraud").weight == 50.0
    assert main(["rollout", "status", "fraud", *ws]) == 0
    out = capsys.readouterr().out
    assert "progressing at 50%" in out and "pass" in out
    assert main(["rollout", "abort", "fraud", "--reason", "latency alarm", *ws]) == 0
    assert "aborted: latency alarm" in capsys.readouterr().out
    assert main(["rollout", "status", "--json", *ws]) == 0
    assert json.loads(capsys.readouterr().out)[0]["weight"] == 0.0
    assert main(["rollout", "abort", "fraud", "--reason", "again", *ws]) == 2
    assert main(["rollout", "resume", "fraud", *ws]) == 2
    assert "not paused" in capsys.readouterr().err
    assert (
        main(
            [
                "rollout",
                "start",
                "x",
                "--champion",
                "v1",
                "--challenger",
                "v2",
                "--steps",
                "5,a",
                *ws,
            ]
        )
        == 2
    )
    assert "comma-separated percentages" in capsys.readouterr().err
