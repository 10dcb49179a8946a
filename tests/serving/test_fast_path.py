"""LightGBM's single-row C path gives the same numbers as ``Booster.predict``, from any thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from loopml.serving import SingleRowBooster


@pytest.mark.parametrize("objective", ["binary", "multiclass", "regression"])
def test_single_row_path_is_bit_exact(objective: str) -> None:
    import lightgbm

    rng = np.random.default_rng(4)
    X = rng.normal(size=(1_500, 8))
    X[:, 7] = rng.integers(0, 6, size=1_500)
    X[::9, 2] = np.nan
    y = {
        "binary": X[:, 0] > 0,
        "multiclass": np.digitize(X[:, 0], [-0.5, 0.5]),
        "regression": X[:, 0] * 2 + X[:, 7],
    }[objective]
    params = {"objective": objective, "verbose": -1, "num_threads": 1, "seed": 0}
    if objective == "multiclass":
        params["num_class"] = 3
    booster = lightgbm.train(params, lightgbm.Dataset(X, y, categorical_feature=[7]), 40)
    fast = SingleRowBooster(booster)
    rows = np.vstack([fast(X[i : i + 1]) for i in range(len(X))])
    expected = booster.predict(X).reshape(len(X), -1)
    assert np.array_equal(rows, expected)
    assert np.array_equal(fast(X[:10]).reshape(10, -1), expected[:10])  # batches: predict()
    unseen = X[:1].copy()
    unseen[0, 7] = 99.0  # a category never seen in training
    assert np.array_equal(fast(unseen).ravel(), booster.predict(unseen).ravel())


def test_single_row_path_from_many_threads() -> None:
    import lightgbm

    rng = np.random.default_rng(5)
    X = rng.normal(size=(2_000, 5))
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1}, lightgbm.Dataset(X, X[:, 1] > 0), 30
    )
    fast = SingleRowBooster(booster)
    expected = booster.predict(X)
    wrong: list[int] = []

    def work(offset: int) -> None:
        for i in range(offset, len(X), 4):
            if fast(X[i : i + 1])[0] != expected[i]:
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
