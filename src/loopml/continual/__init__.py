"""Continual learning: retrain policies, stateless and stateful training, the replay simulator.

>>> from loopml import continual
>>> continual.stage_of(continual.RetrainConfig(every="7d"))
'automated stateless retraining'
"""

from loopml.continual._demo import LOOP_MIN_DAYS, LOOP_STEPS, card_features
from loopml.continual._freshness import FreshnessResult, freshness_experiment
from loopml.continual._learners import Fitted, LightGBMLearner, LogisticLearner, make_learner
from loopml.continual._loop import PassResult, loop_status, run_pass
from loopml.continual._policy import RetrainDecision, decide_retrain, stage_of, window_weights
from loopml.continual._promote import (
    VersionEvaluation,
    champion_version,
    evaluate_version,
    promote,
    rollback,
)
from loopml.continual._simulate import (
    SimulationResult,
    build_stream_features,
    check_stream,
    simulate,
)
from loopml.core import RetrainConfig, RolloutConfig

__all__ = [
    "LOOP_MIN_DAYS",
    "LOOP_STEPS",
    "Fitted",
    "FreshnessResult",
    "LightGBMLearner",
    "LogisticLearner",
    "PassResult",
    "RetrainConfig",
    "RetrainDecision",
    "RolloutConfig",
    "SimulationResult",
    "VersionEvaluation",
    "build_stream_features",
    "card_features",
    "champion_version",
    "check_stream",
    "decide_retrain",
    "evaluate_version",
    "freshness_experiment",
    "loop_status",
    "make_learner",
    "promote",
    "rollback",
    "run_pass",
    "simulate",
    "stage_of",
    "window_weights",
]
