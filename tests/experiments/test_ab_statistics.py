"""A/B statistics against ground truth: A/A false-positive rates, power, SRM, CUPED, peeking."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, DataError, SchemaError
from loopml.experiments import (
    ab_report,
    cuped_adjust,
    cuped_ttest,
    msprt,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
    srm_test,
    two_proportion_ztest,
    welch_ttest,
)

REPS = 2000
ALPHA = 0.05


def _binomial_band(rate: float, reps: int) -> float:
    """Half-width of a 4-sigma band around a rejection rate estimated from ``reps`` runs."""
    return 4 * math.sqrt(rate * (1 - rate) / reps)


def test_aa_two_proportion_z_rejects_at_alpha() -> None:
    rng = np.random.default_rng(11)
    n = 5000
    hits = rng.binomial(n, 0.1, size=(REPS, 2))
    p = np.array([two_proportion_ztest(int(a), n, int(b), n).p_value for a, b in hits])
    rate = float(np.mean(p < ALPHA))
    assert abs(rate - ALPHA) < _binomial_band(ALPHA, REPS), rate


def test_aa_welch_rejects_at_alpha_even_with_unequal_variances() -> None:
    rng = np.random.default_rng(12)
    control = rng.normal(5, 1, size=(REPS, 200))
    treatment = rng.normal(5, 3, size=(REPS, 50))  # unequal n and variance: Welch's case
    p = np.array([welch_ttest(c, t).p_value for c, t in zip(control, treatment, strict=True)])
    rate = float(np.mean(p < ALPHA))
    assert abs(rate - ALPHA) < _binomial_band(ALPHA, REPS), rate


def test_aa_cuped_rejects_at_alpha_and_keeps_interval_coverage() -> None:
    rng = np.random.default_rng(13)
    pre = rng.normal(10, 3, size=(REPS, 400))
    post = pre + rng.normal(0, 1, size=(REPS, 400))
    results = [
        cuped_ttest(y[:200], x[:200], y[200:], x[200:]) for y, x in zip(post, pre, strict=True)
    ]
    rate = float(np.mean([r.p_value < ALPHA for r in results]))
    assert abs(rate - ALPHA) < _binomial_band(ALPHA, REPS), rate
    assert np.mean([r.variance_reduction for r in results]) > 0.85  # rho^2 = 9/10


def test_power_matches_the_sample_size_formula() -> None:
    n = sample_size_proportions(0.10, 0.02, power=0.8)
    assert power_proportions(0.10, 0.02, n) == pytest.approx(0.8, abs=0.005)
    rng = np.random.default_rng(14)
    a, b = rng.binomial(n, 0.10, REPS), rng.binomial(n, 0.12, REPS)
    power = np.mean(
        [
            two_proportion_ztest(int(x), n, int(y), n).p_value < ALPHA
            for x, y in zip(a, b, strict=True)
        ]
    )
    assert abs(power - 0.8) < _binomial_band(0.8, REPS), power
    means_n = sample_size_means(2.0, 0.2, power=0.9)
    c = rng.normal(0, 2, size=(500, means_n))
    t = rng.normal(0.2, 2, size=(500, means_n))
    power_t = np.mean([welch_ttest(x, y).p_value < ALPHA for x, y in zip(c, t, strict=True)])
    assert abs(power_t - 0.9) < _binomial_band(0.9, 500), power_t


def test_interval_covers_the_true_effect_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(15)
    c = rng.exponential(1.0, size=(REPS, 300))
    t = rng.exponential(1.3, size=(REPS, 300))
    covered = np.mean(
        [(r := welch_ttest(x, y)).ci_low < 0.3 < r.ci_high for x, y in zip(c, t, strict=True)]
    )
    assert abs(covered - 0.95) < _binomial_band(0.95, REPS), covered


def test_cuped_reduces_variance_by_the_squared_correlation() -> None:
    rng = np.random.default_rng(16)
    x = rng.normal(size=200_000)
    y = 0.8 * x + rng.normal(scale=0.6, size=200_000)  # corr = 0.8
    adjusted = cuped_adjust(y, x)
    assert adjusted.mean() == pytest.approx(y.mean(), abs=1e-9)
    assert 1 - adjusted.var() / y.var() == pytest.approx(0.64, abs=0.01)


def test_srm_flags_a_planted_50_48_split_and_not_a_fair_one() -> None:
    # The stated size: 98,000 units planned 50/50 but logged 50,000 / 48,000.
    assert srm_test([50_000, 48_000]).p_value < 1e-9
    # Simulated: units land in control with probability 50/98 (a 50/48 split) or 1/2.
    rng = np.random.default_rng(17)
    planted = rng.binomial(98_000, 50 / 98, size=REPS)
    fair = rng.binomial(98_000, 0.5, size=REPS)
    planted_alarms = np.mean([srm_test([int(c), 98_000 - int(c)]).alarm for c in planted])
    fair_alarms = np.mean([srm_test([int(c), 98_000 - int(c)]).alarm for c in fair])
    assert planted_alarms == 1.0
    assert fair_alarms <= 0.004  # the alarm level is 0.001
    # A planned 90/10 split is not an alarm when it is respected.
    assert not srm_test([90_120, 9_880], [0.9, 0.1]).alarm


def test_peeking_daily_with_z_inflates_error_while_msprt_stays_below_alpha() -> None:
    rng = np.random.default_rng(18)
    days, per_day, reps = 30, 200, 1000
    looks = np.arange(1, days + 1) * per_day
    control = rng.binomial(1, 0.2, size=(reps, days * per_day)).astype(float)
    treatment = rng.binomial(1, 0.2, size=(reps, days * per_day)).astype(float)
    # naive: a z-test every day, stop at the first p < alpha
    sc, st = np.cumsum(control, 1)[:, looks - 1], np.cumsum(treatment, 1)[:, looks - 1]
    pc, pt = sc / looks, st / looks
    pooled = (sc + st) / (2 * looks)
    z = (pt - pc) / np.sqrt(pooled * (1 - pooled) * 2 / looks)
    naive_rate = float(np.mean((np.abs(z) > 1.959964).any(axis=1)))
    single_rate = float(np.mean(np.abs(z[:, -1]) > 1.959964))
    seq_rate = float(np.mean([
        msprt(c, t, looks=looks.tolist(), mixture_sd=0.02).stopped_at is not None
        for c, t in zip(control, treatment, strict=True)
    ]))  # fmt: skip
    assert abs(single_rate - ALPHA) < _binomial_band(ALPHA, reps)
    assert naive_rate > 0.15, naive_rate  # about 3-4x alpha with 30 looks
    assert seq_rate <= ALPHA, seq_rate


def test_msprt_with_default_mixture_stays_valid_when_looking_at_every_observation() -> None:
    """A rare-event metric (2%), the data-driven default mixture, a look after every user."""
    rng = np.random.default_rng(21)
    reps, n = 300, 6000
    control = rng.binomial(1, 0.02, size=(reps, n)).astype(float)
    treatment = rng.binomial(1, 0.02, size=(reps, n)).astype(float)
    rate = np.mean(
        [msprt(c, t).stopped_at is not None for c, t in zip(control, treatment, strict=True)]
    )
    assert rate <= ALPHA + 2 * math.sqrt(ALPHA * (1 - ALPHA) / reps), rate  # measured 0.03


def test_msprt_detects_a_real_effect_and_its_interval_covers_it() -> None:
    rng = np.random.default_rng(19)
    detected, covered = 0, 0
    for _ in range(200):
        c, t = rng.normal(0, 1, 6000), rng.normal(0.1, 1, 6000)
        result = msprt(c, t, looks=range(200, 6001, 200), mixture_sd=0.1)
        detected += result.decision == "treatment better"
        covered += result.ci_low[-1] < 0.1 < result.ci_high[-1]
    assert detected / 200 > 0.9
    assert covered / 200 >= 0.95


def test_ab_report_reads_a_frame_and_refuses_on_srm() -> None:
    rng = np.random.default_rng(20)
    n_c, n_t = 20_000, 20_000
    frame = pd.DataFrame({
        "variant": np.repeat(["control", "treatment"], [n_c, n_t]),
        "converted": np.r_[rng.random(n_c) < 0.10, rng.random(n_t) < 0.11].astype(int),
        "t": rng.permutation(n_c + n_t),
    })  # fmt: skip
    report = ab_report(frame, metric="converted", order_column="t")
    assert report.test.test == "two-proportion z-test"
    assert report.decision == "treatment better"
    assert report.test.ci_low < 0.01 < report.test.ci_high
    assert report.sequential is not None and "mSPRT" in report.summary()
    lopsided = frame.iloc[: n_c + n_t - 1500]  # drops 1,500 treatment rows
    assert ab_report(lopsided, metric="converted").decision.startswith("invalid: sample ratio")


def test_bad_input_is_named() -> None:
    with pytest.raises(DataError, match="missing or infinite value at row 2"):
        welch_ttest([1.0, 2.0, np.nan], [1.0, 2.0])
    with pytest.raises(DataError, match="successes <= n"):
        two_proportion_ztest(11, 10, 1, 10)
    with pytest.raises(ConfigError, match="'alpha' parameter of welch_ttest"):
        welch_ttest([1, 2, 3], [1, 2, 3], alpha=5)
    with pytest.raises(ConfigError, match="one positive fraction per count"):
        srm_test([10, 10], [1.0])
    with pytest.raises(DataError, match="non-negative counts"):
        srm_test([10])
    with pytest.raises(ConfigError, match="0 < baseline"):
        sample_size_proportions(0.0, 0.1)
    frame = pd.DataFrame({"variant": ["control", "treatment"] * 3, "y": ["a", "b"] * 3})
    with pytest.raises(SchemaError, match="Column 'y' must be numeric"):
        ab_report(frame, metric="y")
    with pytest.raises(SchemaError, match=r"lacks the column\(s\) \['revenue'\]"):
        ab_report(frame, metric="revenue")
    with pytest.raises(DataError, match="Variant 'treatment' has 0 rows"):
        ab_report(frame.assign(variant="control", y=1.0), metric="y")
    with pytest.raises(DataError, match="'looks' parameter of msprt"):
        msprt([1.0] * 10, [1.0] * 10, looks=[5, 20])
