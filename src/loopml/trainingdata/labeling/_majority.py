"""Majority vote: each labeling function's vote counts once."""

from __future__ import annotations

import numpy as np

from loopml.trainingdata.labeling._base import LabelModel, TieBreak
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray, lf_agreement, vote_counts

__all__ = ["MajorityVote"]


class MajorityVote(LabelModel):
    """The class with the most votes; a row nobody votes on gets the class balance.

    ``predict_proba`` spreads each row's probability over the classes in proportion to
    their votes. ``lf_accuracies_`` is each labeling function's agreement with the majority
    (ties and its own vote included): a rough, upward-biased estimate, since a function
    always agrees with itself.

    >>> L = np.array([[0, 0, -1], [1, 1, 0], [1, 0, -1], [-1, -1, -1]])
    >>> model = MajorityVote().fit(L)
    >>> model.predict(L)
    array([ 0,  1, -1, -1])
    >>> model.predict(L, tie_break="random", seed=0)[:2]
    array([0, 1])
    """

    def __init__(self, cardinality: int | None = None, tie_break: TieBreak = "abstain") -> None:
        super().__init__(cardinality=cardinality, tie_break=tie_break)

    def _fit(self, L: IntArray, class_balance: FloatArray | None, rng: np.random.Generator) -> None:
        k = self.cardinality_
        self.class_balance_ = np.full(k, 1.0 / k) if class_balance is None else class_balance
        self.lf_accuracies_ = lf_agreement(L, self._predict_proba(L))

    def _predict_proba(self, L: IntArray) -> FloatArray:
        counts = vote_counts(L, self.cardinality_)
        totals = counts.sum(axis=1, keepdims=True)
        proba = np.where(totals > 0, counts / np.maximum(totals, 1), self.class_balance_)
        return np.asarray(proba, dtype=np.float64)
