"""The contract every two-sample drift test keeps, as a check suite (like River's checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from loopml.monitoring._results import DriftTestResult

__all__ = ["check_drift_test"]


def check_drift_test(test: Callable[..., DriftTestResult], *, seed: int = 0) -> None:
    """Raise ``AssertionError`` if ``test(reference, current)`` breaks the contract.

    The contract: a ``DriftTestResult`` with the sample sizes, a reason and a finite
    threshold; identical samples are not flagged; a large shift is; a p-value, when
    there is one, lies in [0, 1]; the inputs are not modified.

    >>> from loopml.monitoring import ks_test, psi
    >>> check_drift_test(ks_test)
    >>> check_drift_test(psi)
    """
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=3000)
    kept = reference.copy()
    same: Any = test(reference, reference.copy())
    moved: Any = test(reference, rng.normal(2.0, 1.0, size=2000))
    assert np.array_equal(reference, kept), "the test modified its input"
    for result in (same, moved):
        assert isinstance(result, DriftTestResult), f"{test.__name__} must return a DriftTestResult"
        assert result.reason, "every result says why"
        assert np.isfinite(result.threshold), "every result carries its threshold"
        assert result.p_value is None or 0.0 <= result.p_value <= 1.0, "p-values lie in [0, 1]"
    assert (same.n_reference, moved.n_current) == (3000, 2000), "sample sizes are reported"
    assert not same.drifted, f"{test.__name__} flags identical samples"
    assert moved.drifted, f"{test.__name__} misses a 2-sigma shift"
