"""Univariate drift statistics: agreement with exact statistics, soundness, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, ks_2samp, wasserstein_distance

from loopml.core import ConfigError, DataError, SchemaError
from loopml.monitoring import (
    CategoricalReference,
    NumericReference,
    adjust_p_values,
    compare_categorical,
    compare_numeric,
    drift_report,
    ks_test,
    reference_from_frame,
    reference_from_profile,
)
from loopml.monitoring._univariate import _count_on_grid


def _samples(kind: str, shift: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, m = 60_000, 30_000
    if kind == "normal":
        return rng.normal(size=n), rng.normal(shift, 1, size=m)
    if kind == "lognormal":
        return rng.lognormal(size=n), rng.lognormal(shift, 1, size=m)
    if kind == "poisson":
        return rng.poisson(3, n).astype(float), rng.poisson(3 + shift, m).astype(float)
    if kind == "binary":
        return (rng.random(n) < 0.3).astype(float), (rng.random(m) < 0.3 + shift / 5).astype(float)
    zero_a, zero_b = rng.random(n) < 0.5, rng.random(m) < 0.5 - shift / 5
    return np.where(zero_a, 0, rng.exponential(size=n)), np.where(zero_b, 0, rng.exponential(size=m))


@pytest.mark.parametrize("kind", ["normal", "lognormal", "poisson", "binary", "zero_inflated"])
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_profile_statistics_match_exact_ones(kind: str, shift: float) -> None:
    rng = np.random.default_rng(7)
    reference, current = _samples(kind, shift, rng)
    approx = compare_numeric(NumericReference.from_values(reference), current)
    exact_ks = ks_2samp(reference, current).statistic
    # documented bound: a lower bound of the exact KS distance, short by at most 0.01
    assert approx.ks_distance <= exact_ks + 1e-9
    assert exact_ks - approx.ks_distance <= 0.0101
    exact_w = wasserstein_distance(reference, current)
    assert approx.wasserstein == pytest.approx(exact_w, rel=0.05, abs=0.003)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-50, 50), min_size=2, max_size=30),
    st.lists(st.floats(-80, 80) | st.sampled_from([0.0, 1.0, -3.0]), min_size=1, max_size=200),
)
def test_count_on_grid_equals_searchsorted(points: list[float], values: list[float]) -> None:
    grid = np.unique(np.asarray(points))
    if grid.size < 2:
        return
    data = np.asarray(values + points)
    cells, equal, below, above = _count_on_grid(grid, data)
    index = np.searchsorted(grid, data, side="right")
    assert cells.tolist() == np.bincount(index, minlength=grid.size + 1).tolist()
    assert equal.tolist() == [float((data == p).sum()) for p in grid]
    assert below == pytest.approx(data[data < grid[0]].sum())
    assert above == pytest.approx(data[data >= grid[-1]].sum())


def test_categorical_comparison_counts_new_categories() -> None:
    reference = CategoricalReference.from_values(["a"] * 600 + ["b"] * 400)
    result = compare_categorical(reference, ["a"] * 500 + ["b"] * 300 + ["z"] * 200 + [None] * 5)
    assert result.new_categories == ["z"]
    assert result.new_share == pytest.approx(0.2)
    assert result.nulls_current == 5
    assert result.chi_square_p_value < 1e-10
    assert result.total_variation == pytest.approx(0.2)


def test_holm_and_bh_match_their_definitions() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(12) ** 3
    order = np.argsort(p)
    m = p.size
    holm = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        holm[i] = running
    bh = np.empty(m)
    for i in range(m):
        bh[i] = min(1.0, min(p[j] * m / (np.sum(p <= p[j])) for j in range(m) if p[j] >= p[i]))
    assert np.allclose(adjust_p_values(p, "holm"), holm)
    assert np.allclose(adjust_p_values(p, "bh"), bh)
    assert np.isnan(adjust_p_values([np.nan, 0.01], "holm")[0])
    with pytest.raises(ConfigError, match="'correction'"):
        adjust_p_values([0.1], "bonferoni")  # type: ignore[arg-type]


def _family(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    data = {f"x{i}": rng.normal(size=n) for i in range(8)}
    data["x0"] = data["x0"] + shift
    data["c0"] = rng.choice(["a", "b", "c", "d"], p=[0.4, 0.3, 0.2, 0.1], size=n)
    data["c1"] = rng.choice(["u", "v"], size=n)
    return pd.DataFrame(data)


@pytest.mark.parametrize(
    ("method", "correction"),
    [
        ("profile", "holm"),
        pytest.param("profile", "bh", marks=pytest.mark.slow),
        pytest.param("exact", "holm", marks=pytest.mark.slow),
    ],
)
def test_family_wise_false_alarm_rate_stays_below_alpha(method: str, correction: str) -> None:
    # 200 repetitions of 10 columns without drift. With FWER <= 0.05 the number of
    # repetitions with any alarm is at most Binomial(200, 0.05); we allow its 99.9th
    # percentile (21), so a correct test fails this by chance once in 1000 runs.
    rng = np.random.default_rng(2024)
    alpha, repetitions = 0.05, 200
    alarms = 0
    for _ in range(repetitions):
        reference, current = _family(rng, 2000), _family(rng, 1000)
        source = reference_from_frame(reference) if method == "profile" else reference
        report = drift_report(source, current, alpha=alpha, correction=correction,  # type: ignore[arg-type]
                              min_effect=0.0, method=method)  # type: ignore[arg-type]
        alarms += report.drifted
    limit = int(binom.ppf(0.999, repetitions, alpha))
    assert alarms <= limit, f"{alarms} of {repetitions} no-drift repetitions alarmed (limit {limit})"
    assert alarms >= 1  # a test that never rejects is not calibrated either (P(0) = 3e-5)


def test_power_on_a_tenth_of_a_sigma_shift_with_default_thresholds() -> None:
    rng = np.random.default_rng(11)
    found = 0
    repetitions = 60
    for _ in range(repetitions):
        reference = reference_from_frame(_family(rng, 10_000))
        report = drift_report(reference, _family(rng, 10_000, shift=0.1))
        found += "x0" in report.drifted_columns
    assert found / repetitions >= 0.9, f"found the 0.1-sigma shift {found} of {repetitions} times"


def test_a_negligible_shift_at_a_million_rows_is_significant_but_not_flagged() -> None:
    rng = np.random.default_rng(5)
    reference = reference_from_frame(pd.DataFrame({"x": rng.normal(size=1_000_000)}))
    report = drift_report(reference, pd.DataFrame({"x": rng.normal(0.015, 1, size=1_000_000)}))
    column = report.column("x")
    assert column.p_adjusted < 1e-6
    assert not column.drifted
    assert "negligible" in column.reason
    assert column.critical_value is not None and column.critical_value < 0.003


def test_every_result_has_score_threshold_and_reason() -> None:
    rng = np.random.default_rng(1)
    report = drift_report(_family(rng, 3000), _family(rng, 3000, shift=1.0))
    for column in report.columns:
        for result in column.tests:
            assert result.reason and np.isfinite(result.threshold)
            assert (result.p_value is None) == (result.test not in ("ks", "chi_square"))
    assert report.drifted_columns == ["x0"]
    assert "x0" in report.to_frame().query("drifted").column.tolist()


def test_reference_from_profile_dict_gives_the_same_report() -> None:
    rng = np.random.default_rng(9)
    frame = _family(rng, 5000)
    summaries = reference_from_frame(frame)
    profile = {"columns": {name: ref.to_dict() for name, ref in summaries.items()}}
    current = _family(rng, 4000, shift=0.3)
    a = drift_report(reference_from_profile(profile), current).to_dict()
    b = drift_report(summaries, current).to_dict()
    assert a == b


def test_bad_input_is_named() -> None:
    rng = np.random.default_rng(0)
    reference = _family(rng, 100)
    current = _family(rng, 100).drop(columns=["x3"])
    with pytest.raises(SchemaError, match="x3"):
        drift_report(reference, current)
    current = _family(rng, 100).astype({"x1": object})
    current.loc[7, "x1"] = "n/a"
    with pytest.raises(DataError, match=r"column 'x1'.*'n/a'.*row 7"):
        drift_report(reference, current)
    with pytest.raises(ConfigError, match="'alpha'"):
        drift_report(reference, _family(rng, 100), alpha=1.5)
    with pytest.raises(DataError, match="must hold numbers"):
        ks_test(["a", "b"], [1.0, 2.0])
    with pytest.raises(DataError, match="histogram"):
        reference_from_profile({"x": {"quantiles": [0, 1], "histogram": {"edges": [0, 1], "counts": [1, 2]}}})


def test_all_null_current_column_is_reported_not_tested() -> None:
    rng = np.random.default_rng(0)
    report = drift_report(_family(rng, 500), _family(rng, 200).assign(x2=np.nan))
    column = report.column("x2")
    assert not column.drifted and "not tested" in column.reason
    assert column.null_rate_current == 1.0


def test_current_window_from_a_parquet_file_column_by_column(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    reference = reference_from_frame(_family(rng, 3000))
    current = _family(rng, 3000, shift=0.5)
    path = tmp_path / "cur.parquet"
    current.to_parquet(path)
    from_file = drift_report(reference, path)
    assert from_file.to_dict() == drift_report(reference, current).to_dict()
    assert from_file.drifted_columns == ["x0"]
    with pytest.raises(DataError, match="cannot read the current window"):
        drift_report(reference, tmp_path / "missing.parquet")


def test_chunked_counting_adds_up_over_many_chunks() -> None:
    from loopml.monitoring._univariate import _count_by_search, _in_chunks

    rng = np.random.default_rng(8)
    grid = np.unique(np.r_[rng.normal(size=120), 0.0, 1.0])
    values = np.r_[rng.normal(0, 2, 700_000), np.zeros(1000), np.ones(1000)]
    chunked = _in_chunks(_count_on_grid, grid, values)
    direct = _count_by_search(grid, values)
    assert np.array_equal(chunked[0], direct[0]) and np.array_equal(chunked[1], direct[1])
    assert chunked[2] == pytest.approx(direct[2]) and chunked[3] == pytest.approx(direct[3])
