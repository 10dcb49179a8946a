"""Class imbalance: weights, focal loss derivatives, and resampling that cannot leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError
from loopml.trainingdata import (
    FocalLoss,
    ResampledClassifier,
    check_leakage,
    class_weights,
    make_split,
    resample_training_split,
    sample_weights,
)


def test_effective_number_weights_match_cui_et_al() -> None:
    y = [0] * 1000 + [1] * 100 + [2] * 10
    beta = 0.99
    n = np.array([1000, 100, 10])
    effective = (1 - beta**n) / (1 - beta)
    expected = (1 / effective) / (1 / effective).sum() * 3
    got = class_weights(y, beta=beta)
    assert np.allclose([got[0], got[1], got[2]], expected)
    assert np.allclose(list(class_weights(y, beta=0.0).values()), [1, 1, 1])
    near_one = class_weights(y, beta=1 - 1e-9)
    inverse = class_weights(y, method="inverse_frequency")
    assert np.allclose(list(near_one.values()), list(inverse.values()), rtol=1e-4)
    assert sum(inverse.values()) == pytest.approx(3.0)
    weights = sample_weights(y, beta=beta)
    assert weights[0] == pytest.approx(expected[0]) and weights[-1] == pytest.approx(expected[2])
    with pytest.raises(ConfigError, match="'beta'"):
        class_weights(y, beta=1.0)
    with pytest.raises(ConfigError, match="'method'"):
        class_weights(y, method="sqrt")


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 0.0), (0.75, 0.5), (0.1, 5.0)])
def test_focal_gradient_and_hessian_match_numerical_differentiation(
    alpha: float, gamma: float
) -> None:
    loss = FocalLoss(alpha=alpha, gamma=gamma)
    raw = np.tile(np.linspace(-8, 8, 81), 2)
    y = np.repeat([0.0, 1.0], 81)
    h = 1e-4
    grad, hess = loss.gradient_hessian(y, raw)
    numeric_grad = (loss.loss(y, raw + h) - loss.loss(y, raw - h)) / (2 * h)
    numeric_hess = (loss.loss(y, raw + h) - 2 * loss.loss(y, raw) + loss.loss(y, raw - h)) / h**2
    assert np.allclose(grad, numeric_grad, rtol=1e-5, atol=1e-8)
    assert np.allclose(hess, numeric_hess, rtol=1e-3, atol=1e-6)


def test_focal_with_gamma_zero_is_weighted_log_loss() -> None:
    loss = FocalLoss(alpha=0.5, gamma=0.0)
    raw = np.linspace(-3, 3, 7)
    p = 1 / (1 + np.exp(-raw))
    assert np.allclose(loss.loss(np.ones(7), raw), -0.5 * np.log(p))
    with pytest.raises(ConfigError, match="'alpha'"):
        FocalLoss(alpha=1.5)


def test_focal_loss_trains_lightgbm_on_imbalanced_data() -> None:
    import lightgbm as lgb
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 5))
    y = (rng.random(6000) < 1 / (1 + np.exp(-(3 * X[:, 0] - 5)))).astype(int)  # ~3% positives
    loss = FocalLoss(alpha=0.75, gamma=2.0)
    train = lgb.Dataset(X[:4000], y[:4000], init_score=loss.init_score(y[:4000]))
    booster = lgb.train(
        {"objective": loss, "verbose": -1, "num_threads": 1, "num_leaves": 7},
        train,
        num_boost_round=60,
    )
    proba = loss.probability(booster.predict(X[4000:]) + loss.init_score(y[:4000])[0])
    assert roc_auc_score(y[4000:], proba) > 0.9


def _no_signal(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["y"] = (rng.random(n) < 0.08).astype(int)  # labels independent of the features
    return frame


def _auc_of(model: object, train: pd.DataFrame, test: pd.DataFrame) -> float:
    from sklearn.metrics import roc_auc_score

    features = ["a", "b", "c", "d"]
    model.fit(train[features], train["y"])  # type: ignore[attr-defined]
    return float(roc_auc_score(test["y"], model.predict_proba(test[features])[:, 1]))  # type: ignore[attr-defined]


def test_resampling_before_the_split_leaks_and_loopml_prevents_it() -> None:
    from imblearn.over_sampling import RandomOverSampler
    from sklearn.neighbors import KNeighborsClassifier

    frame = _no_signal()
    model = KNeighborsClassifier(n_neighbors=1)
    # the mistake: oversample the whole data set, then split
    X_over, y_over = RandomOverSampler(random_state=0).fit_resample(
        frame[["a", "b", "c", "d"]], frame["y"]
    )
    oversampled = X_over.assign(y=y_over)
    bad = make_split(oversampled, by="random", validation=0.0, test=0.3, seed=1)
    bad_train, _, bad_test = bad.frames(oversampled)
    leaked_auc = _auc_of(model, bad_train, bad_test)
    # the right way: split first, resample inside the training fold only
    good = make_split(frame, by="stratified", target="y", validation=0.0, test=0.3, seed=1)
    good_train, _, good_test = good.frames(frame)
    honest_auc = _auc_of(ResampledClassifier(model, "random_over"), good_train, good_test)
    assert leaked_auc > 0.8  # copies of test positives sit in train: 1-NN finds them
    assert abs(honest_auc - 0.5) < 0.1  # no signal, and the evaluation says so
    # and the leakage check names the mistake
    report = check_leakage(bad_train, bad_test, target="y", checks=["exact_duplicates"])
    assert report.severe and report.severe[0].check == "exact_duplicates"
    report = check_leakage(good_train, good_test, target="y", checks=["exact_duplicates"])
    assert report.ok


def test_resample_training_split_touches_only_train() -> None:
    frame = _no_signal(600)
    split = make_split(frame, by="stratified", target="y", validation=0.2, test=0.2)
    for method in ("random_over", "smote", "random_under"):
        train, valid, test = resample_training_split(frame, split, target="y", method=method)
        assert valid.equals(frame.iloc[split.validation])
        assert test.equals(frame.iloc[split.test])
        counts = train["y"].value_counts()
        assert counts[0] == counts[1]
        traced = train["source_row"][train["source_row"] >= 0]
        assert traced.isin(split.train).all()
        assert not traced.isin(np.r_[split.validation, split.test]).any()
        if method == "random_over":
            copies = frame.iloc[train["source_row"]][["a", "y"]].reset_index(drop=True)
            assert copies.equals(train[["a", "y"]])
        if method == "smote":
            minority = int((frame.iloc[split.train]["y"] == 1).sum())
            assert (train["source_row"] == -1).sum() == counts[1] - minority
    with pytest.raises(ConfigError, match="'method'"):
        resample_training_split(frame, split, target="y", method="magic")


def test_resampled_classifier_in_cross_validation() -> None:
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    frame = _no_signal()
    model = ResampledClassifier(LogisticRegression(), "smote", seed=3)
    assert clone(model).get_params()["method"] == "smote"
    scores = cross_val_score(
        model, frame[["a", "b", "c", "d"]], frame["y"], cv=4, scoring="roc_auc"
    )
    assert abs(scores.mean() - 0.5) < 0.1
