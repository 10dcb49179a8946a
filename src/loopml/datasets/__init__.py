"""Data to run loopml on: the built-in card-fraud scenario and loaders for real datasets.

>>> from loopml import datasets
>>> world = datasets.card_fraud(n_days=14, n_cards=200, n_merchants=50, seed=3)
>>> sorted(vars(world))
['cards', 'chargebacks', 'ground_truth', 'labels', 'merchants', 'transactions']
"""

from loopml.datasets._card_fraud import CardFraud, GroundTruth, LabelDelay, card_fraud
from loopml.datasets._demo import STEPS as DEMO_STEPS
from loopml.datasets._demo import DemoResult, DemoStep, run_demo
from loopml.datasets._loaders import (
    YOUTUBE_LABELING_FUNCTIONS,
    OpenBandit,
    WeakLabels,
    datasets_dir,
    load_elec2,
    load_open_bandit,
    load_sea,
    load_youtube_spam,
)

__all__ = [
    "DEMO_STEPS",
    "YOUTUBE_LABELING_FUNCTIONS",
    "CardFraud",
    "DemoResult",
    "DemoStep",
    "GroundTruth",
    "LabelDelay",
    "OpenBandit",
    "WeakLabels",
    "card_fraud",
    "datasets_dir",
    "load_elec2",
    "load_open_bandit",
    "load_sea",
    "load_youtube_spam",
    "run_demo",
]
