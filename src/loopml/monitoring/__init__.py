"""Monitoring (chapter 8): drift, data quality, model quality, feedback loops, alerts.

``from loopml import monitoring`` reads like a table of contents: univariate statistics
(``ks_test``, ``psi``, ``compare_numeric`` from a persisted profile, ...), the corrected
``drift_report``, multivariate tests, label shift (``estimate_label_shift``), model quality
with and without labels (``quality_over_windows``, ``CBPE``), streaming detectors,
feedback-loop and operational metrics, alerts, and ``run_monitor`` that ties them to the
prediction log.
"""

from loopml.monitoring._alerts import (
    METRIC_PATTERNS,
    AlertEvent,
    AlertManager,
    AlertRule,
    AlertState,
    check_metric_name,
)
from loopml.monitoring._checks import check_drift_test
from loopml.monitoring._drift import ColumnDrift, DriftReport, drift_report
from loopml.monitoring._feedback import (
    FeedbackLoopMetrics,
    aggregate_diversity,
    exposure_gini,
    feedback_loop_metrics,
    feedback_loop_over_windows,
    long_tail,
)
from loopml.monitoring._label_shift import LabelShiftResult, estimate_label_shift
from loopml.monitoring._multiplicity import adjust_p_values
from loopml.monitoring._multivariate import (
    MultivariateResult,
    domain_classifier_test,
    encode_frames,
    mmd_test,
    pca_reconstruction_test,
)
from loopml.monitoring._operational import (
    HistoryCheck,
    compare_with_history,
    operational_metrics,
    operational_over_windows,
)
from loopml.monitoring._quality import (
    CBPE,
    classification_metrics,
    quality_over_windows,
    regression_metrics,
)
from loopml.monitoring._reference import (
    CategoricalReference,
    NumericReference,
    reference_from_frame,
    reference_from_profile,
)
from loopml.monitoring._report import line_chart, render_html
from loopml.monitoring._results import DriftTestResult
from loopml.monitoring._run import (
    MonitorRun,
    WindowResult,
    alert_status,
    list_runs,
    load_run,
    run_monitor,
)
from loopml.monitoring._skew import SkewResult, training_serving_skew
from loopml.monitoring._streaming import (
    DETECTORS,
    DetectionScore,
    StreamingDetector,
    detect_changes,
    score_detections,
)
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
from loopml.monitoring._windows import Window, count_windows, split_by_windows, time_windows

__all__ = [
    "CBPE",
    "DETECTORS",
    "METRIC_PATTERNS",
    "AlertEvent",
    "AlertManager",
    "AlertRule",
    "AlertState",
    "CategoricalReference",
    "ColumnDrift",
    "DetectionScore",
    "DriftReport",
    "DriftTestResult",
    "FeedbackLoopMetrics",
    "HistoryCheck",
    "LabelShiftResult",
    "MonitorRun",
    "MultivariateResult",
    "NumericReference",
    "SkewResult",
    "StreamingDetector",
    "Window",
    "WindowResult",
    "adjust_p_values",
    "aggregate_diversity",
    "alert_status",
    "check_drift_test",
    "check_metric_name",
    "chi_square_test",
    "classification_metrics",
    "compare_categorical",
    "compare_numeric",
    "compare_with_history",
    "count_windows",
    "cramer_von_mises_test",
    "detect_changes",
    "domain_classifier_test",
    "drift_report",
    "encode_frames",
    "estimate_label_shift",
    "exposure_gini",
    "feedback_loop_metrics",
    "feedback_loop_over_windows",
    "hellinger",
    "jensen_shannon",
    "ks_critical_value",
    "ks_test",
    "line_chart",
    "list_runs",
    "load_run",
    "long_tail",
    "mmd_test",
    "operational_metrics",
    "operational_over_windows",
    "pca_reconstruction_test",
    "psi",
    "quality_over_windows",
    "reference_from_frame",
    "reference_from_profile",
    "regression_metrics",
    "render_html",
    "run_monitor",
    "score_detections",
    "split_by_windows",
    "time_windows",
    "training_serving_skew",
    "wasserstein",
]
