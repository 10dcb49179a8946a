"""Labels when there are none (chapter 4 of *Designing Machine Learning Systems*).

Weak supervision (labeling functions, the applier, analysis, label models), probabilistic
training labels, active learning, self-training and label-error detection::

    >>> from loopml.trainingdata import labeling
    >>> L = [[1, 1, -1], [0, -1, 0], [1, -1, 1]]
    >>> labeling.MajorityVote().fit(L).predict(L)
    array([1, 0, 1])
"""

from loopml.trainingdata.labeling._active import (
    LearningCurves,
    StabilizingPredictions,
    density_weights,
    query,
    select_batch,
    simulate_active_learning,
    uncertainty_scores,
    vote_entropy,
)
from loopml.trainingdata.labeling._analysis import LFAnalysis, analyze_lfs
from loopml.trainingdata.labeling._apply import apply_lfs
from loopml.trainingdata.labeling._base import LabelModel
from loopml.trainingdata.labeling._checks import check_label_model, label_model_checks
from loopml.trainingdata.labeling._dawid_skene import DawidSkene
from loopml.trainingdata.labeling._label_errors import (
    confident_joint,
    find_label_errors,
    out_of_fold_proba,
)
from loopml.trainingdata.labeling._lf import (
    ABSTAIN,
    LabelingFunction,
    Row,
    keyword_lf,
    labeling_function,
    lookup_lf,
    model_lf,
    regex_lf,
    threshold_lf,
    vectorized_lf,
)
from loopml.trainingdata.labeling._majority import MajorityVote
from loopml.trainingdata.labeling._matrix import check_label_matrix
from loopml.trainingdata.labeling._matrix_completion import MatrixCompletion
from loopml.trainingdata.labeling._self_training import SelfTraining
from loopml.trainingdata.labeling._soft import TrainingLabels, training_labels
from loopml.trainingdata.labeling._synthetic import SyntheticLabels, synthetic_label_matrix
from loopml.trainingdata.labeling._triplet import Triplet

__all__ = [
    "ABSTAIN",
    "DawidSkene",
    "LFAnalysis",
    "LabelModel",
    "LabelingFunction",
    "LearningCurves",
    "MajorityVote",
    "MatrixCompletion",
    "Row",
    "SelfTraining",
    "StabilizingPredictions",
    "SyntheticLabels",
    "TrainingLabels",
    "Triplet",
    "analyze_lfs",
    "apply_lfs",
    "check_label_matrix",
    "check_label_model",
    "confident_joint",
    "density_weights",
    "find_label_errors",
    "keyword_lf",
    "label_model_checks",
    "labeling_function",
    "lookup_lf",
    "model_lf",
    "out_of_fold_proba",
    "query",
    "regex_lf",
    "select_batch",
    "simulate_active_learning",
    "synthetic_label_matrix",
    "threshold_lf",
    "training_labels",
    "uncertainty_scores",
    "vectorized_lf",
    "vote_entropy",
]
