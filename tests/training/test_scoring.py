"""Scoring without waste: validation and test scores held by LightGBM, binary metrics from
one sort. Both must equal what predicting again / scikit-learn give."""

from __future__ import annotations

import numpy as np
import pytest

from loopml.training._candidates import fit_lightgbm
from loopml.training._metrics import METRICS, evaluate, score


def _data(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values take LightGBM's default branch
    logit = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1] * X[:, 2])
    if classes == 2:
        y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    else:
        y = np.digitize(logit + rng.normal(size=n), [-0.5, 0.5]).astype(np.int64)
    return X, y


@pytest.mark.parametrize(
    ("task", "classes"),
    [("binary_classification", 2), ("multiclass_classification", 3), ("regression", 0)],
)
def test_held_validation_and_test_scores_equal_a_second_prediction(task: str, classes: int) -> None:
    X, y = _data(4_000, max(classes, 2))
    if task == "regression":
        y = y + X[:, 3].round(1)
    scores: dict[str, np.ndarray] = {}
    booster, used = fit_lightgbm(
        task,
        {"num_boost_round": 40, "learning_rate": 0.02},
        X[:2000],
        y[:2000].astype(np.float64) if task == "regression" else y[:2000],
        X[2000:3000],
        y[2000:3000],
        categorical=[],
        n_classes=max(classes, 1),
        seed=0,
        validation_scores=scores,
        test=(X[3000:], y[3000:]),
    )
    assert used["best_iteration"] == 40  # no early stop in 40 rounds on this signal
    for name, rows in (("validation", slice(2000, 3000)), ("test", slice(3000, None))):
        again = booster.predict(X[rows])
        assert scores[name].shape == again.shape
        np.testing.assert_allclose(scores[name], again, rtol=0, atol=1e-12)


def test_early_stopped_fit_holds_the_scores_of_the_kept_trees() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(3_000, 3)), rng.integers(0, 2, size=3_000)  # no signal: stops early
    X[:, 0] += y * 0.05  # a little, so that a few trees help before the rest overfit
    scores: dict[str, np.ndarray] = {}
    booster, used = fit_lightgbm(
        "binary_classification",
        {"num_boost_round": 200, "early_stopping_rounds": 5},
        X[:1500],
        y[:1500],
        X[1500:2200],
        y[1500:2200],
        categorical=[],
        n_classes=2,
        seed=0,
        validation_scores=scores,
        test=(X[2200:], y[2200:]),
    )
    assert used["best_iteration"] < 200
    assert booster.num_trees() == used["best_iteration"]  # the model of the best iteration
    # rolled back to the kept trees: the held scores are the kept model's, not the last one's
    np.testing.assert_allclose(scores["validation"], booster.predict(X[1500:2200]), atol=1e-12)
    np.testing.assert_allclose(scores["test"], booster.predict(X[2200:]), atol=1e-12)


def test_test_rows_play_no_part_in_the_fit() -> None:
    X, y = _data(3_000, 2)
    fits = []
    for test in (None, (X[2500:], 1 - y[2500:])):  # flipped test labels change nothing
        booster, used = fit_lightgbm(
            "binary_classification",
            {"num_boost_round": 300, "early_stopping_rounds": 10},
            X[:2000],
            y[:2000],
            X[2000:2500],
            y[2000:2500],
            categorical=[],
            n_classes=2,
            seed=0,
            validation_scores={},
            test=test,
        )
        fits.append((booster.model_to_string(), used["best_iteration"]))
    assert fits[0] == fits[1]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [4, 97, 20_000])
def test_one_sort_binary_metrics_match_scikit_learn(n: int, ties: bool) -> None:
    rng = np.random.default_rng(n)
    y = (rng.random(n) < 0.3).astype(np.int64)
    y[:2] = [0, 1]
    p = rng.random(n)
    if ties:
        p = np.round(p, 1)  # many tied scores: each tie is one threshold
    p[0] = 0.0  # clipped like scikit-learn's log loss input
    fast = evaluate("binary_classification", y, p)
    for metric in METRICS["binary_classification"]:
        assert fast[metric] == pytest.approx(
            score("binary_classification", metric, y, p), rel=1e-12, abs=1e-12
        ), metric


def test_binary_metrics_with_one_class_fall_back_to_scikit_learn() -> None:
    y, p = np.zeros(10, dtype=np.int64), np.linspace(0.1, 0.9, 10)
    with pytest.warns(Warning):  # scikit-learn's own warning for an undefined precision
        values = evaluate("binary_classification", y, p)
    assert np.isnan(values["roc_auc"])
    assert values["accuracy"] == pytest.approx(0.5)


def test_encoder_fit_on_rows_learns_categories_from_those_rows_only() -> None:
    import pandas as pd

    from loopml.training._encoding import FeatureEncoder

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "z", None]})
    encoder = FeatureEncoder.fit(frame, ["x", "c"], rows=np.array([0, 1, 3]))
    assert encoder == FeatureEncoder.fit(frame.iloc[[0, 1, 3]], ["x", "c"])
    assert encoder.features[1].categories == ("a", "b")  # 'z' is after the training rows
    assert np.isnan(encoder.transform(frame)[2, 1])
