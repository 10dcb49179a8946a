"""Testing in production: assignment, routing, A/B statistics, shadow, canary, interleaving,
bandits and off-policy evaluation.

Pure policies and statistics (arrays in, result objects out) that the prediction service
and the continual loop call. The routing seam is ``RoutingPolicy.route(unit_id,
request_id) -> RoutingDecision``; every policy here costs a few microseconds a request.

>>> from loopml import experiments
>>> experiments.srm_test([50_000, 48_000]).alarm
True
"""

from loopml.experiments._assignment import Experiment, Layer, Variant, bucket
from loopml.experiments._bandits import UCB1, EpsilonGreedy, ThompsonBernoulli, ThompsonGaussian
from loopml.experiments._canary import (
    ArmWindow,
    CanarySpec,
    CanaryState,
    Check,
    StepAnalysis,
    abort,
    advance,
    analyze_step,
    resume,
    start_canary,
)
from loopml.experiments._checks import check_bandit, check_routing_policy
from loopml.experiments._contextual import LinearThompson, LinUCB
from loopml.experiments._interleaving import (
    Interleaving,
    PreferenceResult,
    RankerSimulation,
    credit,
    preference_test,
    simulate_rankers,
    simulated_power,
    team_draft,
    users_needed,
)
from loopml.experiments._manage import (
    abort_rollout,
    experiment_from_record,
    get_experiment,
    get_rollout,
    list_experiments,
    list_rollouts,
    observe_rollout,
    resume_rollout,
    start_experiment,
    start_rollout,
    stop_experiment,
)
from loopml.experiments._ope import (
    ESTIMATORS,
    OPEResult,
    average_action_distribution,
    estimate_policy_value,
    replay,
)
from loopml.experiments._report import ABReport, ab_report
from loopml.experiments._routing import (
    ABPolicy,
    BanditPolicy,
    CanaryPolicy,
    ChampionPolicy,
    RoutingDecision,
    RoutingPolicy,
    ShadowPolicy,
)
from loopml.experiments._sequential import SequentialResult, msprt
from loopml.experiments._shadow import ShadowReport, pair_shadow_log, shadow_report
from loopml.experiments._stats import (
    SRMResult,
    TestResult,
    cuped_adjust,
    cuped_ttest,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
    srm_test,
    two_proportion_ztest,
    welch_ttest,
)

__all__ = [
    "ESTIMATORS",
    "UCB1",
    "ABPolicy",
    "ABReport",
    "ArmWindow",
    "BanditPolicy",
    "CanaryPolicy",
    "CanarySpec",
    "CanaryState",
    "ChampionPolicy",
    "Check",
    "EpsilonGreedy",
    "Experiment",
    "Interleaving",
    "Layer",
    "LinUCB",
    "LinearThompson",
    "OPEResult",
    "PreferenceResult",
    "RankerSimulation",
    "RoutingDecision",
    "RoutingPolicy",
    "SRMResult",
    "SequentialResult",
    "ShadowPolicy",
    "ShadowReport",
    "StepAnalysis",
    "TestResult",
    "ThompsonBernoulli",
    "ThompsonGaussian",
    "Variant",
    "ab_report",
    "abort",
    "abort_rollout",
    "advance",
    "analyze_step",
    "average_action_distribution",
    "bucket",
    "check_bandit",
    "check_routing_policy",
    "credit",
    "cuped_adjust",
    "cuped_ttest",
    "estimate_policy_value",
    "experiment_from_record",
    "get_experiment",
    "get_rollout",
    "list_experiments",
    "list_rollouts",
    "msprt",
    "observe_rollout",
    "pair_shadow_log",
    "power_proportions",
    "preference_test",
    "replay",
    "resume",
    "resume_rollout",
    "sample_size_means",
    "sample_size_proportions",
    "shadow_report",
    "simulate_rankers",
    "simulated_power",
    "srm_test",
    "start_canary",
    "start_experiment",
    "start_rollout",
    "stop_experiment",
    "team_draft",
    "two_proportion_ztest",
    "users_needed",
    "welch_ttest",
]
