"""The transformers pass scikit-learn's own estimator checks and do what they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from loopml.core import ConfigError
from loopml.features import transformers as T

ALL = [
    T.MissingIndicatorImputer(),
    T.MissingIndicatorImputer(strategy="constant"),
    T.MissingIndicatorImputer(strategy="most_frequent"),
    T.FeatureScaler(),
    T.FeatureScaler(method="robust"),
    T.FeatureScaler(method="minmax"),
    T.SkewTransformer(),
    T.SkewTransformer(method="box-cox"),
    T.Discretizer(),
    T.HashingEncoder(n_features=32),
    T.FeatureCrosser(),
    T.FeatureCrosser(hash_space=4),
    T.CyclicalEncoder(),
    T.TimeEncoder(),
    T.PositionalEmbedding(),
]


@parametrize_with_checks(ALL)
def test_sklearn_contract(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


def test_imputer_fits_on_train_only_and_flags_missing() -> None:
    train = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, np.nan], [100.0, 40.0]])
    imputer = T.MissingIndicatorImputer(strategy="mean").fit(train)
    np.testing.assert_allclose(imputer.statistics_, [26.5, 70.0 / 3])
    out = imputer.transform(np.array([[np.nan, np.nan]]))
    np.testing.assert_allclose(out, [[26.5, 70.0 / 3, 1.0]])  # only column 1 had missing in fit
    sentinel = T.MissingIndicatorImputer(strategy="constant").fit(train).statistics_
    assert np.all(sentinel < np.nanmin(train, axis=0))  # never a value that could be real


def test_scalers_recover_known_moments() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(20_000, 1))
    Z = T.FeatureScaler().fit_transform(X)
    assert abs(Z.mean()) < 1e-9 and abs(Z.std() - 1) < 1e-9
    R = T.FeatureScaler(method="robust").fit_transform(X)
    assert abs(np.median(R)) < 1e-9
    assert abs(np.subtract(*np.percentile(R, [75, 25])) - 1) < 1e-9


def test_box_cox_reduces_skew_of_lognormal() -> None:
    from scipy import stats

    rng = np.random.default_rng(1)
    X = rng.lognormal(0.0, 1.0, size=(5_000, 1))
    before = stats.skew(X.ravel())  # about 6 for lognormal(0, 1)
    log = T.SkewTransformer(method="log").fit_transform(X)
    assert 0 < stats.skew(log.ravel()) < before / 4
    boxcox = T.SkewTransformer(method="box-cox").fit_transform(X)
    assert abs(stats.skew(boxcox.ravel())) < 0.25  # the +1 shift keeps it from exactly 0


def test_discretizer_quantile_bins_are_balanced() -> None:
    X = np.random.default_rng(2).exponential(size=(10_000, 1))
    codes = T.Discretizer(n_bins=4).fit_transform(X).ravel()
    counts = np.bincount(codes.astype(int))
    assert len(counts) == 4 and np.all(np.abs(counts - 2_500) < 50)


def test_hashing_collision_rate_matches_theory() -> None:
    n_categories, space = 2_000, 1_024
    X = np.array([f"merchant_{i}" for i in range(n_categories)], dtype=object)[:, None]
    encoder = T.HashingEncoder(n_features=space).fit(X)
    # a category collides unless the other n-1 all miss its bucket
    expected = 1 - (1 - 1 / space) ** (n_categories - 1)
    assert abs(encoder.collision_rate_ - expected) < 0.05
    assert encoder.n_categories_ == n_categories
    wide = T.HashingEncoder(n_features=2**20).fit(X)
    assert wide.collision_rate_ < 0.01
    unseen = encoder.transform(np.array([["never_seen"]], dtype=object))
    assert unseen.sum() == 1.0  # an unseen category still gets a bucket, no refit


def test_hashing_is_stable_across_processes() -> None:
    import subprocess
    import sys

    code = "from loopml.features.transformers import hash_values; print(hash_values(['a','b'], 97).tolist())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(T.hash_values(["a", "b"], 97).tolist())


def test_hashed_cross_separates_pairs() -> None:
    X = np.array([["a", "x"], ["a", "y"], ["b", "x"]], dtype=object)
    out = T.FeatureCrosser(hash_space=64).fit_transform(X)
    assert out.shape == (3, 64) and np.all(out.sum(axis=1) == 1)
    assert len({tuple(row) for row in out}) == 3


def test_cyclical_encoder_puts_midnight_next_to_2300() -> None:
    encoder = T.CyclicalEncoder(period=24).fit(np.arange(24.0)[:, None])
    z = encoder.transform(np.array([[23.0], [0.0], [12.0]]))
    assert np.linalg.norm(z[0] - z[1]) < np.linalg.norm(z[1] - z[2]) / 5


def test_time_encoder_reads_aware_timestamps() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-03-04 00:00", "2024-03-10 18:00"], utc=True)})
    encoder = T.TimeEncoder(components=("hour", "day_of_week")).fit(frame)
    out = encoder.transform(frame)
    # 2024-03-04 is a Monday (weekday 0): sin 0, cos 1; Sunday 18h: hour angle 3/4 turn
    np.testing.assert_allclose(out[0], [0, 1, 0, 1], atol=1e-12)
    np.testing.assert_allclose(out[1, :2], [-1, 0], atol=1e-12)
    np.testing.assert_allclose(out[1, 2:], [np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7)])
    assert list(encoder.get_feature_names_out()) == [
        "t_hour_sin",
        "t_hour_cos",
        "t_day_of_week_sin",
        "t_day_of_week_cos",
    ]


def test_positional_embedding_dot_product_decays_with_distance() -> None:
    emb = T.PositionalEmbedding(dim=64).fit(np.zeros((1, 1)))
    e = emb.transform(np.arange(0.0, 50.0)[:, None])
    sims = e[1:] @ e[0]
    assert sims[0] > sims[10] > sims[40]


@pytest.mark.parametrize(
    ("estimator", "name"),
    [
        (T.FeatureScaler(method="zscore"), "method"),
        (T.MissingIndicatorImputer(strategy="mode"), "strategy"),
        (T.Discretizer(n_bins=1), "n_bins"),
        (T.PositionalEmbedding(dim=3), "dim"),
    ],
)
def test_bad_parameters_say_which(estimator, name) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=f"The '{name}' parameter of"):
        estimator.fit(np.ones((3, 1)))
