"""Dawid-Skene (1979) by EM, with abstain modelled as one more outcome of each function.

Each labeling function ``j`` has a confusion matrix ``T_j[v, c] = P(lambda_j = v | y = c)``
over ``v`` in {abstain, 0..k-1}. Modelling the abstain keeps the model identifiable when
every function votes for one class only (the usual case with keyword rules): ignoring
abstains there makes every function look perfect and EM collapses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.core import ConfigError
from loopml.trainingdata.labeling._base import (
    LabelModel,
    TieBreak,
    posterior,
    resolve_permutation,
)
from loopml.trainingdata.labeling._matrix import FloatArray, IntArray, votes_one_hot

__all__ = ["DawidSkene"]


class DawidSkene(LabelModel):
    """Per-function confusion matrices (abstain included) and class balance, fitted by EM.

    EM starts from the majority vote's soft labels, stops when the mean log-likelihood
    changes by less than ``tol``, and adds ``smoothing`` pseudo-counts to every cell. The
    class labels are then aligned with the functions' votes (see ``resolve_permutation``).
    ``seed`` is recorded and only used by ``predict`` with ``tie_break="random"``.

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> L = np.stack([np.where(rng.random(2000) < a, y, 1 - y) for a in (0.9, 0.8, 0.7)], 1)
    >>> model = DawidSkene().fit(L, seed=0)
    >>> model.lf_accuracies_.round(1)
    array([0.9, 0.8, 0.7])
    >>> float((model.predict(L) == y).mean()) > 0.9
    True
    """

    def __init__(
        self,
        cardinality: int | None = None,
        tie_break: TieBreak = "abstain",
        max_iter: int = 200,
        tol: float = 1e-7,
        smoothing: float = 0.01,
    ) -> None:
        super().__init__(cardinality=cardinality, tie_break=tie_break)
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing

    def _fit(self, L: IntArray, class_balance: FloatArray | None, rng: np.random.Generator) -> None:
        if self.max_iter < 1 or self.smoothing < 0:
            raise ConfigError(
                "DawidSkene needs max_iter >= 1 and smoothing >= 0. "
                f"Got max_iter={self.max_iter}, smoothing={self.smoothing} instead."
            )
        votes = votes_one_hot(L, self.cardinality_)
        q = self._run_em(votes, _majority_soft_labels(votes, self.cardinality_), class_balance)
        permutation = resolve_permutation(self._agreement(votes, q))
        if (permutation != np.arange(self.cardinality_)).any():
            q = self._run_em(votes, q[:, permutation], class_balance)  # relabelled start
        self.permutation_ = permutation
        correct = self.confusion_[:, 1:, :].diagonal(axis1=1, axis2=2) @ self.class_balance_
        voting = (1 - self.confusion_[:, 0, :]) @ self.class_balance_
        self.lf_accuracies_ = correct / voting

    def _run_em(self, votes: Any, q: FloatArray, class_balance: FloatArray | None) -> FloatArray:
        self.log_likelihood_: list[float] = []
        for _ in range(self.max_iter):
            self._m_step(votes, q, class_balance)
            q, loglik = self._e_step(votes)
            self.log_likelihood_.append(loglik)
            if len(self.log_likelihood_) > 1 and abs(loglik - self.log_likelihood_[-2]) < self.tol:
                break
        self.n_iter_ = len(self.log_likelihood_)
        return q

    def _agreement(self, votes: Any, q: FloatArray) -> FloatArray:
        k = self.cardinality_
        joint = np.asarray(votes.T @ q).reshape(-1, k, k)  # [j, voted v, latent c]
        return np.asarray(joint.sum(axis=0).T)

    def _m_step(self, votes: Any, q: FloatArray, class_balance: FloatArray | None) -> None:
        k, alpha = self.cardinality_, self.smoothing
        class_mass = q.sum(axis=0)
        voted = np.asarray(votes.T @ q).reshape(-1, k, k)
        abstained = class_mass[None, :] - voted.sum(axis=1)  # (m, k)
        counts = np.concatenate([np.maximum(abstained, 0)[:, None, :], voted], axis=1) + alpha
        self.confusion_ = counts / counts.sum(axis=1, keepdims=True)  # (m, k+1 outcomes, k)
        if class_balance is None:
            prior = class_mass + alpha
            self.class_balance_ = prior / prior.sum()
        else:
            self.class_balance_ = class_balance

    def _e_step(self, votes: Any) -> tuple[FloatArray, float]:
        k = self.cardinality_
        log_t = np.log(self.confusion_)
        base = np.log(self.class_balance_) + log_t[:, 0, :].sum(axis=0)
        weights = (log_t[:, 1:, :] - log_t[:, :1, :]).reshape(-1, k)
        # class-major (k, n) so every reduction over the k classes runs along rows of n
        log_post = np.ascontiguousarray(np.asarray(votes @ weights).T)
        log_post += base[:, None]
        top = log_post.max(axis=0)
        log_post -= top
        joint = np.exp(log_post, out=log_post)
        evidence = joint.sum(axis=0)
        joint /= evidence
        return joint.T, float(np.mean(np.log(evidence) + top))

    def _predict_proba(self, L: IntArray) -> FloatArray:
        return posterior(L, self.confusion_, self.class_balance_, abstain_evidence=True)


def _majority_soft_labels(votes: Any, k: int) -> FloatArray:
    """The majority vote's soft labels from the sparse votes (uniform where none)."""
    per_class = np.tile(np.eye(k), (votes.shape[1] // k, 1))
    counts = np.asarray(votes @ per_class)
    totals = counts.sum(axis=1, keepdims=True)
    return np.asarray(np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / k))
