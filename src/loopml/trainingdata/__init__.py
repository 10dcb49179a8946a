"""Training data: leakage-proof splits, leakage checks, sampling, natural labels, class
imbalance and augmentation (chapters 4 and 5 of *Designing Machine Learning Systems*).

>>> from loopml import trainingdata
>>> callable(trainingdata.make_split)
True
"""

from loopml.trainingdata import _leakage_checks  # noqa: F401 - registers the checks
from loopml.trainingdata._labels import (
    LabelDelayReport,
    LabeledPredictions,
    join_labels,
    join_labels_from_config,
    label_delay,
)
from loopml.trainingdata._leakage import (
    LEAKAGE_CHECKS,
    LeakageFinding,
    LeakageReport,
    check_leakage,
)
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

__all__ = [
    "LEAKAGE_CHECKS",
    "Fold",
    "ImportanceWeights",
    "LabelDelayReport",
    "LabeledPredictions",
    "LeakageFinding",
    "LeakageReport",
    "ReservoirSampler",
    "Split",
    "WeightedReservoirSampler",
    "check_leakage",
    "importance_weights",
    "join_labels",
    "join_labels_from_config",
    "label_delay",
    "make_split",
    "rolling_origin_folds",
    "simple_sample",
    "split_from_config",
    "stratified_sample",
    "weighted_sample",
]
