"""Model development: baselines, candidates, tuning, tracking, reproducibility, distribution.

>>> from loopml import training
>>> "lightgbm" in training.CANDIDATES
True
"""

from loopml.training._baselines import (
    Baseline,
    HeuristicBaseline,
    LastValueBaseline,
    PriorBaseline,
    baseline_from_json,
)
from loopml.training._candidates import CANDIDATES, TrainedModel, check_candidates
from loopml.training._encoding import FeatureEncoder, FeatureSpec
from loopml.training._metrics import METRICS, default_metric, evaluate, higher_is_better
from loopml.training._reproduce import ReproductionReport, load_record, reproduce
from loopml.training._tracking import open_client
from loopml.training._train import ModelScore, TrainingResult, data_digest, train
from loopml.training._workspace import get_run, list_runs, train_workspace, workspace_frame

__all__ = [
    "CANDIDATES",
    "METRICS",
    "Baseline",
    "FeatureEncoder",
    "FeatureSpec",
    "HeuristicBaseline",
    "LastValueBaseline",
    "ModelScore",
    "PriorBaseline",
    "ReproductionReport",
    "TrainedModel",
    "TrainingResult",
    "baseline_from_json",
    "check_candidates",
    "data_digest",
    "default_metric",
    "evaluate",
    "get_run",
    "higher_is_better",
    "list_runs",
    "load_record",
    "open_client",
    "reproduce",
    "train",
    "train_workspace",
    "workspace_frame",
]
