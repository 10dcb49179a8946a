"""``loopml data split | check-leakage | sample | label-delay`` on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.cli import main
from loopml.core import Config, Workspace


def _write(tmp_path: Path, n: int = 2000, leak: bool = False) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "t": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="h"),
            "x": rng.normal(size=n),
            "y": rng.integers(0, 2, n),
        }
    )
    if leak:
        frame["label_copy"] = frame["y"]
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path)
    return path


def test_split_writes_three_files_and_a_record(tmp_path: Path) -> None:
    data = _write(tmp_path)
    out = tmp_path / "split"
    code = main(
        [
            "data",
            "split",
            str(data),
            "--out",
            str(out),
            "--target",
            "y",
            "--timestamp",
            "t",
            "--validation",
            "7d",
            "--test",
            "7d",
            "--gap",
            "1d",
        ]
    )
    assert code == 0
    parts = {p: pd.read_parquet(out / f"{p}.parquet") for p in ("train", "validation", "test")}
    assert len(parts["test"]) == 7 * 24 and len(parts["validation"]) == 7 * 24
    assert parts["train"]["t"].max() < parts["validation"]["t"].min()
    record = json.loads((out / "split.json").read_text())
    assert record["split"]["boundaries"]["gap"] == "1d"
    assert record["leakage"]["test"]["ok"] is True


def test_split_refuses_a_leaky_file_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path, leak=True)
    out = tmp_path / "split"
    code = main(
        ["data", "split", str(data), "--out", str(out), "--target", "y", "--timestamp", "t"]
    )
    assert code == 1
    assert "label_copy" in capsys.readouterr().err
    assert not out.exists()


def test_split_reads_acknowledgements_and_defaults_from_the_workspace(tmp_path: Path) -> None:
    data = _write(tmp_path, leak=True)
    config = Config.model_validate(
        {
            "project": "demo",
            "split": {"test": "3d", "validation": "3d"},
            "acknowledge": ["single_feature_predicts_label:label_copy"],
        }
    )
    Workspace.create(tmp_path / "ws", config)
    out = tmp_path / "split"
    code = main(
        [
            "data",
            "split",
            str(data),
            "--out",
            str(out),
            "--target",
            "y",
            "--timestamp",
            "t",
            "--dir",
            str(tmp_path / "ws"),
        ]
    )
    assert code == 0
    assert len(pd.read_parquet(out / "test.parquet")) == 3 * 24


def test_check_leakage_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_parquet(_write(tmp_path))
    frame.iloc[:1500].to_parquet(tmp_path / "train.parquet")
    frame.iloc[1000:].to_parquet(tmp_path / "test.parquet")  # overlaps in time
    args = [
        "data",
        "check-leakage",
        str(tmp_path / "train.parquet"),
        str(tmp_path / "test.parquet"),
        "--target",
        "y",
        "--timestamp",
        "t",
    ]
    assert main([*args, "--json", str(tmp_path / "r.json")]) == 1
    assert "temporal_overlap" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is False
    assert (
        main(
            [
                *args,
                "--ack",
                "temporal_overlap",
                "--ack",
                "exact_duplicates",
                "--ack",
                "id_overlap",
                "--ack",
                "near_duplicates",
            ]
        )
        == 0
    )
    assert main([*args, "--ack", "temporal_overlapp"]) == 2


def test_sample_methods(tmp_path: Path) -> None:
    data = _write(tmp_path)
    for method, extra in (
        ("simple", ["--n", "100"]),
        ("stratified", ["--frac", "0.1", "--by", "y"]),
        ("reservoir", ["--n", "50"]),
    ):
        out = tmp_path / f"{method}.parquet"
        assert (
            main(["data", "sample", str(data), "--out", str(out), "--method", method, *extra]) == 0
        )
        sample = pd.read_parquet(out)
        assert len(sample) == {"simple": 100, "stratified": 200, "reservoir": 50}[method]
    original = pd.read_parquet(data)
    kept = pd.read_parquet(tmp_path / "reservoir.parquet")
    assert kept["t"].isin(original["t"]).all() and kept["t"].is_unique
    assert (
        main(
            [
                "data",
                "sample",
                str(data),
                "--out",
                str(tmp_path / "x.parquet"),
                "--method",
                "stratified",
            ]
        )
        == 2
    )
    assert (
        main(
            ["data", "sample", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x.parquet")]
        )
        == 2
    )


def test_label_delay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    predictions = pd.DataFrame({"id": range(100), "at": t0 + pd.to_timedelta(range(100), "h")})
    labels = pd.DataFrame(
        {"id": range(0, 100, 2), "seen": predictions["at"].iloc[::2] + pd.Timedelta("2D")}
    )
    predictions.to_csv(tmp_path / "p.csv", index=False)
    labels.to_csv(tmp_path / "l.csv", index=False)
    code = main(
        [
            "data",
            "label-delay",
            str(tmp_path / "p.csv"),
            str(tmp_path / "l.csv"),
            "--key",
            "id",
            "--prediction-time",
            "at",
            "--label-time",
            "seen",
            "--now",
            "2024-03-01T00:00:00+00:00",
            "--json",
            str(tmp_path / "d.json"),
        ]
    )
    assert code == 0
    assert "suggested feedback window (95% of labels): 2d" in capsys.readouterr().out
    assert json.loads((tmp_path / "d.json").read_text())["quantiles"]["p50"] == "2d"


def test_bad_split_options_name_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write(tmp_path)
    base = ["data", "split", str(data), "--out", str(tmp_path / "o"), "--target", "y"]
    assert main([*base, "--by", "shuffle"]) == 2
    assert "--by: must be one of time" in capsys.readouterr().err
    assert main([*base, "--timestamp", "t", "--test", "a fortnight"]) == 2
    assert "--test: must be a fraction like 0.15 or a duration" in capsys.readouterr().err
    assert main([*base, "--by", "random", "--test", "7d"]) == 2
    assert "durations need a time split" in capsys.readouterr().err
    assert main([*base]) == 2
    assert "needs the 'timestamp' column" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_label_delay_bad_now(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pd.DataFrame({"id": [1], "at": [pd.Timestamp("2024-01-01", tz="UTC")]}).to_csv(
        tmp_path / "p.csv", index=False
    )
    args = [
        "data",
        "label-delay",
        str(tmp_path / "p.csv"),
        str(tmp_path / "p.csv"),
        "--key",
        "id",
        "--prediction-time",
        "at",
        "--label-time",
        "at",
    ]
    assert main([*args, "--now", "yesterday"]) == 2
    assert "ISO time" in capsys.readouterr().err
    assert main([*args, "--now", "2024-03-01T00:00:00"]) == 1  # no time zone
    assert "time zone" in capsys.readouterr().err
