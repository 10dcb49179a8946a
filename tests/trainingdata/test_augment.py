"""Augmentation: labels kept, noise scaled per feature, swaps within groups, traceable rows
that never cross into validation or test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, DataError
from loopml.trainingdata import augment_split, make_split, mixup, perturb, synthesize_text


def _frame(n: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "age": rng.integers(18, 90, n),
            "ratio": rng.normal(0, 0.01, n),
            "city": rng.choice(["NYC", "Boston", "LA", "SF", "Austin"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def test_perturb_scales_noise_to_each_feature_and_keeps_labels() -> None:
    frame = _frame()
    out = perturb(frame, target="y", noise=0.1, copies=3, seed=1)
    assert len(out) == 3 * len(frame)
    source = frame.loc[out["source_row"]].reset_index(drop=True)
    assert (out["y"] == source["y"]).all()
    for column in ("income", "ratio"):
        moved = (out[column] - source[column]).std()
        assert abs(moved / frame[column].std() - 0.1) < 0.01
    assert out["age"].dtype == frame["age"].dtype
    assert out["augmented"].all()


def test_category_swaps_stay_inside_declared_groups() -> None:
    frame = _frame()
    groups = {"city": [["NYC", "Boston"], ["LA", "SF"]]}
    out = perturb(frame, target="y", category_groups=groups, swap_probability=0.5, seed=2)
    source = frame.loc[out["source_row"], "city"].to_numpy()
    group_of = {"NYC": 0, "Boston": 0, "LA": 1, "SF": 1, "Austin": 2}
    assert all(group_of[a] == group_of[b] for a, b in zip(source, out["city"], strict=True))
    changed = source != out["city"].to_numpy()
    swappable = np.isin(source, ["NYC", "Boston", "LA", "SF"])
    assert abs(changed[swappable].mean() - 0.5) < 0.05
    assert not changed[~swappable].any()
    with pytest.raises(ConfigError, match="two category groups"):
        perturb(frame, category_groups={"city": [["NYC", "LA"], ["LA", "SF"]]})
    with pytest.raises(ConfigError, match="'town'"):
        perturb(frame, category_groups={"town": [["a", "b"]]})


def test_mixup_mixes_features_and_labels_with_the_same_lambda() -> None:
    frame = _frame(300)
    out = mixup(frame, target="y", alpha=0.4, n=500, seed=3)
    a = frame.loc[out["source_row"]].reset_index(drop=True)
    b = frame.loc[out["source_row_2"]].reset_index(drop=True)
    lam = out["mix_lambda"]
    for column in ("income", "y"):
        assert np.allclose(out[column], lam * a[column] + (1 - lam) * b[column])
    city = np.where(lam >= 0.5, a["city"], b["city"])
    assert (out["city"].to_numpy() == city).all()
    assert abs(lam.mean() - 0.5) < 0.05
    with pytest.raises(ConfigError, match="must be numeric"):
        mixup(frame.assign(y=frame["y"].astype(str)), target="y")


def test_text_templates_fill_slots_and_keep_labels() -> None:
    templates = {
        "find_restaurant": ["Find me a [CUISINE] restaurant within [NUMBER] miles of [LOCATION]"],
        "book_table": ["Book a table for [NUMBER] at a [CUISINE] place"],
    }
    slots = {
        "CUISINE": ["Thai", "Greek", "Vietnamese"],
        "NUMBER": ["2", "5"],
        "LOCATION": ["Oslo", "Lagos"],
    }
    out = synthesize_text(templates, slots, n=200, seed=4)
    assert len(out) == 200 and set(out["label"]) == set(templates)
    booked = out[out["label"] == "book_table"].iloc[0]
    assert booked["text"] == f"Book a table for {booked['NUMBER']} at a {booked['CUISINE']} place"
    assert not out["text"].str.contains(r"\[").any()
    distinct = synthesize_text(templates, slots, n=18, unique=True, seed=5)
    assert distinct["text"].is_unique  # 12 + 6 possible sentences
    with pytest.raises(DataError, match="distinct"):
        synthesize_text(templates, slots, n=19, unique=True)
    with pytest.raises(ConfigError, match=r"\[LOCATION\]"):
        synthesize_text(templates, {"CUISINE": ["Thai"], "NUMBER": ["1"]}, n=1)


@pytest.mark.parametrize("augmenter", [perturb, mixup])
def test_augmented_rows_never_cross_the_split(augmenter: object) -> None:
    frame = _frame(500)
    split = make_split(frame, by="random", validation=0.2, test=0.2, seed=6)
    train, valid, test = augment_split(frame, split, augmenter, target="y")  # type: ignore[arg-type]
    assert valid.equals(frame.iloc[split.validation]) and test.equals(frame.iloc[split.test])
    new = train[train["augmented"]]
    assert len(new) > 0
    assert new["source_row"].isin(split.train).all()
    if "source_row_2" in new:
        assert new["source_row_2"].dropna().isin(split.train).all()
    originals = train[~train["augmented"]]
    assert originals["source_row"].tolist() == split.train.tolist()


def test_an_augmenter_that_reaches_outside_train_is_refused() -> None:
    frame = _frame(100)
    split = make_split(frame, by="random", validation=0.2, test=0.2)

    def cheat(train: pd.DataFrame) -> pd.DataFrame:
        return frame.iloc[split.test].assign(source_row=split.test, augmented=True)

    with pytest.raises(DataError, match="outside the training split"):
        augment_split(frame, split, cheat)
