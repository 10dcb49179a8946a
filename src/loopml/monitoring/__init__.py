"""Monitoring (chapter 8): drift, data quality, model quality, feedback loops, alerts."""

from loopml.monitoring._drift import ColumnDrift, DriftReport, drift_report
from loopml.monitoring._multiplicity import adjust_p_values
from loopml.monitoring._reference import (
    CategoricalReference,
    NumericReference,
    reference_from_frame,
    reference_from_profile,
)
from loopml.monitoring._results import DriftTestResult
from loopml.monitoring._univariate import (
    chi_square_test,
    compare_categorical,
    compare_numeric,
    cramer_von_mises_test,
    hellinger,
    jensen_shannon,
    ks_critical_value,
    ks_test,
    psi,
    wasserstein,
)

__all__ = [
    "CategoricalReference",
    "ColumnDrift",
    "DriftReport",
    "DriftTestResult",
    "NumericReference",
    "adjust_p_values",
    "chi_square_test",
    "compare_categorical",
    "compare_numeric",
    "cramer_von_mises_test",
    "drift_report",
    "hellinger",
    "jensen_shannon",
    "ks_critical_value",
    "ks_test",
    "psi",
    "reference_from_frame",
    "reference_from_profile",
    "wasserstein",
]
