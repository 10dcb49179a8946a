"""Weak supervision (labeling functions, label models), active learning, self-training and
label errors: labels when there are none (chapter 4 of *Designing Machine Learning Systems*).
"""

from loopml.trainingdata.labeling._base import LabelModel
from loopml.trainingdata.labeling._dawid_skene import DawidSkene
from loopml.trainingdata.labeling._majority import MajorityVote
from loopml.trainingdata.labeling._matrix_completion import MatrixCompletion
from loopml.trainingdata.labeling._synthetic import SyntheticLabels, synthetic_label_matrix
from loopml.trainingdata.labeling._triplet import Triplet

__all__ = ["DawidSkene", "LabelModel", "MajorityVote", "MatrixCompletion", "Triplet"]
