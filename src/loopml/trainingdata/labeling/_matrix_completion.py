"""The matrix-completion label model of Ratner et al. (2019), Snorkel's LabelModel objective.

With ``A`` the one-hot votes (abstains left out), the overlaps matrix ``O = A^T A / n`` holds
``P(lambda_j = v, lambda_l = u)``. When functions ``j`` and ``l`` are conditionally
independent given ``y``, its ``(j, l)`` block factors as ``mu_j diag(p) mu_l^T`` with
``mu_j[v, c] = P(lambda_j = v | y = c)`` and ``p = P(y)``. The model fits ``mu`` (and ``p``
when no class balance is given) by minimising, with L-BFGS-B in SciPy,

    || (O - mu P mu^T)[Omega] ||^2 + || mu p - diag(O) ||^2 + l2 || mu - mu_prior ||^2
    + a penalty keeping each P(abstain | y) non-negative
    + (``better_than_random``) a penalty keeping each vote at least as likely under its
      own class: mu_j[v, v] >= mu_j[v, c],

where ``Omega`` is every off-diagonal block except the pairs named in ``dependencies``
(declared correlated functions). Work after ``O`` is independent of the number of rows,
so fitting a million rows costs one sparse product. Classes are then aligned with the
functions' votes (``resolve_permutation``), so no seed flips the labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from loopml.core import ConfigError
from loopml.trainingdata.labeling._base import (
    LabelModel,
    TieBreak,
    agreement_from_confusion,
    posterior,
    resolve_permutation,
)
from loopml.trainingdata.labeling._matrix import (
    FloatArray,
    IntArray,
    one_blas_thread,
    vote_moments,
)

__all__ = ["MatrixCompletion"]

_EPS = 1e-6
# Weight of the better-than-random penalty against the (normalised) moment loss: large
# enough that the constraint holds to about 1e-3, small enough for L-BFGS-B to stay stable.
_CONSTRAINT_WEIGHT = 100.0


class MatrixCompletion(LabelModel):
    """Fit ``P(lambda_j | y)`` from the functions' pairwise agreements (no EM over rows).

    ``seed`` jitters the starting point (multiplicatively, by up to ``init_noise``) the way
    Snorkel's random initialisation does; the label permutation is resolved after fitting,
    so every seed gives the same labels on data the model can identify.
    Without ``class_balance``, ``P(y)`` is uniform, as in Snorkel, unless
    ``estimate_class_balance=True`` fits it jointly (identifiable in theory, fragile on small
    real data: on YouTube it drifts to 0.69 / 0.31); prefer a balance measured on a small
    labelled sample. ``abstain_evidence=True`` also counts each abstain as evidence at
    prediction time; the default ignores abstains there, as Snorkel does (better on YouTube).
    ``better_than_random=True`` (the default) fits under the usual weak-supervision
    assumption that a labeling function is better than random: a vote for ``v`` is at least
    as likely when ``y = v`` as under any other class, so no vote counts as evidence against
    its own class. Real functions are rarely conditionally independent; without the
    constraint the moments of two correlated functions can make a third look adversarial
    (on YouTube an LF that is right on 95% of its votes was fitted at 26%). A function the
    data cannot place then sits at the boundary, its votes weightless, rather than inverted.
    ``l2`` (default 0) pulls ``mu`` toward a prior: the majority vote's conditional
    probabilities, or with ``prior_accuracy=a`` those of functions that are each right on a
    share ``a`` of their votes, at their observed vote rates (Snorkel's ``prec_init`` with
    its ``l2``). On conditionally independent functions any ``l2 > 0`` biases the estimates;
    on real, dependent ones a prior can label better: choose ``l2`` on a small labelled
    sample (``benchmarks/label_models.py`` picks it by log-loss on YouTube's valid rows).

    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 5000)
    >>> L = np.stack([np.where(rng.random(5000) < a, y, 1 - y) for a in (0.9, 0.8, 0.7)], 1)
    >>> model = MatrixCompletion().fit(L, seed=1)
    >>> model.lf_accuracies_.round(1)
    array([0.9, 0.8, 0.7])
    """

    def __init__(
        self,
        cardinality: int | None = None,
        tie_break: TieBreak = "abstain",
        dependencies: Sequence[tuple[int, int]] = (),
        l2: float = 0.0,
        max_iter: int = 1000,
        init_noise: float = 0.2,
        abstain_evidence: bool = False,
        estimate_class_balance: bool = False,
        better_than_random: bool = True,
        prior_accuracy: float | None = None,
    ) -> None:
        super().__init__(cardinality=cardinality, tie_break=tie_break)
        self.dependencies = dependencies
        self.l2 = l2
        self.max_iter = max_iter
        self.init_noise = init_noise
        self.abstain_evidence = abstain_evidence
        self.estimate_class_balance = estimate_class_balance
        self.better_than_random = better_than_random
        self.prior_accuracy = prior_accuracy

    def _fit(self, L: IntArray, class_balance: FloatArray | None, rng: np.random.Generator) -> None:
        self._check_params(L.shape[1])
        k, m = self.cardinality_, L.shape[1]
        moments = vote_moments(L, k)
        mu0 = np.clip(moments.majority_joint / moments.majority_mass, _EPS, 1 - _EPS)
        p0 = moments.majority_mass / moments.majority_mass.sum()
        if class_balance is None and not self.estimate_class_balance:
            class_balance = np.full(k, 1.0 / k)
        mask = _mask(m, k, self.dependencies)
        prior = mu0
        if self.prior_accuracy is not None:
            balance = p0 if class_balance is None else class_balance
            prior = _prior_mu(np.diag(moments.overlaps), balance, self.prior_accuracy)
        problem = _Objective(
            moments.overlaps, mask, prior, self.l2, class_balance, self.better_than_random
        )
        jitter = rng.uniform(1 - self.init_noise, 1 + self.init_noise, mu0.shape)
        mu, p = problem.solve(np.clip(mu0 * jitter, _EPS, 1 - _EPS), p0, self.max_iter)
        self._store(mu, p, m, k)
        permutation = resolve_permutation(agreement_from_confusion(self.confusion_, p))
        if (permutation != np.arange(k)).any():
            if class_balance is None:  # a pure relabelling of the same solution
                mu, p = mu[:, permutation], p[permutation]
            else:  # P(y) is fixed: start again from the relabelled solution
                mu, p = problem.solve(mu[:, permutation], p0, self.max_iter)
            self._store(mu, p, m, k)
        self.permutation_ = permutation
        self.n_iter_, self.loss_ = problem.n_iter, problem.final_loss

    def _check_params(self, m: int) -> None:
        if self.l2 < 0 or self.max_iter < 1 or not 0 <= self.init_noise < 1:
            raise ConfigError(
                "MatrixCompletion needs l2 >= 0, max_iter >= 1 and 0 <= init_noise < 1. Got "
                f"l2={self.l2}, max_iter={self.max_iter}, init_noise={self.init_noise} instead."
            )
        if self.prior_accuracy is not None and not 0 < self.prior_accuracy < 1:
            raise ConfigError(
                "The 'prior_accuracy' parameter of MatrixCompletion must be a probability "
                f"strictly between 0 and 1, or None. Got {self.prior_accuracy!r} instead."
            )
        for pair in self.dependencies:
            if len(pair) != 2 or not all(0 <= int(j) < m for j in pair) or pair[0] == pair[1]:
                raise ConfigError(
                    "The 'dependencies' parameter of MatrixCompletion must list pairs of "
                    f"distinct labeling-function indices in 0..{m - 1}. Got {pair!r} instead."
                )

    def _store(self, mu: FloatArray, p: FloatArray, m: int, k: int) -> None:
        votes = np.clip(mu, _EPS, 1 - _EPS).reshape(m, k, k)
        if self.better_than_random:  # the penalty leaves violations of ~1e-3: close them
            votes = _pool_violations(votes, p / p.sum())
        abstain = np.clip(1 - votes.sum(axis=1), _EPS, 1)[:, None, :]
        confusion = np.concatenate([abstain, votes], axis=1)
        self.confusion_ = confusion / confusion.sum(axis=1, keepdims=True)
        self.class_balance_ = p / p.sum()
        correct = self.confusion_[:, 1:, :].diagonal(axis1=1, axis2=2) @ self.class_balance_
        self.lf_accuracies_ = correct / ((1 - self.confusion_[:, 0, :]) @ self.class_balance_)

    def _predict_proba(self, L: IntArray) -> FloatArray:
        return posterior(L, self.confusion_, self.class_balance_, self.abstain_evidence)


def _mask(m: int, k: int, dependencies: Sequence[tuple[int, int]]) -> FloatArray:
    blocks = 1.0 - np.eye(m)
    for a, b in dependencies:
        blocks[int(a), int(b)] = blocks[int(b), int(a)] = 0.0
    return np.asarray(np.kron(blocks, np.ones((k, k))), dtype=np.float64)


def _prior_mu(rates: FloatArray, balance: FloatArray, accuracy: float) -> FloatArray:
    """``P(lambda_j = v | y = c)`` for functions right on a share ``accuracy`` of their
    votes, given the vote rates ``P(lambda_j = v)`` (rows ``j * k + v``) and ``P(y)``.

    >>> _prior_mu(np.array([0.2, 0.1]), np.array([0.5, 0.5]), 0.7).round(2)
    array([[0.28, 0.12],
           [0.06, 0.14]])
    """
    k = len(balance)
    own = np.tile(np.eye(k), (len(rates) // k, 1))  # [j * k + v, c] = 1 where c == v
    share = np.where(own == 1, accuracy, (1 - accuracy) / max(k - 1, 1))
    return np.asarray(np.clip(rates[:, None] * share / balance, _EPS, 1 - _EPS))


def _pool_violations(mu: FloatArray, balance: FloatArray) -> FloatArray:
    """Where a vote for ``v`` is likelier under a class ``c`` than under ``v``, give ``v``
    and every such ``c`` their ``P(y)``-weighted mean: the vote rate is kept and the vote
    becomes exactly weightless between those classes.

    >>> _pool_violations(np.array([[[0.3, 0.1], [0.21, 0.2]]]), np.array([0.5, 0.5]))
    array([[[0.3  , 0.1  ],
            [0.205, 0.205]]])
    """
    pooled = mu.copy()
    for j, v in zip(
        *np.nonzero((mu > np.einsum("jvv->jv", mu)[:, :, None]).any(axis=2)), strict=True
    ):
        group = mu[j, v] >= mu[j, v, v]
        pooled[j, v, group] = mu[j, v, group] @ balance[group] / balance[group].sum()
    return pooled


def _worse_than_random(mu: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``sum (mu[j, v, c] - mu[j, v, v])_+^2`` over ``c != v`` and its gradient.

    ``mu[j, v, c] = P(lambda_j = v | y = c)``: a positive term is a vote for ``v`` that is
    likelier under another class than under ``v`` itself.

    >>> mu = np.array([[[0.1, 0.3], [0.0, 0.2]]])  # votes for 0 likelier when y = 1
    >>> penalty, grad = _worse_than_random(mu)
    >>> round(float(penalty), 4), grad[0, 0].round(2).tolist()
    (0.04, [-0.4, 0.4])
    """
    own = np.einsum("jvv->jv", mu)
    excess = np.maximum(mu - own[:, :, None], 0.0)
    grad = 2 * excess
    own_grad = np.einsum("jvv->jv", grad)  # a view: the diagonal gets minus the row sum
    own_grad -= grad.sum(axis=2)
    return np.sum(excess**2), grad


class _Objective:
    """The loss and its gradient over the flattened ``mu`` and, if estimated, ``logit(p)``."""

    def __init__(
        self,
        overlaps: FloatArray,
        mask: FloatArray,
        mu0: FloatArray,
        l2: float,
        class_balance: FloatArray | None,
        better_than_random: bool = False,
    ) -> None:
        self.O, self.mask, self.mu0, self.l2 = overlaps, mask, mu0, l2
        self.better_than_random = better_than_random
        self.d = np.diag(overlaps).copy()
        self.fixed_p = class_balance
        self.k = mu0.shape[1]
        self.scale = 1.0 / max(float(np.sum((overlaps * mask) ** 2) + np.sum(self.d**2)), 1e-12)
        self.n_iter = 0
        self.final_loss = float("nan")

    def _unpack(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        size = self.mu0.size
        mu = x[:size].reshape(self.mu0.shape)
        if self.fixed_p is not None:
            return mu, self.fixed_p, None
        logits = x[size:]
        p = np.exp(logits - logits.max())
        return mu, p / p.sum(), logits

    def value_and_grad(self, x: FloatArray) -> tuple[float, FloatArray]:
        mu, p, logits = self._unpack(x)
        residual = (mu * p) @ mu.T - self.O
        residual *= self.mask
        r2 = mu @ p - self.d
        m, k = mu.shape[0] // self.k, self.k
        excess = np.maximum(mu.reshape(m, k, k).sum(axis=1) - 1.0, 0.0)  # P(abstain|y) < 0
        diff = mu - self.mu0
        loss = np.sum(residual**2) + r2 @ r2 + np.sum(excess**2)
        grad_mu = 4 * (residual @ mu) * p + 2 * np.outer(r2, p)
        grad_mu += 2 * np.broadcast_to(excess[:, None, :], (m, k, k)).reshape(-1, k)
        if self.better_than_random:
            penalty, grad_penalty = _worse_than_random(mu.reshape(m, k, k))
            loss += _CONSTRAINT_WEIGHT * penalty
            grad_mu += _CONSTRAINT_WEIGHT * grad_penalty.reshape(-1, k)
        grads = [grad_mu.ravel()]
        if logits is not None:
            grad_p = 2 * np.einsum("ac,ab,bc->c", mu, residual, mu) + 2 * (mu.T @ r2)
            grads.append((np.diag(p) - np.outer(p, p)) @ grad_p)
        grad = np.concatenate(grads) * self.scale
        grad[: mu.size] += 2 * self.l2 * diff.ravel() / mu.size
        return float(loss * self.scale + self.l2 * np.mean(diff**2)), grad

    def solve(
        self, start_mu: FloatArray, p0: FloatArray, max_iter: int
    ) -> tuple[FloatArray, FloatArray]:
        from scipy.optimize import minimize

        parts = [start_mu.ravel()]
        bounds = [(0.0, 1.0)] * start_mu.size
        if self.fixed_p is None:
            parts.append(np.log(p0))
            bounds += [(-20.0, 20.0)] * self.k
        with one_blas_thread():  # imported first, so SciPy's own OpenBLAS is limited too
            result = minimize(
                self.value_and_grad,
                np.concatenate(parts),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-10},
            )
        self.n_iter, self.final_loss = int(result.nit), float(result.fun)
        mu, p, _ = self._unpack(result.x)
        return mu, p
