"""Training data: leakage-proof splits, leakage checks, sampling, natural labels, class
imbalance and augmentation (chapters 4 and 5 of *Designing Machine Learning Systems*).

>>> from loopml import trainingdata
>>> callable(trainingdata.make_split)
True
"""

from typing import Any

from loopml.trainingdata._augment import augment_split, mixup, perturb, synthesize_text
from loopml.trainingdata._build import TrainingSet, build_training_set
from loopml.trainingdata._imbalance import (
    FocalLoss,
    class_weights,
    resample_training_split,
    sample_weights,
)
from loopml.trainingdata._labels import (
    LabelDelayReport,
    LabeledPredictions,
    join_labels,
    join_labels_from_config,
    label_delay,
)
from loopml.trainingdata._leakage import (
    LeakageFinding,
    LeakageReport,
    check_leakage,
)
from loopml.trainingdata._leakage_checks import LEAKAGE_CHECKS
from loopml.trainingdata._sampling import (
    ImportanceWeights,
    ReservoirSampler,
    WeightedReservoirSampler,
    importance_weights,
    simple_sample,
    stratified_sample,
    weighted_sample,
)
from loopml.trainingdata._splits import (
    Fold,
    Split,
    make_split,
    rolling_origin_folds,
    split_from_config,
)
from loopml.trainingdata.labeling import DawidSkene, MajorityVote, MatrixCompletion, Triplet

__all__ = [
    "LEAKAGE_CHECKS",
    "DawidSkene",
    "FocalLoss",
    "Fold",
    "ImportanceWeights",
    "LabelDelayReport",
    "LabeledPredictions",
    "LeakageFinding",
    "LeakageReport",
    "MajorityVote",
    "MatrixCompletion",
    "ResampledClassifier",
    "ReservoirSampler",
    "Split",
    "TrainingSet",
    "Triplet",
    "WeightedReservoirSampler",
    "augment_split",
    "build_training_set",
    "check_leakage",
    "class_weights",
    "importance_weights",
    "join_labels",
    "join_labels_from_config",
    "label_delay",
    "make_split",
    "mixup",
    "perturb",
    "resample_training_split",
    "rolling_origin_folds",
    "sample_weights",
    "simple_sample",
    "split_from_config",
    "stratified_sample",
    "synthesize_text",
    "weighted_sample",
]


def __getattr__(name: str) -> Any:
    # ResampledClassifier subclasses scikit-learn's BaseEstimator: load sklearn only when asked
    if name == "ResampledClassifier":
        from loopml.trainingdata._resampled import ResampledClassifier

        return ResampledClassifier
    raise AttributeError(f"module 'loopml.trainingdata' has no attribute {name!r}")
