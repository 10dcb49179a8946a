"""The label-model contract shared by every model.

A label model turns a label matrix ``L`` (rows x labeling functions, ``-1`` = abstain) into
probabilistic labels: ``fit(L, class_balance=None, seed=...)``, ``predict_proba(L)`` and
``predict(L)``, where ties are either abstained on (``-1``) or broken at random, by policy.
Fitted attributes end with ``_``: ``cardinality_``, ``class_balance_``,
``lf_accuracies_`` (estimated ``P(lf is right | lf votes)``), ``seed_``.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, Self

import numpy as np

from loopml.core import ConfigError, DataError, NotFoundError
from loopml.trainingdata.labeling._matrix import (
    FloatArray,
    IntArray,
    check_cardinality,
    check_label_matrix,
    infer_cardinality,
    linear_votes,
)

__all__ = [
    "LabelModel",
    "TieBreak",
    "agreement_from_confusion",
    "posterior",
    "predict_from_proba",
    "resolve_permutation",
]

TieBreak = Literal["abstain", "random"]
_TIE_TOLERANCE = 1e-9


class LabelModel:
    """Base class: parameter handling, validation, prediction with a tie policy.

    Subclasses implement ``_fit(L, class_balance, rng)`` and ``_predict_proba(L)``.
    """

    _binary_only = False
    cardinality_: int
    n_lfs_: int
    class_balance_: FloatArray
    lf_accuracies_: FloatArray
    seed_: int | None

    def __init__(self, cardinality: int | None = None, tie_break: TieBreak = "abstain") -> None:
        self.cardinality = cardinality
        self.tie_break = tie_break

    # -- sklearn-style parameters ------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as ``sklearn.base.clone`` expects."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; unknown names are an error."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the contract ------------------------------------------------------------------
    def fit(self, L: Any, class_balance: Any = None, seed: int | None = None) -> Self:
        """Fit on a label matrix; ``class_balance`` fixes ``P(y)`` (else it is estimated)."""
        self._check_tie_break(self.tie_break)
        if self.cardinality is not None:
            check_cardinality(self.cardinality)
        matrix = check_label_matrix(L, self.cardinality)
        k = infer_cardinality(matrix, self.cardinality)
        if self._binary_only and k != 2:
            raise ConfigError(
                f"{type(self).__name__} handles binary tasks only (cardinality 2). "
                f"Got cardinality {k} instead.",
                hint="use DawidSkene or MatrixCompletion for more classes",
            )
        balance = _check_class_balance(class_balance, k)
        self.cardinality_ = k
        self.n_lfs_ = matrix.shape[1]
        self.seed_ = seed
        self._fit(matrix, balance, np.random.default_rng(seed))
        return self

    def predict_proba(self, L: Any) -> FloatArray:
        """``P(y = c | votes)`` per row and class; rows sum to one."""
        matrix = self._check_fitted_matrix(L)
        return self._predict_proba(matrix)

    def predict(
        self, L: Any, tie_break: TieBreak | None = None, seed: int | None = None
    ) -> IntArray:
        """The most likely class per row; ties give -1 (``"abstain"``) or a random winner."""
        policy = self.tie_break if tie_break is None else tie_break
        self._check_tie_break(policy)
        return predict_from_proba(self.predict_proba(L), policy, seed)

    def score(self, L: Any, y: Any, tie_break: TieBreak = "random", seed: int = 0) -> float:
        """Accuracy against gold labels ``y`` (an abstained prediction counts as wrong)."""
        gold = np.asarray(y)
        predicted = self.predict(L, tie_break=tie_break, seed=seed)
        if gold.shape != predicted.shape:
            raise DataError(f"y has {gold.shape[0]} labels but L has {predicted.shape[0]} rows.")
        return float(np.mean(predicted == gold))

    # -- to implement ------------------------------------------------------------------
    def _fit(self, L: IntArray, class_balance: FloatArray | None, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _predict_proba(self, L: IntArray) -> FloatArray:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------
    def _check_fitted_matrix(self, L: Any) -> IntArray:
        if not hasattr(self, "cardinality_"):
            raise NotFoundError(
                f"This {type(self).__name__} is not fitted yet.", hint="call fit(L) first"
            )
        matrix = check_label_matrix(L, self.cardinality_)
        if matrix.shape[1] != self.n_lfs_:
            raise DataError(
                f"L has {matrix.shape[1]} labeling functions (columns) but the model was "
                f"fitted on {self.n_lfs_}.",
                hint="apply the same labeling functions, in the same order",
            )
        return matrix

    @staticmethod
    def _check_tie_break(policy: str) -> None:
        if policy not in ("abstain", "random"):
            raise ConfigError(
                f"The 'tie_break' parameter must be 'abstain' or 'random'. Got {policy!r} instead."
            )


def _check_class_balance(class_balance: Any, k: int) -> FloatArray | None:
    if class_balance is None:
        return None
    balance = np.asarray(class_balance, dtype=np.float64)
    if balance.shape != (k,) or (balance <= 0).any() or not np.isclose(balance.sum(), 1.0):
        raise ConfigError(
            f"The 'class_balance' parameter must be {k} positive probabilities summing to 1. "
            f"Got {class_balance!r} instead."
        )
    return balance


def predict_from_proba(proba: FloatArray, tie_break: TieBreak, seed: int | None) -> IntArray:
    """Argmax per row; rows whose top probability is shared are -1 or a random winner.

    >>> predict_from_proba(np.array([[0.2, 0.8], [0.5, 0.5]]), "abstain", None)
    array([ 1, -1])
    """
    top = proba.max(axis=1, keepdims=True)
    tied = proba >= top - _TIE_TOLERANCE
    labels = np.argmax(proba, axis=1).astype(np.int64)
    is_tie = tied.sum(axis=1) > 1
    if not is_tie.any():
        return np.asarray(labels, dtype=np.int64)
    if tie_break == "abstain":
        labels[is_tie] = -1
        return np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    noise = rng.random(proba.shape) * tied
    labels[is_tie] = np.argmax(noise[is_tie], axis=1)
    return np.asarray(labels, dtype=np.int64)


def resolve_permutation(agreement: FloatArray) -> IntArray:
    """The class permutation that best agrees with the labeling functions' own votes.

    ``agreement[c, v]`` is the expected number (or share) of votes for class ``v`` on rows
    whose latent class is the model's ``c``. Latent-variable models are identifiable only up
    to relabelling the classes; the permutation returned maximises the agreement's trace
    (Hungarian assignment): labeling functions are assumed right more often than wrong on
    the whole, whatever the seed or the starting point. ``perm[v]`` is the model's class
    that becomes class ``v``.

    >>> resolve_permutation(np.array([[10.0, 90.0], [80.0, 5.0]]))
    array([1, 0])
    """
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-np.asarray(agreement))
    permutation = np.empty(len(rows), dtype=np.int64)
    permutation[cols] = rows
    return permutation


def agreement_from_confusion(confusion: FloatArray, class_balance: FloatArray) -> FloatArray:
    """``sum_j P(lambda_j = v, y = c)`` as ``[c, v]``, from ``confusion[j, 1 + v, c]``.

    >>> conf = np.array([[[0.5, 0.5], [0.4, 0.1], [0.1, 0.4]]])
    >>> agreement_from_confusion(conf, np.array([0.5, 0.5]))
    array([[0.2 , 0.05],
           [0.05, 0.2 ]])
    """
    return np.asarray((confusion[:, 1:, :].sum(axis=0) * class_balance).T)


def posterior(
    L: IntArray, confusion: FloatArray, class_balance: FloatArray, abstain_evidence: bool = True
) -> FloatArray:
    """``P(y | votes)`` for conditionally independent functions with ``confusion[j, o, c]``.

    Outcome ``o = 0`` is abstain, ``o = 1 + v`` a vote for ``v``. Without
    ``abstain_evidence`` an abstain tells nothing about ``y`` (Snorkel's rule).

    >>> conf = np.array([[[0.5, 0.5], [0.4, 0.1], [0.1, 0.4]]])
    >>> posterior(np.array([[0], [-1]]), conf, np.array([0.5, 0.5])).round(2)
    array([[0.8, 0.2],
           [0.5, 0.5]])
    """
    k = confusion.shape[2]
    log_t = np.log(confusion)
    if abstain_evidence:
        base = np.log(class_balance) + log_t[:, 0, :].sum(axis=0)
        weights = (log_t[:, 1:, :] - log_t[:, :1, :]).reshape(-1, k)
    else:
        base, weights = np.log(class_balance), log_t[:, 1:, :].reshape(-1, k)
    log_post = linear_votes(L, weights) + base
    log_post -= log_post.max(axis=1, keepdims=True)
    joint = np.exp(log_post)
    return np.asarray(joint / joint.sum(axis=1, keepdims=True), dtype=np.float64)
