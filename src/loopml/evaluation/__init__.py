"""Offline evaluation: metrics with intervals, baselines and champion, slices, calibration,
behaviour tests, fairness, explanations, churn, gates, reports and model cards.

>>> from loopml import evaluation
>>> evaluation.classification_metrics([0, 1], [0.2, 0.9])["roc_auc"]
1.0
"""

from loopml.evaluation._behaviour import (
    BehaviourResult,
    directional_test,
    invariance_test,
    perturbation_test,
)
from loopml.evaluation._calibration import Calibrator, choose_calibrator, reliability_diagram
from loopml.evaluation._evaluate import Evaluation, as_scorer, evaluate
from loopml.evaluation._explain import (
    explain_one,
    permutation_importance,
    prediction_churn,
    tree_shap,
)
from loopml.evaluation._fairness import fairness_report
from loopml.evaluation._gates import GateResult, check_gates
from loopml.evaluation._metrics import (
    HIGHER_IS_BETTER,
    MetricInterval,
    bootstrap_interval,
    classification_metrics,
    compute_metrics,
    expected_calibration_error,
    headline_intervals,
    headline_metrics,
    metric_function,
    paired_difference_interval,
    ranking_metrics,
    regression_metrics,
    threshold_for_cost,
    threshold_for_precision,
)
from loopml.evaluation._report import model_card_markdown, render_html, write_report
from loopml.evaluation._slices import (
    SliceFinding,
    bucketize,
    find_worst_slices,
    simpsons_paradox,
    slice_codes,
    slice_metrics,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "BehaviourResult",
    "Calibrator",
    "Evaluation",
    "GateResult",
    "MetricInterval",
    "SliceFinding",
    "as_scorer",
    "bootstrap_interval",
    "bucketize",
    "check_gates",
    "choose_calibrator",
    "classification_metrics",
    "compute_metrics",
    "directional_test",
    "evaluate",
    "expected_calibration_error",
    "explain_one",
    "fairness_report",
    "find_worst_slices",
    "headline_intervals",
    "headline_metrics",
    "invariance_test",
    "metric_function",
    "model_card_markdown",
    "paired_difference_interval",
    "perturbation_test",
    "permutation_importance",
    "prediction_churn",
    "ranking_metrics",
    "regression_metrics",
    "reliability_diagram",
    "render_html",
    "simpsons_paradox",
    "slice_codes",
    "slice_metrics",
    "threshold_for_cost",
    "threshold_for_precision",
    "tree_shap",
    "write_report",
]
