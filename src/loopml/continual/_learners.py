"""Learners for continual training: retrain from scratch (stateless) or continue (stateful).

A learner turns a labeled window into a model and, in stateful mode, continues the current
model on the new rows instead:

- LightGBM: ``init_model`` continued boosting (``extra_rounds`` new trees a time), with a
  full rebuild every ``rebuild_every`` updates. With the binary objective, continued
  boosting saturates (probabilities near 0/1 stop the new trees from splitting; measured
  on Elec2, PEERS.md), so the stateful mode fits an L2 objective on the 0/1 label and clips
  its output to [0, 1];
- logistic regression: ``SGDClassifier.partial_fit`` on rows standardised with statistics
  of past rows only.

Every fit returns a ``Fitted`` that records which mode ran and how much work it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopml.core import ConfigError

__all__ = ["Fitted", "LightGBMLearner", "LogisticLearner", "make_learner"]

FloatArray = npt.NDArray[np.float64]


@dataclass
class Fitted:
    """A trained model and how it came to be."""

    model: Any
    mode: Literal["stateless", "stateful"]
    rows: int
    work: float  # rows x trees built (LightGBM) or rows x epochs (SGD): the compute spent
    updates_since_rebuild: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class LightGBMLearner:
    """LightGBM, single-threaded per fit by default (2 cores, many small fits).

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3)); y = (x[:, 0] > 0).astype(float)
    >>> learner = LightGBMLearner(rounds=20)
    >>> fitted = learner.fit(x, y)
    >>> fitted.mode, float(np.mean((learner.predict(fitted, x) >= 0.5) == y)) > 0.95
    ('stateless', True)
    """

    def __init__(
        self,
        *,
        task: str = "binary_classification",
        rounds: int = 60,
        extra_rounds: int = 10,
        rebuild_every: int = 20,
        params: dict[str, Any] | None = None,
        seed: int = 0,
        bin_rows: int = 10_000,
    ) -> None:
        self.task = task
        self.bin_rows = bin_rows
        self.rounds = rounds
        self.extra_rounds = extra_rounds
        self.rebuild_every = rebuild_every
        self.params = params or {}
        self.seed = seed

    def _params(self, objective: str) -> dict[str, Any]:
        base = {
            "objective": objective,
            "verbose": -1,
            "num_threads": 1,
            "seed": self.seed,
            "num_leaves": 31,
            "learning_rate": 0.1,
            "min_data_in_leaf": 20,
            "deterministic": True,
            "feature_pre_filter": False,  # reused bins keep every feature splittable
        }
        return {**base, **self.params}

    def bins(self, x: FloatArray, y: FloatArray) -> Any:
        """Feature bins learned from ``x``, for later fits to reuse (``fit(reference=...)``).

        Binning is a fifth of a fit on Elec2's history; a caller that fits in time order
        can bin once on rows it has already trained on and reuse the bins while its
        windows grow. The bins are quantiles of at most ``bin_rows`` evenly spaced rows.
        """
        import lightgbm as lgb

        every = max(1, -(-len(x) // self.bin_rows))
        return lgb.Dataset(x[::every], y[::every], params=self._params("binary")).construct()

    def continues(self, previous: Fitted | None, stateful: bool) -> bool:
        """Whether a stateful fit would continue ``previous`` (else it rebuilds from scratch)."""
        return (
            stateful
            and previous is not None
            and previous.updates_since_rebuild + 1 < self.rebuild_every
            and previous.extra.get("objective") == "regression"
        )

    def fit(
        self,
        x: FloatArray,
        y: FloatArray,
        *,
        previous: Fitted | None = None,
        stateful: bool = False,
        reference: Any = None,
    ) -> Fitted:
        """Train from scratch, or continue ``previous`` when ``stateful``.

        ``reference`` (from ``bins``) reuses bins learned earlier instead of binning ``x``.
        """
        import lightgbm as lgb

        regression_objective = "regression" if stateful or self.task == "regression" else "binary"
        data = lgb.Dataset(x, y, reference=reference)
        if self.continues(previous, stateful):
            assert previous is not None
            booster = lgb.train(
                self._params("regression"),
                data,
                self.extra_rounds,
                init_model=previous.model,
                keep_training_booster=True,
            )
            return Fitted(
                booster,
                "stateful",
                len(y),
                float(self.extra_rounds * len(y)),
                previous.updates_since_rebuild + 1,
                {"objective": "regression"},
            )
        booster = lgb.train(
            self._params(regression_objective),
            data,
            self.rounds,
            keep_training_booster=stateful,
        )
        mode: Literal["stateless", "stateful"] = "stateful" if stateful else "stateless"
        work = float(self.rounds * len(y))
        return Fitted(booster, mode, len(y), work, 0, {"objective": regression_objective})

    def predict(self, fitted: Fitted, x: FloatArray) -> FloatArray:
        """Scores: positive-class probability (clipped L2 output in stateful mode)."""
        scores = np.asarray(fitted.model.predict(x, num_threads=1), dtype=np.float64)
        if fitted.extra.get("objective") == "regression" and self.task != "regression":
            return np.asarray(np.clip(scores, 0.0, 1.0), dtype=np.float64)
        return scores


class LogisticLearner:
    """Logistic regression by SGD; stateful mode continues with ``partial_fit``.

    Features are standardised with running means and variances of the rows seen so far
    (never of rows to come).
    """

    def __init__(self, *, alpha: float = 1e-4, epochs: int = 5, seed: int = 0) -> None:
        self.alpha = alpha
        self.epochs = epochs
        self.seed = seed

    def fit(
        self,
        x: FloatArray,
        y: FloatArray,
        *,
        previous: Fitted | None = None,
        stateful: bool = False,
        reference: Any = None,
    ) -> Fitted:
        """Train from scratch, or continue with ``partial_fit`` (``reference`` is unused)."""
        from sklearn.linear_model import SGDClassifier

        x = np.nan_to_num(x)
        if stateful and previous is not None:
            model, (count, mean, m2) = previous.model
            new_count = count + len(x)
            delta = x.mean(axis=0) - mean
            mean = mean + delta * len(x) / new_count
            m2 = m2 + x.var(axis=0) * len(x) + delta**2 * count * len(x) / new_count
            scale = np.sqrt(m2 / new_count) + 1e-9
            model.partial_fit((x - mean) / scale, y)
            return Fitted((model, (new_count, mean, m2)), "stateful", len(y), float(len(y)))
        mean, var = x.mean(axis=0), x.var(axis=0)
        model = SGDClassifier(
            loss="log_loss",
            alpha=self.alpha,
            max_iter=self.epochs,
            tol=None,
            random_state=self.seed,
        )
        model.fit((x - mean) / (np.sqrt(var) + 1e-9), y)
        return Fitted(
            (model, (len(x), mean, var * len(x))), "stateless", len(y), float(len(y) * self.epochs)
        )

    def continues(self, previous: Fitted | None, stateful: bool) -> bool:
        """Stateful fits always continue with ``partial_fit``."""
        return stateful and previous is not None

    def predict(self, fitted: Fitted, x: FloatArray) -> FloatArray:
        model, (count, mean, m2) = fitted.model
        scale = np.sqrt(m2 / count) + 1e-9
        return np.asarray(
            model.predict_proba((np.nan_to_num(x) - mean) / scale)[:, 1], dtype=np.float64
        )


def make_learner(
    name: str, *, task: str, seed: int = 0, **params: Any
) -> LightGBMLearner | LogisticLearner:
    """A learner by name: ``lightgbm`` or ``logistic_regression``."""
    if name == "lightgbm":
        return LightGBMLearner(task=task, seed=seed, **params)
    if name == "logistic_regression":
        return LogisticLearner(seed=seed, **params)
    raise ConfigError(
        "The 'learner' parameter must be one of ['lightgbm', 'logistic_regression']. "
        f"Got {name!r} instead."
    )
