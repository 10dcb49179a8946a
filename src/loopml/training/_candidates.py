"""Candidate models: what each name builds, its search space, and the fitted model it yields.

Names: ``logistic_regression`` (classification), ``linear_regression`` (ridge, regression),
``lightgbm`` (gradient boosting, trained with LightGBM's native API), ``random_forest``,
``bagging`` (bagged decision trees) and ``stacking`` (logistic/ridge over a forest and a
histogram gradient boosting model). ``baseline`` may be listed too: baselines always run.

>>> sorted(CANDIDATES)[:3]
['bagging', 'lightgbm', 'linear_regression']
>>> check_candidates(["lightgbm", "xgboost"], "regression")
Traceback (most recent call last):
...
loopml.core._exceptions.ConfigError: The 'candidates' parameter of train must name known
candidates. Got 'xgboost' instead. (valid candidates: bagging, baseline, lightgbm,
linear_regression, logistic_regression, random_forest, stacking)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml.core import ConfigError
from loopml.training._encoding import FeatureEncoder

__all__ = ["CANDIDATES", "TrainedModel", "check_candidates", "fit_candidate", "search_space"]

CLASSIFICATION = ("binary_classification", "multiclass_classification")
ALL_TASKS = (*CLASSIFICATION, "regression")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "bagging": ALL_TASKS,
    "lightgbm": ALL_TASKS,
    "linear_regression": ("regression",),
    "logistic_regression": CLASSIFICATION,
    "random_forest": ALL_TASKS,
    "stacking": ALL_TASKS,
}
LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 20,
    "num_boost_round": 300,
    "early_stopping_rounds": 30,
}


def check_candidates(names: list[str], task: str) -> list[str]:
    """The candidate names to fit (without ``baseline``); unknown or unfit names are errors."""
    valid = sorted([*CANDIDATES, "baseline"])
    for name in names:
        if name not in valid:
            raise ConfigError(
                "The 'candidates' parameter of train must name known candidates. "
                f"Got {name!r} instead.",
                hint=f"valid candidates: {', '.join(valid)}",
            )
        if name != "baseline" and task not in CANDIDATES[name]:
            fits = [n for n, tasks in CANDIDATES.items() if task in tasks]
            raise ConfigError(
                f"The candidate {name!r} does not fit the task {task!r}.",
                hint=f"candidates for {task}: {', '.join(sorted(fits))}",
            )
    return [name for name in dict.fromkeys(names) if name != "baseline"]


@dataclass
class TrainedModel:
    """A fitted candidate: the input encoder and the estimator (LightGBM Booster or sklearn)."""

    name: str
    task: str
    encoder: FeatureEncoder
    estimator: Any
    classes: list[Any]
    params: dict[str, Any] = field(default_factory=dict)
    #: scores on the validation rows given to the fit, when the fit computed them anyway
    #: (LightGBM's early-stopping evaluation); equal to ``predict_matrix(X_valid)``
    validation_scores: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: scores on the test rows given to the fit, when it scored them (LightGBM); equal to
    #: ``predict_matrix(X_test)``
    test_scores: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def is_booster(self) -> bool:
        return type(self.estimator).__name__ == "Booster"

    def predict_matrix(self, X: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """Scores for an encoded matrix: P(positive), class probabilities, or values.

        ``threads`` caps a LightGBM model's threads for this call (``None``: its own setting).
        """
        if self.is_booster:
            if threads is not None:
                return np.asarray(self.estimator.predict(X, num_threads=threads), dtype=np.float64)
            return np.asarray(self.estimator.predict(X), dtype=np.float64)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(X), dtype=np.float64)
        probs = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        return probs[:, 1] if self.task == "binary_classification" else probs

    def predict_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Scores for a frame of input columns."""
        return self.predict_matrix(self.encoder.transform(frame))


def search_space(name: str, trial: Any) -> dict[str, Any]:
    """Hyperparameters an Optuna trial proposes for a candidate."""
    if name == "lightgbm":
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        }
    if name in ("logistic_regression", "linear_regression"):
        return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}
    if name == "random_forest":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 50, 300, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 20),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 50, log=True),
        }
    if name == "bagging":
        return {
            "n_estimators": trial.suggest_int("n_estimators", 10, 100, log=True),
            "max_samples": trial.suggest_float("max_samples", 0.3, 1.0),
        }
    return {}


def fit_candidate(
    name: str,
    task: str,
    params: dict[str, Any],
    encoder: FeatureEncoder,
    data: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    *,
    classes: list[Any],
    seed: int,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainedModel:
    """Fit one candidate on encoded ``(X_train, y_train, X_valid, y_valid)``; ``test``
    (encoded rows and targets) lets a fit that can score them cheaply do so
    (``TrainedModel.test_scores``)."""
    X, y, X_valid, y_valid = data
    if name == "lightgbm":
        scores: dict[str, np.ndarray] = {}
        booster, used = fit_lightgbm(
            task,
            params,
            X,
            y,
            X_valid,
            y_valid,
            categorical=encoder.categorical_indices,
            n_classes=len(classes),
            seed=seed,
            validation_scores=scores,
            test=test,
        )
        model = TrainedModel(name, task, encoder, booster, classes, used)
        model.validation_scores = scores.get("validation")
        model.test_scores = scores.get("test")
        return model
    from threadpoolctl import threadpool_limits

    estimator = _SKLEARN[name](task, params, encoder, seed)
    # OpenMP/BLAS threads cost more than they save on small data
    with threadpool_limits(limits=1 if len(y) < 50_000 else None):
        estimator.fit(X, y)
    return TrainedModel(name, task, encoder, estimator, classes, dict(params))


def lightgbm_params(task: str, params: dict[str, Any], n_classes: int, seed: int) -> dict[str, Any]:
    """The full LightGBM parameter set loopml trains with (recorded in every run)."""
    objective = {"binary_classification": "binary", "regression": "regression"}.get(
        task, "multiclass"
    )
    merged = {**LIGHTGBM_DEFAULTS, **params}
    merged.update(objective=objective, seed=seed, deterministic=True, verbosity=-1)
    merged.setdefault("force_col_wise", True)
    if objective == "multiclass":
        merged["num_class"] = n_classes
    return merged


def fit_lightgbm(
    task: str,
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    X_valid: np.ndarray | None,
    y_valid: np.ndarray | None,
    *,
    categorical: list[int],
    n_classes: int,
    seed: int,
    callbacks: list[Callable[..., Any]] | None = None,
    validation_scores: dict[str, np.ndarray] | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train a Booster with ``lightgbm.train``; early stopping on the validation rows.

    With ``validation_scores`` (a dict), the kept model's scores (as ``Booster.predict``
    gives them) are put there: under ``"validation"``, the ones LightGBM kept up to date for
    early stopping (rolled back to the best iteration when early stopping cut trees), and
    under ``"test"``, for the ``test`` rows, scored once training is over through the same
    binned path (about two thirds of the CPU of ``Booster.predict`` on raw values, and
    identical results; a test compares them). The test rows play no part in training or
    early stopping: they are added after the last tree.
    """
    import lightgbm

    used = lightgbm_params(task, params, n_classes, seed)
    # OpenMP threads cost more than they save on small data (8x slower on a busy 2-core box)
    used.setdefault("num_threads", 1 if len(y) < 50_000 else 0)
    train_params = {
        k: v for k, v in used.items() if k not in ("num_boost_round", "early_stopping_rounds")
    }
    train_set = lightgbm.Dataset(
        X, y, categorical_feature=categorical or "auto", free_raw_data=True
    )
    all_callbacks = list(callbacks or [])
    valid_sets = []
    if X_valid is not None and y_valid is not None and len(y_valid):
        valid_sets = [lightgbm.Dataset(X_valid, y_valid, reference=train_set)]
        rounds = int(used["early_stopping_rounds"])
        all_callbacks.append(lightgbm.early_stopping(rounds, verbose=False))
    booster = lightgbm.train(
        train_params,
        train_set,
        num_boost_round=int(used["num_boost_round"]),
        valid_sets=valid_sets,
        callbacks=all_callbacks,
        keep_training_booster=True,  # to read the validation scores; released below
    )
    kept = int(booster.best_iteration or booster.current_iteration())
    if validation_scores is not None:
        while booster.current_iteration() > kept:
            booster.rollback_one_iter()  # the scores LightGBM holds follow the kept trees
        held, names = list(valid_sets), ["validation"] * len(valid_sets)
        if test is not None and len(test[1]):
            held.append(lightgbm.Dataset(test[0], test[1], reference=train_set))
            names.append("test")
            booster.add_valid(held[-1], "test")
        validation_scores.update(zip(names, _held_scores(booster, held), strict=True))
    used["best_iteration"] = kept
    # what lightgbm.train does unless asked to keep the training booster: the model of the
    # best iteration, without the training data
    booster.model_from_string(booster.model_to_string()).free_dataset()
    return booster, used


def _held_scores(booster: Any, datasets: list[Any]) -> list[np.ndarray]:
    """The scores LightGBM holds for each of ``datasets`` (its validation sets; as
    ``Booster.predict`` gives them: probabilities, class probabilities, or values), read
    through the documented custom-metric hook, which receives them."""
    seen: dict[int, np.ndarray] = {}

    def capture(predictions: np.ndarray, data: Any) -> tuple[str, float, bool]:
        seen.setdefault(id(data), np.array(predictions, dtype=np.float64))
        return "captured", 0.0, True

    if datasets:
        booster.eval_valid(feval=capture)
    return [seen[id(data)] for data in datasets]


def _preprocessor(encoder: FeatureEncoder, *, scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from loopml.features.transformers import FeatureScaler, MissingIndicatorImputer

    categorical = encoder.categorical_indices
    numeric = [i for i in range(len(encoder.features)) if i not in categorical]
    numeric_steps: list[tuple[str, Any]] = [("impute", MissingIndicatorImputer())]
    if scale:
        numeric_steps.append(("scale", FeatureScaler()))
    parts: list[tuple[str, Any, list[int]]] = []
    if numeric:
        parts.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=64)
        parts.append(("categorical", onehot, categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0)


def _pipeline(encoder: FeatureEncoder, model: Any, *, scale: bool) -> Any:
    from sklearn.pipeline import Pipeline

    return Pipeline([("prepare", _preprocessor(encoder, scale=scale)), ("model", model)])


def _linear(task: str, params: dict[str, Any], encoder: FeatureEncoder, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    strength = float(params.get("C", 1.0))
    if task == "regression":
        return _pipeline(encoder, Ridge(alpha=1.0 / strength), scale=True)
    model = LogisticRegression(C=strength, max_iter=1000, random_state=seed)
    return _pipeline(encoder, model, scale=True)


def _forest(task: str, params: dict[str, Any], encoder: FeatureEncoder, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if task == "regression" else RandomForestClassifier
    settings = {"n_estimators": 100, "min_samples_leaf": 5, "max_depth": None, **params}
    return _pipeline(encoder, cls(random_state=seed, n_jobs=1, **settings), scale=False)


def _bagging(task: str, params: dict[str, Any], encoder: FeatureEncoder, seed: int) -> Any:
    from sklearn.ensemble import BaggingClassifier, BaggingRegressor
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if task == "regression":
        model: Any = BaggingRegressor(DecisionTreeRegressor(min_samples_leaf=5), random_state=seed)
    else:
        model = BaggingClassifier(DecisionTreeClassifier(min_samples_leaf=5), random_state=seed)
    model.set_params(
        n_estimators=int(params.get("n_estimators", 30)),
        max_samples=float(params.get("max_samples", 1.0)),
        n_jobs=1,
    )
    return _pipeline(encoder, model, scale=False)


def _stacking(task: str, params: dict[str, Any], encoder: FeatureEncoder, seed: int) -> Any:
    from sklearn import ensemble, linear_model

    forest_kw = {"n_estimators": 50, "min_samples_leaf": 5, "random_state": seed, "n_jobs": 1}
    if task == "regression":
        model: Any = ensemble.StackingRegressor(
            [
                ("forest", ensemble.RandomForestRegressor(**forest_kw)),
                (
                    "boosting",
                    ensemble.HistGradientBoostingRegressor(max_iter=50, random_state=seed),
                ),
            ],
            final_estimator=linear_model.Ridge(),
            cv=3,
        )
    else:
        model = ensemble.StackingClassifier(
            [
                ("forest", ensemble.RandomForestClassifier(**forest_kw)),
                (
                    "boosting",
                    ensemble.HistGradientBoostingClassifier(max_iter=50, random_state=seed),
                ),
            ],
            final_estimator=linear_model.LogisticRegression(max_iter=1000),
            cv=3,
        )
    return _pipeline(encoder, model, scale=False)


_SKLEARN: dict[str, Callable[[str, dict[str, Any], FeatureEncoder, int], Any]] = {
    "bagging": _bagging,
    "linear_regression": _linear,
    "logistic_regression": _linear,
    "random_forest": _forest,
    "stacking": _stacking,
}
