"""Labels when there are none (chapter 4 of *Designing Machine Learning Systems*).

Weak supervision (labeling functions, the applier, analysis, label models), probabilistic
training labels, active learning, self-training and label-error detection::

    >>> from loopml.trainingdata import labeling
    >>> L = [[1, 1, -1], [0, -1, 0], [1, -1, 1]]
    >>> labeling.MajorityVote().fit(L).predict(L)
    array([1, 0, 1])
"""

from loopml.trainingdata.labeling._analysis import LFAnalysis, analyze_lfs
from loopml.trainingdata.labeling._apply import apply_lfs
from loopml.trainingdata.labeling._base import LabelModel
from loopml.trainingdata.labeling._checks import check_label_model, label_model_checks
from loopml.trainingdata.labeling._dawid_skene import DawidSkene
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
from loopml.trainingdata.labeling._soft import TrainingLabels, training_labels
from loopml.trainingdata.labeling._synthetic import SyntheticLabels, synthetic_label_matrix
from loopml.trainingdata.labeling._triplet import Triplet

__all__ = [
    "ABSTAIN",
    "DawidSkene",
    "LFAnalysis",
    "LabelModel",
    "LabelingFunction",
    "MajorityVote",
    "MatrixCompletion",
    "Row",
    "SyntheticLabels",
    "TrainingLabels",
    "Triplet",
    "analyze_lfs",
    "apply_lfs",
    "check_label_matrix",
    "check_label_model",
    "keyword_lf",
    "label_model_checks",
    "labeling_function",
    "lookup_lf",
    "model_lf",
    "regex_lf",
    "synthetic_label_matrix",
    "threshold_lf",
    "training_labels",
    "vectorized_lf",
]
