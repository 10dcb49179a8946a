"""``check_label_model``: the generic checks every label model must pass.

Like River's ``river.checks``: one suite, run over every implementation by one test. Each
check raises ``AssertionError`` naming the model and what broke.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from loopml.core import ConfigError, DataError, NotFoundError
from loopml.trainingdata.labeling._base import LabelModel
from loopml.trainingdata.labeling._synthetic import synthetic_label_matrix

__all__ = ["check_label_model", "label_model_checks"]

_ACCURACIES = [0.92, 0.85, 0.8, 0.7, 0.65]
_COVERAGES = [0.6, 0.5, 0.7, 0.6, 0.8]


def _fresh(model: LabelModel) -> LabelModel:
    return type(model)(**model.get_params())


def check_params(model: LabelModel) -> None:
    """get_params / set_params round-trip; a clone is unfitted and equal in parameters."""
    clone = _fresh(model)
    assert clone.get_params() == model.get_params(), f"{model!r}: clone changed params"
    assert not hasattr(clone, "cardinality_"), f"{model!r}: __init__ must not fit"
    try:
        clone.set_params(no_such_parameter=1)
    except ConfigError:
        pass
    else:
        raise AssertionError(f"{model!r}: set_params accepted an unknown name")


def check_fit_predict_shapes(model: LabelModel) -> None:
    """fit returns self; proba rows sum to one; predict stays in -1..k-1; L untouched."""
    data = synthetic_label_matrix(2_000, _ACCURACIES, _COVERAGES, seed=1)
    L = data.L.copy()
    fitted = _fresh(model).fit(L, seed=0)
    assert fitted.cardinality_ == 2 and fitted.n_lfs_ == 5, f"{model!r}: fitted attributes"
    assert np.array_equal(L, data.L), f"{model!r}: fit modified L"
    proba = fitted.predict_proba(L)
    assert proba.shape == (2_000, 2) and np.isfinite(proba).all(), f"{model!r}: proba shape"
    assert np.allclose(proba.sum(axis=1), 1) and (proba >= 0).all(), f"{model!r}: proba sums"
    assert np.isclose(fitted.class_balance_.sum(), 1), f"{model!r}: class_balance_"
    assert fitted.lf_accuracies_.shape == (5,), f"{model!r}: lf_accuracies_ shape"
    for policy in ("abstain", "random"):
        labels = fitted.predict(L, tie_break=policy, seed=0)
        assert set(np.unique(labels)) <= {-1, 0, 1}, f"{model!r}: predict values"


def check_all_abstain_rows(model: LabelModel) -> None:
    """Rows with no vote get a valid distribution; with a tie, abstain or a random class."""
    data = synthetic_label_matrix(1_000, _ACCURACIES, _COVERAGES, seed=2)
    fitted = _fresh(model).fit(data.L, class_balance=[0.5, 0.5], seed=0)
    empty = np.full((3, 5), -1, dtype=np.int8)
    proba = fitted.predict_proba(empty)
    assert np.allclose(proba.sum(axis=1), 1), f"{model!r}: proba of empty rows"
    random = fitted.predict(empty, tie_break="random", seed=0)
    assert set(random) <= {0, 1}, f"{model!r}: random ties must pick a class"
    tied = np.isclose(proba[:, 0], proba[:, 1])
    abstained = fitted.predict(empty, tie_break="abstain")
    assert (abstained[tied] == -1).all(), f"{model!r}: tied rows must abstain"


def check_recovers_labels_and_accuracies(model: LabelModel) -> None:
    """Independent functions with known accuracies: labels and accuracies are recovered."""
    data = synthetic_label_matrix(20_000, _ACCURACIES, _COVERAGES, seed=3)
    fitted = _fresh(model).fit(data.L, seed=0)
    accuracy = fitted.score(data.L, data.y)
    assert accuracy > 0.8, f"{model!r}: accuracy {accuracy:.3f} on easy synthetic labels"
    tolerance = 0.15 if type(model).__name__ == "MajorityVote" else 0.04
    error = np.abs(fitted.lf_accuracies_ - data.accuracies).max()
    assert error < tolerance, f"{model!r}: LF accuracies off by {error:.3f} > {tolerance}"


def check_no_label_flip_across_seeds(model: LabelModel) -> None:
    """Whatever the seed, the labels keep their meaning (the permutation is resolved)."""
    data = synthetic_label_matrix(3_000, _ACCURACIES, _COVERAGES, seed=4)
    for seed in range(5):
        accuracy = _fresh(model).fit(data.L, seed=seed).score(data.L, data.y)
        assert accuracy > 0.8, f"{model!r}: seed {seed} gave accuracy {accuracy:.3f}"


def check_deterministic(model: LabelModel) -> None:
    """The same seed gives the same probabilities."""
    data = synthetic_label_matrix(1_000, _ACCURACIES, _COVERAGES, seed=5)
    a = _fresh(model).fit(data.L, seed=7).predict_proba(data.L)
    b = _fresh(model).fit(data.L, seed=7).predict_proba(data.L)
    assert np.allclose(a, b), f"{model!r}: not deterministic for a fixed seed"


def check_class_balance_respected(model: LabelModel) -> None:
    """A given class balance is used as is."""
    data = synthetic_label_matrix(1_000, _ACCURACIES, _COVERAGES, seed=6)
    fitted = _fresh(model).fit(data.L, class_balance=[0.3, 0.7], seed=0)
    assert np.allclose(fitted.class_balance_, [0.3, 0.7]), f"{model!r}: class_balance_"


def check_bad_input(model: LabelModel) -> None:
    """Bad matrices and calls fail with loopml errors, not numpy tracebacks."""
    data = synthetic_label_matrix(500, _ACCURACIES, _COVERAGES, seed=7)
    cases: list[tuple[type[Exception], Callable[[], object]]] = [
        (NotFoundError, lambda: _fresh(model).predict(data.L)),
        (DataError, lambda: _fresh(model).fit(data.L[:, 0])),
        (DataError, lambda: _fresh(model).fit(np.full((4, 2), 0.5))),
        (DataError, lambda: _fresh(model).set_params(cardinality=2).fit(data.L + 2)),
        (ConfigError, lambda: _fresh(model).fit(data.L, class_balance=[0.9, 0.9])),
        (DataError, lambda: _fresh(model).fit(data.L).predict(data.L[:, :3])),
        (ConfigError, lambda: _fresh(model).fit(data.L).predict(data.L, tie_break="coin")),  # type: ignore[arg-type]
    ]
    for error, call in cases:
        try:
            call()
        except error:
            continue
        except Exception as other:
            raise AssertionError(f"{model!r}: expected {error.__name__}, got {other!r}") from other
        raise AssertionError(f"{model!r}: expected {error.__name__}, nothing was raised")


def check_multiclass(model: LabelModel) -> None:
    """Three classes (skipped for binary-only models, which must refuse them clearly)."""
    data = synthetic_label_matrix(5_000, _ACCURACIES, _COVERAGES, cardinality=3, seed=8)
    if model._binary_only:
        try:
            _fresh(model).fit(data.L)
        except ConfigError:
            return
        raise AssertionError(f"{model!r}: a binary-only model accepted 3 classes")
    fitted = _fresh(model).fit(data.L, seed=0)
    assert fitted.predict_proba(data.L).shape == (5_000, 3), f"{model!r}: 3-class proba"
    assert fitted.score(data.L, data.y) > 0.8, f"{model!r}: 3-class accuracy"


def label_model_checks() -> list[Callable[[LabelModel], None]]:
    """Every check, in order (for parametrised tests)."""
    return [
        check_params,
        check_fit_predict_shapes,
        check_all_abstain_rows,
        check_recovers_labels_and_accuracies,
        check_no_label_flip_across_seeds,
        check_deterministic,
        check_class_balance_respected,
        check_bad_input,
        check_multiclass,
    ]


def check_label_model(model: LabelModel) -> None:
    """Run every generic check on ``model``; raises ``AssertionError`` on the first failure.

    >>> from loopml.trainingdata.labeling import DawidSkene
    >>> check_label_model(DawidSkene())
    """
    for check in label_model_checks():
        check(model)
