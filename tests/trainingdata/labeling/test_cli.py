"""``loopml label ...`` end to end on files, through the real command line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.cli import main

LFS = textwrap.dedent(
    """
    from loopml.trainingdata.labeling import (
        ABSTAIN, keyword_lf, labeling_function, regex_lf,
    )

    my = keyword_lf("text", ["my channel", "my video"], 1, name="keyword_my")
    subscribe = keyword_lf("text", ["subscribe"], 1, name="subscribe")
    link = regex_lf("text", r"https?://|www\\.", 1, name="link")
    check_out = regex_lf("text", r"check (it|this|my|out)", 1, name="check_out")

    @labeling_function
    def short(row):
        return 0 if len(row.text.split()) < 4 else ABSTAIN

    @labeling_function
    def song(row):
        return 0 if "song" in row.text.lower() else ABSTAIN
    """
)


@pytest.fixture
def comments(youtube, tmp_path: Path) -> Path:
    _, y, texts = youtube["train"]
    path = tmp_path / "comments.parquet"
    pd.DataFrame({"text": texts, "label": y}).to_parquet(path)
    return path


def test_apply_analyze_fit_query(comments: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "lfs.py").write_text(LFS)
    L_path = tmp_path / "L.parquet"
    code = main(
        [
            "label",
            "apply",
            str(comments),
            "--lfs",
            str(tmp_path / "lfs.py"),
            "--out",
            str(L_path),
            "--cardinality",
            "2",
            "--jobs",
            "2",
        ]
    )
    assert code == 0
    L = pd.read_parquet(L_path)
    assert list(L.columns) == ["keyword_my", "subscribe", "link", "check_out", "short", "song"]
    assert str(L.dtypes.iloc[0]) == "int8"
    assert "coverage" in capsys.readouterr().out

    report = tmp_path / "lf.html"
    assert (
        main(["label", "analyze", str(L_path), "--gold", str(comments), "--report", str(report)])
        == 0
    )
    out = capsys.readouterr().out
    assert "accuracy" in out and "link" in out and "<table" in report.read_text()

    labels_path = tmp_path / "labels.parquet"
    assert (
        main(
            [
                "label",
                "fit",
                str(L_path),
                "--out",
                str(labels_path),
                "--model",
                "dawid-skene",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    labels = pd.read_parquet(labels_path)
    assert list(labels.columns) == ["proba_0", "proba_1", "label", "keep"]
    gold = pd.read_parquet(comments)["label"].to_numpy()
    kept = labels["keep"].to_numpy() & (labels["label"].to_numpy() != -1)
    assert (labels["label"].to_numpy()[kept] == gold[kept]).mean() > 0.75
    assert "seed 3" in capsys.readouterr().out

    assert main(["label", "query", str(labels_path), "--batch-size", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6
    first_row = int(lines[1].split()[1])
    assert abs(labels.loc[first_row, "proba_0"] - 0.5) < 0.05  # the most uncertain row


def test_errors_command_ranks_flipped_labels(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = np.where(X[:, 0] + X[:, 1] > 0, "spam", "ham")
    flipped = rng.choice(600, 30, replace=False)
    y[flipped] = np.where(y[flipped] == "spam", "ham", "spam")
    path = tmp_path / "rows.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y}).to_csv(path, index=False)
    out = tmp_path / "errors.csv"
    assert main(["label", "errors", str(path), "--out", str(out)]) == 0
    report = pd.read_csv(out)
    assert set(report["given_label"]) <= {"spam", "ham"}
    assert np.isin(report["row"].head(20), flipped).mean() > 0.8
    assert "likely label errors" in capsys.readouterr().out


def test_bad_input_exit_codes(tmp_path: Path, capsys) -> None:
    frame = tmp_path / "rows.csv"
    pd.DataFrame({"text": ["a", None], "label": [1, None]}).to_csv(frame, index=False)
    (tmp_path / "none.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text(
        "from loopml.trainingdata.labeling import labeling_function\n"
        "@labeling_function\ndef upper(row):\n    return 1 if row.text.isupper() else -1\n"
    )
    L = tmp_path / "L.csv"
    assert (
        main(["label", "apply", str(frame), "--lfs", str(tmp_path / "none.py"), "--out", str(L)])
        == 2
    )
    assert "defines no labeling function" in capsys.readouterr().err
    assert (
        main(["label", "apply", str(frame), "--lfs", str(tmp_path / "broken.py"), "--out", str(L)])
        == 1
    )
    assert "'upper' raised AttributeError" in capsys.readouterr().err and not L.exists()
    pd.DataFrame({"a": [0, 5]}).to_csv(L, index=False)
    assert (
        main(["label", "fit", str(L), "--out", str(tmp_path / "o.csv"), "--cardinality", "2"]) == 1
    )
    assert "value 5 at row 1" in capsys.readouterr().err
    assert (
        main(["label", "fit", str(L), "--out", str(tmp_path / "o.csv"), "--model", "snorkel"]) == 2
    )
    assert main(["label", "errors", str(frame)]) == 1
    assert "empty at row 1" in capsys.readouterr().err
    assert main(["label", "analyze", str(tmp_path / "missing.parquet")]) == 2
