"""Profiles checked against NumPy ground truth; merging is exact where it promises to be."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.data import Profile, profile
from loopml.data._profile import QUANTILE_LEVELS


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0 + shift, 3.0, n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(-5, 50, n),
            "c": rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05]),
            "flag": rng.random(n) < 0.25,
            "t": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )


def test_numeric_statistics_match_numpy() -> None:
    frame = _frame(20_000, seed=1)
    result = profile(frame)
    x = frame["x"].to_numpy()
    values = x[~np.isnan(x)]
    column = result["x"]
    assert result.rows == 20_000
    assert (column.count, column.nulls) == (len(values), int(np.isnan(x).sum()))
    assert column.min == values.min() and column.max == values.max()
    assert column.mean == pytest.approx(values.mean(), rel=1e-12)
    assert column.std == pytest.approx(values.std(ddof=1), rel=1e-10)
    assert column.quantiles is not None and len(column.quantiles) == 101
    np.testing.assert_allclose(column.quantiles, np.quantile(values, QUANTILE_LEVELS), rtol=1e-12)
    assert column.histogram is not None
    edges = np.asarray(column.histogram["edges"])
    assert len(edges) == 31 and edges[0] == values.min() and edges[-1] == values.max()
    expected, _ = np.histogram(values, bins=edges)
    assert column.histogram["counts"] == expected.tolist()


def test_categorical_and_timestamp_columns() -> None:
    frame = _frame(5_000, seed=2)
    result = profile(frame)
    counts = frame["c"].value_counts().to_dict()
    assert result["c"].categories == {k: counts[k] for k in sorted(counts)}
    assert result["c"].nulls == int(frame["c"].isna().sum())
    flags = frame["flag"].value_counts()
    assert result["flag"].categories == {"false": int(flags[False]), "true": int(flags[True])}
    assert result["t"].kind == "timestamp"
    assert result["t"].min == frame["t"].min().isoformat()
    assert result["t"].max == frame["t"].max().isoformat()


def test_top_1000_categories_and_other() -> None:
    values = [f"v{i:04d}" for i in range(1500) for _ in range(2000 - i)]
    result = profile(pd.DataFrame({"v": values}))
    categories = result["v"].categories
    assert categories is not None and len(categories) == 1001
    assert categories["v0000"] == 2000 and categories["v0999"] == 1001
    assert "v1000" not in categories
    assert categories["__other__"] == sum(2000 - i for i in range(1000, 1500))


def test_a_parquet_file_and_its_frame_give_the_same_profile(tmp_path: Path) -> None:
    frame = _frame(30_000, seed=3)
    path = tmp_path / "f.parquet"
    frame.to_parquet(path, row_group_size=7_000)
    from_file, from_frame = profile(path).to_json(), profile(frame).to_json()
    assert from_file["rows"] == from_frame["rows"] == 30_000
    for name, column in from_file["columns"].items():
        other = from_frame["columns"][name]
        sums = ("mean", "std", "sum", "m2")  # parallel sums may add in another order
        assert {k: v for k, v in column.items() if k not in sums} == {
            k: v for k, v in other.items() if k not in sums
        }
        for key in sums:
            if key in column:
                assert column[key] == pytest.approx(other[key], rel=1e-12)


def test_merge_is_exact_for_counts_moments_and_histograms() -> None:
    a, b = _frame(8_000, seed=4), _frame(12_000, seed=5, shift=1.5)
    first = profile(a)
    second = profile(b, reference=first)
    both = pd.concat([a, b], ignore_index=True)
    truth = profile(both, reference=first)
    merged = first.merge(second)
    values = both["x"].dropna().to_numpy()
    column = merged["x"]
    assert merged.rows == 20_000 and column.count == len(values)
    assert column.mean == pytest.approx(values.mean(), rel=1e-12)
    assert column.std == pytest.approx(values.std(ddof=1), rel=1e-10)
    assert column.histogram == truth["x"].histogram
    assert merged["c"].categories == truth["c"].categories
    assert merged["k"].min == both["k"].min() and merged["k"].max == both["k"].max()
    # quantiles come from the merged histogram: within one bin of the truth, and flagged
    assert not column.quantiles_exact and column.quantiles is not None
    width = np.diff(column.histogram["edges"]).max()
    true_quantiles = np.quantile(values, QUANTILE_LEVELS)
    assert np.abs(np.asarray(column.quantiles) - true_quantiles)[1:-1].max() < width


def test_merge_refuses_histograms_on_different_edges() -> None:
    with pytest.raises(Exception, match="different edges"):
        profile(_frame(1000, seed=6)).merge(profile(_frame(1000, seed=7)))


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    result = profile(_frame(2_000, seed=8))
    path = result.save(tmp_path / "p.json")
    assert Profile.load(path) == result
    assert not list(tmp_path.glob(".*tmp"))


def test_bins_parameter_is_checked() -> None:
    with pytest.raises(Exception, match="'bins' parameter of profile must be 20 to 50"):
        profile(_frame(100, seed=9), bins=5)
    assert len(profile(_frame(100, seed=9), bins=50)["x"].histogram["counts"]) == 50  # type: ignore[index]
