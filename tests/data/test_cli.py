"""The data commands end to end through ``loopml.cli.main``: output, files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.cli import main
from loopml.core import Workspace
from loopml.data import list_snapshots


def _transactions(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tx_id": range(n),
            "event_time": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(n), "min"),
            "amount": rng.gamma(2.0, 20.0, n).round(2),
            "country": rng.choice(["fr", "de", "us"], n),
            "is_fraud": (rng.random(n) < 0.1).astype(int),
        }
    )


def test_init_ingest_profile_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps tables at 80 columns when piped
    root = tmp_path / "proj"
    root.mkdir()
    _transactions(500, seed=0).to_csv(root / "transactions.csv", index=False)
    assert main(["init", str(root / "transactions.csv"), "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "target 'is_fraud'" in out and "task binary_classification" in out
    assert "timestamp column 'event_time'" in out
    config = Workspace.open(root).config
    assert config.task == "binary_classification"
    assert config.sources["transactions"].timestamp == "event_time"
    assert config.labels is not None and config.labels.target == "is_fraud"
    assert main(["init", str(root / "transactions.csv"), "--dir", str(root)]) == 2
    assert "already exists" in capsys.readouterr().err

    assert main(["ingest", "--dir", str(root)]) == 0
    assert "new" in capsys.readouterr().out
    assert main(["ingest", "transactions", "--dir", str(root)]) == 0
    assert "unchanged" in capsys.readouterr().out

    assert main(["profile", "transactions", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "amount" in out and "profile written to" in out
    written = list((root / ".loopml" / "profiles" / "transactions").glob("*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["rows"] == 500

    assert main(["validate", "transactions", "--dir", str(root)]) == 0
    assert "no problems found" in capsys.readouterr().out

    drifted = _transactions(300, seed=1)
    drifted.loc[5, "amount"] = 1e6
    drifted.loc[7, "country"] = "br"
    drifted.to_csv(root / "transactions.csv", index=False)
    assert main(["ingest", "--all", "--dir", str(root)]) == 0
    capsys.readouterr()
    assert main(["validate", "transactions", "--dir", str(root)]) == 1
    captured = capsys.readouterr()
    out = captured.out
    assert "2 data problem(s) found" in captured.err
    assert "out_of_range" not in out  # the report prints messages, not codes
    assert "1000000.0 is outside the range" in out and "'br' is not one of" in out
    assert "2 problem(s) found" in out
    first = list_snapshots(Workspace.open(root), "transactions")[0].version
    assert main(["validate", "transactions", "--version", first, "--dir", str(root)]) == 0


def test_init_with_naive_timestamps_declares_utc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _transactions(50, seed=2)
    frame["event_time"] = frame["event_time"].dt.tz_localize(None)
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert (
        main(["init", str(tmp_path / "t.csv"), "--dir", str(tmp_path), "--target", "amount"]) == 0
    )
    out = capsys.readouterr().out
    assert "without a time zone" in out and "task regression" in out
    assert Workspace.open(tmp_path).config.sources["t"].timezone == "UTC"
    assert main(["ingest", "t", "--dir", str(tmp_path)]) == 0


def test_usage_and_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _transactions(20, seed=3).to_csv(tmp_path / "t.csv", index=False)
    assert main(["init", str(tmp_path / "t.csv"), "--dir", str(tmp_path), "--target", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "loopml.yaml").exists()
    assert main(["init", str(tmp_path / "missing.csv"), "--dir", str(tmp_path)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "t.csv"), "--dir", str(tmp_path)]) == 0
    assert main(["profile", "t", "--dir", str(tmp_path)]) == 2  # no snapshot yet
    assert "loopml ingest t" in capsys.readouterr().err
    assert main(["ingest", "t", "--dir", str(tmp_path)]) == 0
    outside = tmp_path.parent / "outside-profile.json"
    assert main(["profile", "t", "--out", str(outside), "--dir", str(tmp_path)]) == 2
    assert "outside the workspace" in capsys.readouterr().err and not outside.exists()
    (tmp_path / "loopml.yaml").write_text("project: p\nsourcs: {}\n")
    assert main(["ingest", "--all", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "loopml.yaml:2" in err and "did you mean 'sources'" in err


def test_failed_ingest_exits_1_and_leaves_the_lake_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    assert main(["init", str(tmp_path / "t.csv"), "--dir", str(tmp_path)]) == 0
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4,5\n")
    assert main(["ingest", "t", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "t.csv, line 3: 3 fields where the header has 2" in err
    assert list((tmp_path / ".loopml" / "lake").rglob("*")) == []
