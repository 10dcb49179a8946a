"""Package contracts: every drift test passes the shared check suite; public names; lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from loopml import monitoring
from loopml.monitoring import (
    check_drift_test,
    chi_square_test,
    cramer_von_mises_test,
    hellinger,
    jensen_shannon,
    ks_test,
    psi,
    wasserstein,
)


@pytest.mark.parametrize(
    "test",
    [ks_test, cramer_von_mises_test, chi_square_test, psi, jensen_shannon, hellinger, wasserstein],
    ids=lambda f: f.__name__,
)
def test_every_two_sample_test_keeps_the_contract(test: Callable[..., object]) -> None:
    check_drift_test(test)  # type: ignore[arg-type]


def test_the_check_suite_catches_a_broken_test() -> None:
    from loopml.monitoring import DriftTestResult

    def always_drift(reference: object, current: object) -> DriftTestResult:
        return DriftTestResult("broken", 1.0, None, 0.1, True, "always", "exact", 3000, 2000)

    with pytest.raises(AssertionError, match="flags identical samples"):
        check_drift_test(always_drift)


def test_all_lists_the_public_names_sorted() -> None:
    public = {n for n in vars(monitoring) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(monitoring, n)).__name__ == "module"}
    assert sorted(monitoring.__all__) == sorted(public - modules)
    assert monitoring.__all__ == sorted(monitoring.__all__, key=lambda n: (not n.isupper(), n))


def test_import_loads_no_heavy_library() -> None:
    code = "import sys, json; import loopml.monitoring; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout)}
    heavy = {"sklearn", "lightgbm", "scipy", "river", "httpx", "sqlalchemy", "mlflow", "duckdb"}
    assert not loaded & heavy, sorted(loaded & heavy)
