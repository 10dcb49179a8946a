"""Loaders for the real datasets in ../shared/datasets (skipped when the folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, NotFoundError
from loopml.datasets import (
    YOUTUBE_LABELING_FUNCTIONS,
    datasets_dir,
    load_elec2,
    load_open_bandit,
    load_sea,
    load_youtube_spam,
)


@pytest.fixture
def shared(datasets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPML_DATASETS", str(datasets_dir))
    return datasets_dir


def test_elec2(shared: Path) -> None:
    frame = load_elec2()
    assert len(frame) == 45_312
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].iloc[0] == pd.Timestamp("1996-05-07", tz="UTC")
    assert set(frame["label"].unique()) == {0, 1}
    raw = pd.read_csv(shared / "elec2" / "elec2.csv", usecols=["label"])
    assert (frame["label"] == (raw["label"] == "UP")).all()
    # The label is "price above its 24 h mean", so it persists: River's last-label baseline.
    assert abs((frame["label"].shift() == frame["label"]).mean() - 0.853) < 0.01


def test_sea(shared: Path) -> None:
    frame = load_sea()
    assert len(frame) == 50_000 and list(frame.columns) == ["f1", "f2", "f3", "label", "concept"]
    changes = np.flatnonzero(frame["concept"].diff().fillna(0).to_numpy() != 0)
    assert list(changes) == [12_500, 25_000, 37_500]
    assert set(frame["label"].unique()) == {0, 1}


def test_youtube_spam(shared: Path) -> None:
    sizes = {"train": 1686, "valid": 120, "test": 250}
    for split, size in sizes.items():
        frame, votes = load_youtube_spam(split)
        assert len(frame) == size and votes.shape == (size, len(YOUTUBE_LABELING_FUNCTIONS))
        assert votes.dtype == np.int64 and set(np.unique(votes)) <= {-1, 0, 1}
        assert set(frame["label"].unique()) == {0, 1}
        assert frame["text"].str.len().gt(0).all()
    frame, votes = load_youtube_spam("test")
    # Majority vote over the non-abstaining LFs: the README's reference is about 0.81-0.84.
    spam, ham = (votes == 1).sum(axis=1), (votes == 0).sum(axis=1)
    rng = np.random.default_rng(0)
    vote = np.where(spam > ham, 1, np.where(ham > spam, 0, rng.integers(0, 2, len(votes))))
    assert 0.75 < (vote == frame["label"].to_numpy()).mean() < 0.9


def test_open_bandit(shared: Path) -> None:
    for policy in ("random", "bts"):
        logs, items = load_open_bandit(policy)
        assert len(logs) == 10_000 and len(items) == 80
        assert str(logs["timestamp"].dt.tz) == "UTC"
        assert "user_item_affinity_79" in logs.columns and not any("-" in c for c in logs.columns)
        assert set(logs["item_id"]) <= set(items["item_id"])
        assert logs["position"].isin([1, 2, 3]).all()
        assert set(logs["click"].unique()) <= {0, 1}
    random_logs, _ = load_open_bandit("random")
    assert np.allclose(random_logs["propensity_score"], 1 / 80)


def test_bad_arguments_name_the_parameter(shared: Path) -> None:
    with pytest.raises(ConfigError, match="'policy' parameter of load_open_bandit"):
        load_open_bandit("greedy")
    with pytest.raises(ConfigError, match="'split' parameter of load_youtube_spam"):
        load_youtube_spam("dev")


def test_missing_folder_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DATASETS", str(tmp_path / "nope"))
    with pytest.raises(NotFoundError, match="LOOPML_DATASETS"):
        load_sea()
    monkeypatch.delenv("LOOPML_DATASETS")
    monkeypatch.chdir(tmp_path)
    try:
        found = datasets_dir()  # found beside the installed package (a source checkout)
    except NotFoundError as error:
        assert str(tmp_path / "shared" / "datasets") in str(error)
    else:
        assert found.name == "datasets" and (found.parent.name == "shared")


def test_found_from_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPML_DATASETS", raising=False)
    (tmp_path / "shared" / "datasets" / "sea").mkdir(parents=True)
    (tmp_path / "shared" / "datasets" / "sea" / "sea.csv").write_text(
        "index,f1,f2,f3,label,concept\n0,1.0,2.0,3.0,1,0\n"
    )
    inner = tmp_path / "repo" / "src"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    assert datasets_dir() == tmp_path / "shared" / "datasets"
    assert load_sea()["label"].tolist() == [1]


def test_incomplete_folder_names_the_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_DATASETS", str(tmp_path))
    with pytest.raises(NotFoundError, match="elec2.csv"):
        load_elec2()
    (tmp_path / "elec2").mkdir()
    (tmp_path / "elec2" / "elec2.csv").write_text("timestamp,nswprice,label\n2020-01-01,0.1,UPP\n")
    with pytest.raises(Exception, match="row 2, column 'label'"):
        load_elec2()
