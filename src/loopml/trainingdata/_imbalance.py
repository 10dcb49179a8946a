"""Class imbalance: class weights, focal loss for LightGBM, resampling inside the training fold.

Resampling before a split copies (or interpolates) minority rows onto both sides, so the
evaluation scores the model on rows it trained on. Here resampling happens only in
``ResampledClassifier.fit`` or on ``split.train`` (:func:`resample_training_split`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from loopml.core import ConfigError, DataError
from loopml.trainingdata._splits import Split
from loopml.trainingdata._timecols import require_columns

__all__ = [
    "FocalLoss",
    "class_weights",
    "resample_training_split",
    "sample_weights",
]

_SAMPLERS = {
    "random_over": ("imblearn.over_sampling", "RandomOverSampler"),
    "random_under": ("imblearn.under_sampling", "RandomUnderSampler"),
    "smote": ("imblearn.over_sampling", "SMOTE"),
    "adasyn": ("imblearn.over_sampling", "ADASYN"),
    "tomek": ("imblearn.under_sampling", "TomekLinks"),
    "smote_tomek": ("imblearn.combine", "SMOTETomek"),
}


def class_weights(
    y: ArrayLike, *, method: str = "effective_number", beta: float = 0.999
) -> dict[Any, float]:
    """A weight per class, normalised so the weights sum to the number of classes.

    ``"effective_number"`` is Cui et al. (2019): w_c proportional to (1 - beta) / (1 - beta**n_c),
    the inverse of the effective number of samples; ``beta=0`` gives equal weights and
    ``beta -> 1`` approaches inverse frequency. ``"inverse_frequency"`` is w_c ~ 1 / n_c.

    >>> w = class_weights([0] * 90 + [1] * 10, method="inverse_frequency")
    >>> {k: round(v, 2) for k, v in w.items()}
    {0: 0.2, 1: 1.8}
    >>> w = class_weights([0] * 90 + [1] * 10, beta=0.9)  # effective numbers 10.0 and 6.5
    >>> {k: round(v, 2) for k, v in w.items()}
    {0: 0.79, 1: 1.21}
    """
    values = pd.Series(np.asarray(y))
    if values.isna().any():
        raise DataError(
            f"class_weights: the label is missing at row "
            f"{int(np.flatnonzero(values.isna().to_numpy())[0])}"
        )
    counts = values.value_counts().sort_index()
    n = counts.to_numpy(dtype=float)
    if method == "effective_number":
        if not 0.0 <= beta < 1.0:
            raise ConfigError(
                f"The 'beta' parameter of class_weights must lie in [0, 1). Got {beta!r} instead."
            )
        raw = (1.0 - beta) / -np.expm1(n * np.log(beta)) if beta > 0 else np.ones_like(n)
    elif method == "inverse_frequency":
        raw = 1.0 / n
    else:
        raise ConfigError(
            "The 'method' parameter of class_weights must be 'effective_number' or "
            f"'inverse_frequency'. Got {method!r} instead."
        )
    weights = raw / raw.sum() * len(n)
    return {_plain(k): float(w) for k, w in zip(counts.index, weights, strict=True)}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def sample_weights(
    y: ArrayLike, *, method: str = "effective_number", beta: float = 0.999
) -> np.ndarray:
    """Per-row weights from :func:`class_weights`, ready for ``fit(..., sample_weight=...)``.

    >>> sample_weights([0, 0, 0, 1], method="inverse_frequency").round(2).tolist()
    [0.5, 0.5, 0.5, 1.5]
    """
    weights = class_weights(y, method=method, beta=beta)
    return pd.Series(np.asarray(y)).map(weights).to_numpy(dtype=float)


class FocalLoss:
    """Binary focal loss (Lin et al. 2017) as a LightGBM custom objective.

    loss = -alpha_t (1 - p_t)**gamma log(p_t), with p the sigmoid of the raw score. Pass the
    instance as ``objective=`` to ``lightgbm.LGBMClassifier`` (or ``fobj`` to ``lgb.train``);
    the model then returns raw scores, which :meth:`probability` turns into probabilities.
    ``gamma=0, alpha=0.5`` is half the ordinary log loss. LightGBM starts custom objectives
    from a raw score of 0; pass ``init_score=loss.init_score(y)`` to start from the prior.

    Examples
    --------
    >>> import numpy as np
    >>> loss = FocalLoss(alpha=0.5, gamma=0.0)
    >>> grad, hess = loss(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    >>> grad.tolist(), hess.tolist()
    ([-0.25, 0.25], [0.125, 0.125])
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        if not 0.0 < alpha < 1.0:
            raise ConfigError(
                f"The 'alpha' parameter of FocalLoss must lie in (0, 1). Got {alpha!r} instead."
            )
        if gamma < 0.0:
            raise ConfigError(
                f"The 'gamma' parameter of FocalLoss must be >= 0. Got {gamma!r} instead."
            )
        self.alpha = alpha
        self.gamma = gamma

    def _parts(self, y: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, ...]:
        y = np.asarray(y, dtype=float)
        raw = np.asarray(raw, dtype=float)
        sign = 2.0 * y - 1.0  # +1 for positives, -1 for negatives
        log_pt = -np.logaddexp(0.0, -sign * raw)  # log sigmoid(sign * raw), stable
        pt = np.exp(log_pt)
        q = -np.expm1(log_pt)  # 1 - p_t without cancellation
        a = np.where(y > 0.5, self.alpha, 1.0 - self.alpha)
        return sign, log_pt, pt, q, a

    def loss(self, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """The focal loss of each row."""
        _, log_pt, _, q, a = self._parts(y, raw)
        result: np.ndarray = -a * q**self.gamma * log_pt
        return result

    def gradient_hessian(self, y: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and second derivatives of :meth:`loss` with respect to the raw score.

        With q = 1 - p_t and s = +-1:
        grad = s a (gamma q**gamma p_t log p_t - q**(gamma + 1));
        hess = a p_t q (-gamma**2 q**(gamma-1) p_t log p_t + gamma q**gamma (log p_t + 1)
        + (gamma + 1) q**gamma).
        """
        sign, log_pt, pt, q, a = self._parts(y, raw)
        g = self.gamma
        q_g = q**g
        grad = sign * a * (g * q_g * pt * log_pt - q_g * q)
        q_g1 = q ** (g - 1.0) if g >= 1.0 else np.where(q > 0, q ** (g - 1.0), 0.0)
        hess = (
            a * pt * q * (-(g**2) * q_g1 * pt * log_pt + g * q_g * (log_pt + 1.0) + (g + 1.0) * q_g)
        )
        return grad, hess

    def __call__(self, first: Any, second: Any) -> tuple[np.ndarray, np.ndarray]:
        """LightGBM's objective: ``(y_true, raw)`` from the sklearn API, ``(raw, dataset)``
        from ``lgb.train``. The hessian is floored at 1e-6 to stay positive."""
        y, raw = _label_and_raw(first, second)
        grad, hess = self.gradient_hessian(y, raw)
        return grad, np.maximum(hess, 1e-6)

    def metric(self, first: Any, second: Any) -> tuple[str, float, bool]:
        """LightGBM's eval-metric signature: mean focal loss, lower is better."""
        y, raw = _label_and_raw(first, second)
        return "focal_loss", float(self.loss(y, raw).mean()), False

    def init_score(self, y: ArrayLike) -> np.ndarray:
        """The log-odds of the positive rate, one per row (LightGBM's ``init_score``)."""
        y = np.asarray(y, dtype=float)
        rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        return np.full(len(y), np.log(rate / (1 - rate)))

    @staticmethod
    def probability(raw: ArrayLike) -> np.ndarray:
        """Sigmoid of raw scores."""
        result: np.ndarray = 1.0 / (1.0 + np.exp(-np.asarray(raw, dtype=float)))
        return result


def _label_and_raw(first: Any, second: Any) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(second, "get_label"):  # lgb.train passes (raw scores, Dataset)
        return np.asarray(second.get_label(), dtype=float), np.asarray(first, dtype=float)
    return np.asarray(first, dtype=float), np.asarray(second, dtype=float)


def sampler_for(method: str | Any, seed: int) -> Any:
    if not isinstance(method, str):
        return method
    if method not in _SAMPLERS:
        raise ConfigError(
            f"The 'method' parameter must be one of {', '.join(_SAMPLERS)} or an "
            f"imbalanced-learn sampler. Got {method!r} instead."
        )
    import importlib

    module, name = _SAMPLERS[method]
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(random_state=seed)
    except TypeError:  # samplers without randomness (TomekLinks)
        return cls()


def resample_training_split(
    frame: pd.DataFrame,
    split: Split,
    *,
    target: str,
    features: Sequence[str] | None = None,
    method: str | Any = "random_over",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Resample ``split.train`` only; validation and test come back untouched.

    Every returned training row carries ``source_row``: the position in ``frame`` it copies,
    or -1 for a synthetic row (SMOTE's interpolations).

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"x": range(20), "y": [1] * 3 + [0] * 17})
    >>> from loopml.trainingdata import make_split
    >>> split = make_split(frame, by="stratified", target="y", validation=0.0, test=0.3)
    >>> train, _, test = resample_training_split(frame, split, target="y")
    >>> train["y"].value_counts().tolist(), len(test)
    ([12, 12], 6)
    """
    require_columns(frame, [target, *(features or [])], what="resample_training_split")
    columns = list(features) if features is not None else [c for c in frame.columns if c != target]
    train = frame.iloc[split.train]
    sampler = sampler_for(method, seed)
    try:
        X_res, y_res = sampler.fit_resample(train[columns], train[target])  # noqa: N806
    except ValueError as error:
        raise DataError(
            f"resample_training_split: {error}",
            hint="SMOTE-like methods need numeric features without missing values",
        ) from None
    resampled = pd.DataFrame(X_res, columns=columns)
    resampled[target] = np.asarray(y_res)
    resampled["source_row"] = _sources(sampler, split.train, len(resampled))
    validation, test = frame.iloc[split.validation], frame.iloc[split.test]
    return resampled.reset_index(drop=True), validation, test


def _sources(sampler: Any, train_rows: np.ndarray, n_out: int) -> np.ndarray:
    """Position in the frame that each resampled row copies, or -1 for synthetic rows."""
    indices = getattr(sampler, "sample_indices_", None)
    if indices is not None:
        return np.asarray(train_rows[np.asarray(indices)], dtype=np.int64)
    sources = np.full(n_out, -1, dtype=np.int64)
    if n_out >= len(train_rows):  # over-samplers keep the originals first, then append
        sources[: len(train_rows)] = train_rows
    return sources
