"""Fixed-horizon A/B statistics: sample-ratio mismatch, z and Welch tests, CUPED, power.

Pure functions: arrays or counts in, frozen result objects out; no I/O, no globals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from loopml.core import ConfigError, DataError

__all__ = [
    "SRMResult",
    "TestResult",
    "cuped_adjust",
    "cuped_ttest",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
    "srm_test",
    "two_proportion_ztest",
    "welch_ttest",
]

_NORMAL = NormalDist()


@dataclass(frozen=True)
class SRMResult:
    """A sample-ratio-mismatch check: observed counts against the planned split."""

    counts: tuple[int, ...]
    expected_fractions: tuple[float, ...]
    chi2: float
    p_value: float
    alpha: float

    @property
    def alarm(self) -> bool:
        """``True`` when the split is implausible under the plan (p < alpha)."""
        return self.p_value < self.alpha


@dataclass(frozen=True)
class TestResult:
    """The outcome of a two-group comparison (treatment minus control)."""

    __test__ = False  # not a pytest test class despite the name

    test: str
    n_control: int
    n_treatment: int
    control_mean: float
    treatment_mean: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    variance_reduction: float = 0.0

    @property
    def relative_effect(self) -> float:
        """``effect / control_mean`` (NaN when the control mean is 0)."""
        return self.effect / self.control_mean if self.control_mean else math.nan

    @property
    def significant(self) -> bool:
        """``True`` when ``p_value < alpha``."""
        return self.p_value < self.alpha

    @property
    def decision(self) -> str:
        """One of ``treatment better``, ``control better``, ``no significant difference``."""
        if not self.significant:
            return "no significant difference"
        return "treatment better" if self.effect > 0 else "control better"

    def summary(self) -> str:
        """One line: effect, interval, p-value and decision."""
        level = round(100 * (1 - self.alpha))
        return (
            f"{self.test}: effect {self.effect:+.4g} ({level}% CI {self.ci_low:+.4g} to "
            f"{self.ci_high:+.4g}), p = {self.p_value:.3g}: {self.decision}"
        )


def _check_alpha(alpha: float, owner: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(
            f"The 'alpha' parameter of {owner} must be a probability in (0, 1). "
            f"Got {alpha!r} instead."
        )


def _as_sample(values: ArrayLike, name: str, owner: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size < 2:
        raise DataError(
            f"The '{name}' sample of {owner} needs at least 2 values. Got {array.size} instead."
        )
    if not np.all(np.isfinite(array)):
        row = int(np.flatnonzero(~np.isfinite(array))[0])
        raise DataError(
            f"The '{name}' sample of {owner} holds a missing or infinite value at row {row}.",
            hint="drop or impute missing outcomes before the test",
        )
    return array


def srm_test(
    counts: Sequence[int],
    expected_fractions: Sequence[float] | None = None,
    *,
    alpha: float = 0.001,
) -> SRMResult:
    """Chi-square goodness-of-fit test of the observed split against the planned one.

    An alarm (``p < alpha``, 0.001 by default) means the assignment or the logging is
    broken and the experiment's results must not be trusted.

    >>> srm_test([50_000, 48_000]).alarm
    True
    >>> srm_test([50_000, 49_900]).alarm
    False
    """
    from scipy import special

    _check_alpha(alpha, "srm_test")
    observed = np.asarray(counts, dtype=np.float64)
    if observed.size < 2 or np.any(observed < 0) or observed.sum() <= 0:
        raise DataError(
            f"The 'counts' parameter of srm_test must hold two or more non-negative counts "
            f"with a positive total. Got {list(counts)!r} instead."
        )
    fractions = (
        np.full(observed.size, 1.0 / observed.size)
        if expected_fractions is None
        else np.asarray(expected_fractions, dtype=np.float64)
    )
    if fractions.shape != observed.shape or np.any(fractions <= 0):
        raise ConfigError(
            "The 'expected_fractions' parameter of srm_test must hold one positive fraction "
            f"per count. Got {expected_fractions!r} instead."
        )
    expected = fractions / fractions.sum() * observed.sum()
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    p_value = float(special.chdtrc(observed.size - 1, chi2))
    return SRMResult(
        tuple(int(c) for c in observed),
        tuple(float(f) for f in fractions / fractions.sum()),
        chi2,
        p_value,
        alpha,
    )


def two_proportion_ztest(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    *,
    alpha: float = 0.05,
) -> TestResult:
    """Two-sided z-test of a difference in conversion rates (pooled standard error).

    The interval uses the unpooled standard error (Wald).

    >>> result = two_proportion_ztest(500, 10_000, 600, 10_000)
    >>> round(result.effect, 4), result.decision
    (0.01, 'treatment better')
    """
    _check_alpha(alpha, "two_proportion_ztest")
    for name, hits, n in (
        ("control", successes_control, n_control),
        ("treatment", successes_treatment, n_treatment),
    ):
        if n <= 0 or not 0 <= hits <= n:
            raise DataError(
                f"The {name} group of two_proportion_ztest needs 0 <= successes <= n and n > 0. "
                f"Got successes={hits}, n={n} instead."
            )
    p_c, p_t = successes_control / n_control, successes_treatment / n_treatment
    pooled = (successes_control + successes_treatment) / (n_control + n_treatment)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment))
    se = math.sqrt(p_c * (1 - p_c) / n_control + p_t * (1 - p_t) / n_treatment)
    effect = p_t - p_c
    p_value = 1.0 if se_pooled == 0 else 2 * _NORMAL.cdf(-abs(effect) / se_pooled)
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    return TestResult(
        "two-proportion z-test",
        n_control,
        n_treatment,
        p_c,
        p_t,
        effect,
        effect - z * se,
        effect + z * se,
        p_value,
        alpha,
    )


def welch_ttest(control: ArrayLike, treatment: ArrayLike, *, alpha: float = 0.05) -> TestResult:
    """Welch's unequal-variance t-test of a difference in means, with its interval.

    >>> rng = np.random.default_rng(0)
    >>> result = welch_ttest(rng.normal(10, 2, 5000), rng.normal(10.3, 2, 5000))
    >>> result.decision, bool(result.ci_low < 0.3 < result.ci_high)
    ('treatment better', True)
    """
    _check_alpha(alpha, "welch_ttest")
    c = _as_sample(control, "control", "welch_ttest")
    t = _as_sample(treatment, "treatment", "welch_ttest")
    return _welch(c, t, alpha, "Welch t-test")


def _welch(
    c: NDArray[np.float64], t: NDArray[np.float64], alpha: float, name: str, reduction: float = 0.0
) -> TestResult:
    from scipy import special

    var_c, var_t = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    se = math.sqrt(var_c + var_t)
    effect = float(t.mean() - c.mean())
    if se == 0:
        p_value, half = (1.0 if effect == 0 else 0.0), 0.0
    else:
        df = (var_c + var_t) ** 2 / (var_c**2 / (c.size - 1) + var_t**2 / (t.size - 1))
        p_value = float(2 * special.stdtr(df, -abs(effect) / se))
        half = float(special.stdtrit(df, 1 - alpha / 2)) * se
    return TestResult(
        name,
        int(c.size),
        int(t.size),
        float(c.mean()),
        float(t.mean()),
        effect,
        effect - half,
        effect + half,
        p_value,
        alpha,
        reduction,
    )


def cuped_adjust(
    outcome: ArrayLike, covariate: ArrayLike, *, theta: float | None = None
) -> NDArray[np.float64]:
    """CUPED (Deng et al. 2013): ``y - theta * (x - mean(x))`` with ``theta = cov(x, y)/var(x)``.

    The mean is unchanged; the variance shrinks by the squared correlation of ``x`` and ``y``.

    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=10_000); y = x + rng.normal(scale=0.5, size=10_000)
    >>> bool(cuped_adjust(y, x).var() < 0.3 * y.var())
    True
    """
    y = _as_sample(outcome, "outcome", "cuped_adjust")
    x = _as_sample(covariate, "covariate", "cuped_adjust")
    if x.shape != y.shape:
        raise DataError(
            f"cuped_adjust needs one covariate value per outcome. Got {x.size} covariates "
            f"for {y.size} outcomes instead."
        )
    if theta is None:
        var_x = x.var(ddof=1)
        theta = 0.0 if var_x == 0 else float(np.cov(x, y, ddof=1)[0, 1] / var_x)
    return np.asarray(y - theta * (x - x.mean()), dtype=np.float64)


def cuped_ttest(
    control: ArrayLike,
    control_covariate: ArrayLike,
    treatment: ArrayLike,
    treatment_covariate: ArrayLike,
    *,
    alpha: float = 0.05,
) -> TestResult:
    """Welch's test on CUPED-adjusted outcomes, with one ``theta`` pooled over both groups.

    The pre-period covariate must not be affected by the treatment (measured before it).

    >>> rng = np.random.default_rng(2)
    >>> pre = rng.normal(10, 3, 8000); post = pre + rng.normal(0, 1, 8000)
    >>> post[4000:] += 0.1
    >>> result = cuped_ttest(post[:4000], pre[:4000], post[4000:], pre[4000:])
    >>> result.decision, result.variance_reduction > 0.8
    ('treatment better', True)
    """
    _check_alpha(alpha, "cuped_ttest")
    yc = _as_sample(control, "control", "cuped_ttest")
    xc = _as_sample(control_covariate, "control_covariate", "cuped_ttest")
    yt = _as_sample(treatment, "treatment", "cuped_ttest")
    xt = _as_sample(treatment_covariate, "treatment_covariate", "cuped_ttest")
    if xc.shape != yc.shape or xt.shape != yt.shape:
        raise DataError("cuped_ttest needs one covariate value per outcome in each group.")
    y, x = np.concatenate([yc, yt]), np.concatenate([xc, xt])
    var_x = x.var(ddof=1)
    theta = 0.0 if var_x == 0 else float(np.cov(x, y, ddof=1)[0, 1] / var_x)
    mean_x = x.mean()
    adj_c, adj_t = yc - theta * (xc - mean_x), yt - theta * (xt - mean_x)
    before = yc.var(ddof=1) / yc.size + yt.var(ddof=1) / yt.size
    after = adj_c.var(ddof=1) / adj_c.size + adj_t.var(ddof=1) / adj_t.size
    reduction = 0.0 if before == 0 else float(1 - after / before)
    return _welch(adj_c, adj_t, alpha, "CUPED Welch t-test", reduction)


def _z(alpha: float, power: float, owner: str) -> tuple[float, float]:
    _check_alpha(alpha, owner)
    if not 0.0 < power < 1.0:
        raise ConfigError(
            f"The 'power' parameter of {owner} must be a probability in (0, 1). "
            f"Got {power!r} instead."
        )
    return _NORMAL.inv_cdf(1 - alpha / 2), _NORMAL.inv_cdf(power)


def sample_size_proportions(
    baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per group for a two-sided two-proportion test to detect ``baseline -> baseline+mde``.

    >>> sample_size_proportions(0.10, 0.01)
    14751
    """
    z_a, z_b = _z(alpha, power, "sample_size_proportions")
    p1, p2 = baseline, baseline + mde
    if not (0 < p1 < 1 and 0 < p2 < 1) or mde == 0:
        raise ConfigError(
            "sample_size_proportions needs 0 < baseline < 1, 0 < baseline + mde < 1 and "
            f"mde != 0. Got baseline={baseline!r}, mde={mde!r} instead."
        )
    p_bar = (p1 + p2) / 2
    root = z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / mde**2)


def sample_size_means(sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per group for a two-sided test of means with a common ``sd`` to detect ``mde``.

    >>> sample_size_means(1.0, 0.1)
    1570
    """
    z_a, z_b = _z(alpha, power, "sample_size_means")
    if sd <= 0 or mde == 0:
        raise ConfigError(
            f"sample_size_means needs sd > 0 and mde != 0. Got sd={sd!r}, mde={mde!r} instead."
        )
    return math.ceil(2 * (z_a + z_b) ** 2 * sd**2 / mde**2)


def power_proportions(
    baseline: float, mde: float, n_per_group: int, *, alpha: float = 0.05
) -> float:
    """Power of the two-sided two-proportion z-test with ``n_per_group`` users in each group.

    >>> round(power_proportions(0.10, 0.01, 14751), 2)
    0.8
    """
    z_a, _ = _z(alpha, 0.5, "power_proportions")
    p1, p2 = baseline, baseline + mde
    if n_per_group <= 0 or not (0 < p1 < 1 and 0 < p2 < 1):
        raise ConfigError(
            "power_proportions needs n_per_group > 0 and both rates in (0, 1). "
            f"Got baseline={baseline!r}, mde={mde!r}, n_per_group={n_per_group!r} instead."
        )
    p_bar = (p1 + p2) / 2
    se0 = math.sqrt(2 * p_bar * (1 - p_bar) / n_per_group)
    se1 = math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / n_per_group)
    shift = abs(mde)
    return _NORMAL.cdf((shift - z_a * se0) / se1) + _NORMAL.cdf((-shift - z_a * se0) / se1)
