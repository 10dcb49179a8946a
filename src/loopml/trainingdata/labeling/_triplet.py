"""The closed-form triplet method of FlyingSquid (Fu et al. 2020), for binary tasks.

For a binary latent class ``y`` and conditionally independent labeling functions, the
covariance of two functions' one-hot votes is rank one:
``Cov(1[l_i = v], 1[l_j = u]) = s_iv s_ju`` with ``s_iv = sqrt(p (1 - p)) * Delta_iv`` and
``Delta_iv = P(l_i = v | y = 1) - P(l_i = v | y = 0)``. Any three functions then give
``s_a^2 = Cov_ab Cov_ac / Cov_bc``; the model combines every triplet by least squares, takes
the signs from the leading eigenvector of the between-function covariance, and recovers
``P(l_i = v | y)`` from the vote rates. No iterations, no random start.

FlyingSquid states the method on ``E[l_i l_j]`` with votes in {-1, 0, +1}, which assumes
symmetric accuracies and abstains independent of ``y``; on covariances of one-hot votes
the same triplet algebra holds without those assumptions, so functions that vote one class
only (keyword rules) are handled. The global sign is chosen so the functions agree with the
latent label more often than not (``resolve_permutation``).
"""

from __future__ import annotations

import numpy as np

from loopml.trainingdata.labeling._base import (
    LabelModel,
    TieBreak,
    agreement_from_confusion,
    posterior,
    resolve_permutation,
)
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray, vote_moments

__all__ = ["Triplet"]

_EPS = 1e-6


class Triplet(LabelModel):
    """FlyingSquid's closed-form triplet estimator, binary tasks only.

    ``class_balance`` defaults to uniform, as in FlyingSquid; ``seed`` is recorded and only
    used by ``predict`` with ``tie_break="random"``.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 5000)
    >>> L = np.stack([np.where(rng.random(5000) < a, y, 1 - y) for a in (0.9, 0.8, 0.7)], 1)
    >>> Triplet().fit(L).lf_accuracies_.round(1)
    array([0.9, 0.8, 0.7])
    """

    _binary_only = True

    def __init__(self, cardinality: int | None = None, tie_break: TieBreak = "abstain") -> None:
        super().__init__(cardinality=cardinality, tie_break=tie_break)

    def _fit(self, L: IntArray, class_balance: FloatArray | None, rng: np.random.Generator) -> None:
        m = L.shape[1]
        overlaps = vote_moments(L, 2).overlaps
        rates = np.diag(overlaps).copy()  # P(l_i = v), v in {0, 1}
        cov = overlaps - np.outer(rates, rates)
        owner = np.repeat(np.arange(m), 2)
        s = _signs(cov, owner) * np.sqrt(_triplet_squares(cov, owner))
        p = np.full(2, 0.5) if class_balance is None else class_balance
        delta = s / np.sqrt(p[0] * p[1])
        self.class_balance_ = p
        self._set_confusion(rates, delta, m)
        if resolve_permutation(agreement_from_confusion(self.confusion_, p))[0] == 1:
            self._set_confusion(rates, -delta, m)  # the global sign

    def _set_confusion(self, rates: FloatArray, delta: FloatArray, m: int) -> None:
        p = self.class_balance_
        given_1 = rates + p[0] * delta  # P(l = v | y = 1) = rate + P(y = 0) Delta
        given_0 = rates - p[1] * delta
        votes = np.clip(np.stack([given_0, given_1], axis=1).reshape(m, 2, 2), _EPS, 1)
        abstain = np.clip(1 - votes.sum(axis=1), _EPS, 1)[:, None, :]
        confusion = np.concatenate([abstain, votes], axis=1)
        self.confusion_ = confusion / confusion.sum(axis=1, keepdims=True)
        correct = self.confusion_[:, 1:, :].diagonal(axis1=1, axis2=2) @ p
        self.lf_accuracies_ = correct / ((1 - self.confusion_[:, 0, :]) @ p)

    def _predict_proba(self, L: IntArray) -> FloatArray:
        return posterior(L, self.confusion_, self.class_balance_, abstain_evidence=True)


def _triplet_squares(cov: FloatArray, owner: IntArray) -> FloatArray:
    """``s_a^2`` from all triplets of distinct functions, combined by least squares."""
    squares = np.zeros(cov.shape[0])
    for a in range(cov.shape[0]):
        others = owner != owner[a]
        row = cov[a, others]
        pair = cov[np.ix_(others, others)]
        valid = owner[others][:, None] != owner[others][None, :]
        numerator = np.outer(row, row)[valid] @ pair[valid]
        denominator = pair[valid] @ pair[valid]
        squares[a] = max(numerator / denominator, 0.0) if denominator > 0 else 0.0
    return squares


def _signs(cov: FloatArray, owner: IntArray) -> FloatArray:
    """Relative signs: the leading eigenvector of the between-function covariance."""
    between = np.where(owner[:, None] != owner[None, :], cov, 0.0)
    _, vectors = np.linalg.eigh(between)
    lead = vectors[:, -1]
    return np.where(lead >= 0, 1.0, -1.0)
