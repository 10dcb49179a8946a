"""The leakage checks themselves. Each takes the shared :class:`Context` and returns findings.

Thresholds (documented in docs/trainingdata.md):

- duplicates: severe when >= 1% of test rows repeat a training row, a warning below (and
  always a warning when every feature has fewer than 50 distinct values: chance repeats);
- a single feature: severe at AUC >= 0.98 (|Spearman| >= 0.98 for regression), on either side;
  a warning when its power moves by >= 0.1 between train and test and by more than 4 standard
  errors (Hanley-McNeil at AUC 0.5, or 1/sqrt(n));
- identifiers/dates: a warning at AUC >= 0.65 (|rho| >= 0.3) and more than 4 standard errors
  from no signal, severe for identifiers at >= 0.8 (|rho| >= 0.6);
- categories only in test: a warning when >= 1% of test rows carry one;
- domain classifier: a warning at cross-fitted AUC >= 0.6.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from loopml.trainingdata._leakage import (
    CheckFunction,
    Context,
    LeakageFinding,
    Severity,
    describe_rows,
    fmt_td,
)
from loopml.trainingdata._stats import (
    TargetKind,
    auc,
    domain_scores,
    feature_power,
    numeric_view,
    target_kind,
)
from loopml.trainingdata._timecols import nanos, utc_column

DUPLICATE_SEVERE = 0.01
FEATURE_AUC_SEVERE = 0.98
POWER_SHIFT = 0.1
ID_AUC_WARN, ID_AUC_SEVERE = 0.65, 0.8
ID_RHO_WARN, ID_RHO_SEVERE = 0.3, 0.6
UNSEEN_CATEGORY_WARN = 0.01
DOMAIN_AUC_WARN = 0.6
NEAR_TOLERANCE = 0.01
COARSE_DISTINCT = 50
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key|index|idx|row|rownum)$", re.IGNORECASE)


class SkipCheck(Exception):  # noqa: N818 - control flow, not an error
    """Raised by a check that cannot run on this data; the reason goes into ``skipped``."""


LEAKAGE_CHECKS: dict[str, CheckFunction] = {}
"""Every check by the name of the findings it produces, in the order the checks run."""
PRIMARY_NAMES: dict[CheckFunction, str] = {}


def register(*names: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under the names of the findings it can produce."""

    def wrap(function: CheckFunction) -> CheckFunction:
        for name in names:
            LEAKAGE_CHECKS[name] = function
        PRIMARY_NAMES[function] = names[0]
        return function

    return wrap


# -- duplicates ------------------------------------------------------------------------------


def _row_hashes(context: Context) -> tuple[np.ndarray, np.ndarray]:
    if "hashes" not in context.cache:
        if not context.features:
            raise SkipCheck("no feature columns")
        hashes = [
            pd.util.hash_pandas_object(frame[context.features], index=False).to_numpy()
            for frame in (context.train, context.test)
        ]
        context.cache["hashes"] = (hashes[0], hashes[1])
    result: tuple[np.ndarray, np.ndarray] = context.cache["hashes"]
    return result


def _coarse(context: Context) -> bool:
    """True when no feature has many distinct values: then identical rows happen by chance."""
    if "coarse" not in context.cache:
        sample = context.sample(context.train, 7, 100_000)
        context.cache["coarse"] = all(
            sample[c].nunique() < COARSE_DISTINCT for c in context.features
        )
    result: bool = context.cache["coarse"]
    return result


@register("exact_duplicates")
def _check_exact_duplicates(context: Context) -> list[LeakageFinding]:
    h_train, h_test = _row_hashes(context)
    duplicated = pd.Series(h_test).isin(h_train).to_numpy()
    context.cache["exact_in_test"] = duplicated
    count = int(duplicated.sum())
    if count == 0:
        return []
    share = count / len(h_test)
    coarse = _coarse(context)
    severity: Severity = "severe" if share >= DUPLICATE_SEVERE and not coarse else "warning"
    note = (
        " Every feature takes few distinct values, so some repeats happen by chance."
        if coarse
        else ""
    )
    rows = np.flatnonzero(duplicated)
    return [
        LeakageFinding(
            "exact_duplicates",
            severity,
            f"{count} of {len(h_test)} test rows ({share:.2%}) repeat a training row exactly on "
            f"the {len(context.features)} feature columns ({describe_rows(rows, 'test')}).{note}",
            "deduplicate before splitting (or split by the entity that repeats) so the model is "
            "not scored on rows it memorised",
            rows=tuple(int(r) for r in rows[:10]),
            value=share,
            metric="share of test rows",
        )
    ]


def _standardised(context: Context) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Numeric features scaled by the training mean and spread, as float32 (missing -> 0)."""
    candidates = [
        c
        for c in context.features
        if pd.api.types.is_numeric_dtype(context.train[c].dtype)
        and not pd.api.types.is_bool_dtype(context.train[c].dtype)
    ]
    spread = context.train[candidates].std()
    columns = [c for c in candidates if np.isfinite(spread[c]) and spread[c] > 0]
    if len(columns) < 3:
        raise SkipCheck(
            f"needs >= 3 numeric features with spread, found {len(columns)}; "
            "exact duplicates cover the rest"
        )
    mean = context.train[columns].mean().to_numpy(dtype=np.float32)
    scale = (1.0 / spread[columns]).to_numpy(dtype=np.float32)
    scaled = []
    for name, frame in (("train", context.train), ("test", context.test)):
        matrix = frame[columns].to_numpy(dtype=np.float32, na_value=np.nan, copy=True)
        context.cache[f"complete_{name}"] = ~np.isnan(matrix).any(axis=1)
        matrix -= mean
        matrix *= scale
        scaled.append(np.nan_to_num(matrix, copy=False))
    return scaled[0], scaled[1], columns


def _chance_rate(train: np.ndarray, test: np.ndarray, radius: float, context: Context) -> float:
    """Probability that a random (test, train) pair lies within ``radius`` by chance.

    Estimated on up to 3000 x 3000 sampled complete pairs from the shell between radius/10
    and radius (scaled up by 1 / (1 - 10**-d)), so copies planted far closer than the radius
    do not count as chance. In 10 or more dimensions this is essentially zero; in two or
    three it is not, and the finding subtracts it.
    """
    rng = context.rng(8)
    rows = []
    for matrix, name in ((test, "test"), (train, "train")):
        complete = np.flatnonzero(context.cache[f"complete_{name}"])
        take = rng.choice(complete, min(3000, len(complete)), replace=False)
        rows.append(matrix[take].astype(float))
    a, b = rows
    if len(a) == 0 or len(b) == 0:
        return 0.0
    d2 = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    shell = (d2 > (radius / 10) ** 2) & (d2 <= radius**2)
    return float(shell.mean() / (1.0 - 0.1 ** train.shape[1]))


def _lsh_keys(
    train: np.ndarray,
    test: np.ndarray,
    radius: float,
    rng: np.random.Generator,
    tables: int,
    k: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bucket keys of E2LSH: ``tables`` hash tables of ``k`` random projections each,
    projected in one matrix product (cells of width 4 x radius, random offsets)."""
    width = 4.0 * radius
    project = (rng.normal(size=(train.shape[1], tables * k)) / width).astype(np.float32)
    offset = rng.uniform(0, 1, tables * k).astype(np.float32)
    mix = rng.integers(1, 2**62, size=k, dtype=np.int64) | 1
    keys: list[list[np.ndarray]] = [[], []]
    for side, matrix in enumerate((train, test)):
        cells = matrix @ project
        cells += offset
        codes = np.floor(cells, out=cells).astype(np.int64)
        for table in range(tables):
            keys[side].append(codes[:, table * k : (table + 1) * k] @ mix)
    return list(zip(keys[0], keys[1], strict=True))


def _bucket_pairs(
    train_keys: np.ndarray, test_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Pairs (test_row, train_row) sharing a bucket; None when the buckets overflow."""
    order = np.argsort(train_keys)
    sorted_keys = train_keys[order]
    lo = np.searchsorted(sorted_keys, test_keys, side="left")
    counts = np.searchsorted(sorted_keys, test_keys, side="right") - lo
    total = int(counts.sum())
    if total > 20 * len(test_keys) + 100_000:
        return None
    test_rows = np.repeat(np.arange(len(test_keys)), counts)
    starts = np.repeat(lo - np.r_[0, np.cumsum(counts)[:-1]], counts)
    return test_rows, order[starts + np.arange(total)]


@register("near_duplicates")
def _check_near_duplicates(context: Context) -> list[LeakageFinding]:
    train, test, columns = _standardised(context)
    radius = NEAR_TOLERANCE * np.sqrt(train.shape[1])
    exact = context.cache.get("exact_in_test", np.zeros(len(test), dtype=bool))
    nearest = np.full(len(test), np.inf)
    partner = np.full(len(test), -1)
    tables, skipped = 5, 0
    for k in (8, 16):  # dense data overflows the buckets: retry with narrower ones
        skipped = 0
        for keys in _lsh_keys(train, test, radius, context.rng(100 + k), tables, k):
            pairs = _bucket_pairs(*keys)
            if pairs is None:
                skipped += 1
            else:
                _closest(train, test, pairs, nearest, partner)
        if skipped < tables:
            break
    if skipped == tables:
        raise SkipCheck("the numeric features are so dense that every bucket overflowed")
    complete_train, complete_test = context.cache["complete_train"], context.cache["complete_test"]
    near = (nearest <= radius) & ~exact & complete_test
    near[near] &= complete_train[partner[near]]
    expected = (
        _chance_rate(train, test, radius, context) * complete_test.sum() * (complete_train.sum())
    )
    return _near_finding(near, partner, len(columns), skipped, tables, expected)


def _closest(
    train: np.ndarray,
    test: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    nearest: np.ndarray,
    partner: np.ndarray,
) -> None:
    """Update each test row's nearest verified training row from candidate pairs."""
    q, t = pairs
    dist = np.sqrt(((test[q].astype(float) - train[t]) ** 2).sum(axis=1))
    better = dist < nearest[q]
    np.minimum.at(nearest, q[better], dist[better])
    partner[q[better]] = t[better]


def _near_finding(
    near: np.ndarray,
    partner: np.ndarray,
    n_columns: int,
    skipped: int,
    tables: int,
    expected: float,
) -> list[LeakageFinding]:
    count = int(near.sum())
    if count <= expected + 3.0 * np.sqrt(expected) + 1.0:  # within what chance gives
        return []
    excess = (count - expected) / len(near)
    rows = np.flatnonzero(near)
    pairs = ", ".join(f"{r}~{partner[r]}" for r in rows[:5])
    return [
        LeakageFinding(
            "near_duplicates",
            "severe" if excess >= DUPLICATE_SEVERE else "warning",
            f"{count} test rows ({count / len(near):.2%}) lie within {NEAR_TOLERANCE:g} standard "
            f"deviations (RMS over {n_columns} numeric features) of a training row without "
            f"being exact copies, where chance alone would give about {expected:.1f} "
            f"(test~train: {pairs}). Found with locality-sensitive hashing "
            f"({tables - skipped} of {tables} tables); a pair can be missed, so this is a lower "
            "bound. Rows with missing numeric values are left to the exact check.",
            "remove near-copies (re-encoded, resized or re-sampled versions of one record) "
            "before splitting, or split by the entity they come from",
            rows=tuple(int(r) for r in rows[:10]),
            value=excess,
            metric="share of test rows beyond chance",
        )
    ]


# -- identifiers, groups, time ---------------------------------------------------------------


@register("id_overlap")
def _check_id_overlap(context: Context) -> list[LeakageFinding]:
    findings = []
    for column in context.id_columns:
        shared = np.isin(context.test[column].to_numpy(), context.train[column].to_numpy())
        if shared.any():
            rows = np.flatnonzero(shared)
            findings.append(
                LeakageFinding(
                    "id_overlap",
                    "severe",
                    f"{len(rows)} test rows carry a '{column}' value that is also in train "
                    f"({describe_rows(rows, 'test')})",
                    "the same record is on both sides: deduplicate by this id before splitting",
                    columns=(column,),
                    rows=tuple(int(r) for r in rows[:10]),
                    value=len(rows) / len(context.test),
                    metric="share of test rows",
                )
            )
    findings.extend(_index_overlap(context))
    return findings


def _index_overlap(context: Context) -> list[LeakageFinding]:
    indexes = (context.train.index, context.test.index)
    if all(isinstance(i, pd.RangeIndex) and i.start == 0 for i in indexes):
        return []  # both re-numbered from 0: positions, not identities
    shared = context.test.index.isin(context.train.index)
    if not shared.any():
        return []
    rows = np.flatnonzero(shared)
    return [
        LeakageFinding(
            "id_overlap",
            "severe",
            f"{len(rows)} test rows have an index label that is also in train "
            f"({describe_rows(rows, 'test')}); they are likely the same rows",
            "take train and test from one frame with disjoint positions (make_split does)",
            columns=("<index>",),
            rows=tuple(int(r) for r in rows[:10]),
            value=len(rows) / len(context.test),
            metric="share of test rows",
        )
    ]


@register("group_overlap")
def _check_group_overlap(context: Context) -> list[LeakageFinding]:
    if context.group is None:
        raise SkipCheck("no group column given")
    column = context.group
    shared = np.isin(context.test[column].to_numpy(), context.train[column].to_numpy())
    if not shared.any():
        return []
    rows = np.flatnonzero(shared)
    groups = pd.unique(context.test[column].to_numpy()[shared])
    return [
        LeakageFinding(
            "group_overlap",
            "severe",
            f"{len(groups)} '{column}' groups are on both sides, covering {len(rows)} test rows "
            f"({len(rows) / len(context.test):.1%}); e.g. {', '.join(map(str, groups[:3]))}",
            "split by group (make_split(by='group', group=...)) so the model is scored on groups "
            "it has never seen",
            columns=(column,),
            rows=tuple(int(r) for r in rows[:10]),
            value=len(rows) / len(context.test),
            metric="share of test rows",
        )
    ]


@register("temporal_overlap", "gap_shorter_than_horizon")
def _check_temporal(context: Context) -> list[LeakageFinding]:
    if context.timestamp is None:
        raise SkipCheck("no timestamp column given")
    column = context.timestamp
    train_t = utc_column(context.train, column, what="check_leakage (train)")
    test_t = utc_column(context.test, column, what="check_leakage (test)")
    test_start, train_end = test_t.min(), train_t.max()
    if train_end >= test_start:
        late = np.flatnonzero((train_t >= test_start).to_numpy())
        return [
            LeakageFinding(
                "temporal_overlap",
                "severe",
                f"{len(late)} training rows happen at or after the first test row "
                f"({test_start.isoformat()}); train ends {train_end.isoformat()} "
                f"({describe_rows(late, 'train')})",
                "split by time (make_split(by='time', ...)) so training only sees the past",
                columns=(column,),
                rows=tuple(int(r) for r in late[:10]),
                split="train",
                value=len(late) / len(context.train),
                metric="share of train rows",
            )
        ]
    gap = (test_start - train_end).to_pytimedelta()
    horizon = context.label_horizon
    if horizon is None or gap >= horizon:
        return []
    close = np.flatnonzero((train_t > test_start - horizon).to_numpy())
    return [
        LeakageFinding(
            "gap_shorter_than_horizon",
            "severe",
            f"the gap between train (ends {train_end.isoformat()}) and test (starts "
            f"{test_start.isoformat()}) is {fmt_td(gap)}, shorter than the label horizon "
            f"{fmt_td(horizon)}: the labels of {len(close)} training rows were decided inside the "
            "test period",
            f"split with gap='{fmt_td(horizon)}' or more",
            columns=(column,),
            rows=tuple(int(r) for r in close[:10]),
            split="train",
            value=gap / horizon,
            metric="gap / label horizon",
        )
    ]


@register("feature_after_prediction_time")
def _check_feature_times(context: Context) -> list[LeakageFinding]:
    if not context.feature_times:
        raise SkipCheck("no feature_times given")
    if context.prediction_time is None:
        raise SkipCheck("feature_times given without a prediction_time or timestamp")
    findings = []
    for split, frame in (("train", context.train), ("test", context.test)):
        when = nanos(utc_column(frame, context.prediction_time, what=f"check_leakage ({split})"))
        for feature, time_column in context.feature_times.items():
            known = nanos(utc_column(frame, time_column, what=f"check_leakage ({split})"))
            late = np.flatnonzero(known > when)
            if len(late):
                findings.append(
                    LeakageFinding(
                        "feature_after_prediction_time",
                        "severe",
                        f"'{feature}' was known (per '{time_column}') after the prediction time "
                        f"'{context.prediction_time}' in {len(late)} {split} rows "
                        f"({describe_rows(late, split)})",
                        "join features point-in-time (as of the prediction time), never the "
                        "latest value",
                        columns=(feature,),
                        rows=tuple(int(r) for r in late[:10]),
                        split=split,
                        value=len(late) / len(frame),
                        metric=f"share of {split} rows",
                    )
                )
    return findings


# -- the label -------------------------------------------------------------------------------


def _label_sample(context: Context) -> tuple[pd.DataFrame, pd.DataFrame, TargetKind]:
    if "label_sample" not in context.cache:
        train = context.train[context.train[context.target].notna()]
        test = context.test[context.test[context.target].notna()]
        if train[context.target].nunique() < 2:
            raise SkipCheck("the training label has a single value")
        kind = target_kind(train[context.target])
        context.cache["label_sample"] = (context.sample(train, 1), context.sample(test, 2), kind)
    result: tuple[pd.DataFrame, pd.DataFrame, TargetKind] = context.cache["label_sample"]
    return result


def _labels(context: Context) -> tuple[np.ndarray, np.ndarray]:
    """The sampled labels: floats for regression, shared integer codes for classes."""
    if "labels" not in context.cache:
        train, test, kind = _label_sample(context)
        if kind == "regression":
            pair = (
                train[context.target].to_numpy(dtype=float),
                test[context.target].to_numpy(dtype=float),
            )
        else:
            both = pd.concat([train[context.target], test[context.target]])
            codes, _ = pd.factorize(both.astype("string"))
            pair = (codes[: len(train)], codes[len(train) :])
        context.cache["labels"] = pair
    result: tuple[np.ndarray, np.ndarray] = context.cache["labels"]
    return result


def _null_se(y: np.ndarray, kind: str) -> float:
    """Standard error of a single-feature power under no signal: Hanley-McNeil for an AUC
    of 0.5 (rarest of the ten commonest classes against the rest), 1/sqrt(n) for Spearman."""
    if kind == "regression":
        return float(1.0 / np.sqrt(max(len(y), 1)))
    n_pos = int(pd.Series(y).value_counts().iloc[:10].iloc[-1])
    n_neg = len(y) - n_pos
    return float(np.sqrt((n_pos + n_neg + 1) / (12.0 * max(n_pos, 1) * max(n_neg, 1))))


def _sample_note(context: Context, train: pd.DataFrame, test: pd.DataFrame) -> str:
    if len(train) == len(context.train) and len(test) == len(context.test):
        return ""
    kind = target_kind(train[context.target])
    se = _null_se(train[context.target].to_numpy(), kind)
    return (
        f" Measured on a uniform sample of {len(train):,} train and {len(test):,} test "
        f"rows (standard error about {se:.3f})."
    )


def _shift_is_real(delta: float, se_train: float, se_test: float) -> bool:
    """A power change counts when it is >= POWER_SHIFT and beyond 4 standard errors."""
    return abs(delta) >= POWER_SHIFT and abs(delta) > 4.0 * float(np.hypot(se_train, se_test))


@register("single_feature_predicts_label", "feature_power_shift")
def _check_single_feature(context: Context) -> list[LeakageFinding]:
    train, test, kind = _label_sample(context)
    y_train, y_test = _labels(context)
    metric = "|Spearman rho|" if kind == "regression" else "AUC"
    se_train, se_test = _null_se(y_train, kind), _null_se(y_test, kind)
    findings = []
    for column in context.features:
        p_train, p_test = feature_power(
            train[column],
            y_train,
            test[column],
            y_test,
            kind,
            context.rng(3),
        )
        if np.isnan(p_train) and np.isnan(p_test):
            continue
        if np.nanmax([p_train, p_test]) >= FEATURE_AUC_SEVERE:
            findings.append(_perfect_feature(column, p_train, p_test, metric, context, train, test))
        elif _shift_is_real(p_train - p_test, se_train, se_test):
            findings.append(
                LeakageFinding(
                    "feature_power_shift",
                    "warning",
                    f"'{column}' alone predicts the label with {metric} {p_train:.3f} in train but "
                    f"{p_test:.3f} in test.{_sample_note(context, train, test)}",
                    "find out why: a feature filled in after the label in one period, a changed "
                    "pipeline, or genuine drift (then consider a time-aware model)",
                    columns=(column,),
                    value=float(p_train - p_test),
                    metric=f"{metric} change",
                )
            )
    return findings


def _perfect_feature(
    column: str,
    p_train: float,
    p_test: float,
    metric: str,
    context: Context,
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> LeakageFinding:
    return LeakageFinding(
        "single_feature_predicts_label",
        "severe",
        f"'{column}' alone predicts '{context.target}' almost perfectly: {metric} "
        f"{p_train:.3f} in train, {p_test:.3f} in test.{_sample_note(context, train, test)}",
        "check how the column is produced; a value computed from the label or recorded after "
        "the outcome must be removed (acknowledge it only if it will exist at prediction time)",
        columns=(column,),
        value=float(np.nanmax([p_train, p_test])),
        metric=metric,
    )


def _identifier_columns(context: Context) -> dict[str, str]:
    """Columns that identify rows or give dates: {column: "identifier" | "date"}."""
    kinds: dict[str, str] = {}
    for column in context.train.columns:
        if column == context.target:
            continue
        dtype = context.train[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
            kinds[column] = "date"
        elif (
            column in context.id_columns or column == context.group or _ID_NAME.search(str(column))
        ):
            kinds[column] = "identifier"
    for name in (context.timestamp, context.prediction_time, *context.feature_times.values()):
        if name is not None:
            kinds[name] = "date"
    return kinds


@register("identifier_predicts_label")
def _check_identifiers(context: Context) -> list[LeakageFinding]:
    kinds = _identifier_columns(context)
    if not kinds:
        raise SkipCheck("no identifier or date columns")
    train, test, kind = _label_sample(context)
    y_train, y_test = _labels(context)
    findings = []
    for column, role in kinds.items():
        p_train, _ = feature_power(
            train[column],
            y_train,
            test[column],
            y_test,
            kind,
            context.rng(4),
        )
        finding = _identifier_finding(column, role, p_train, kind, context, train, test)
        if finding is not None:
            findings.append(finding)
    return findings


def _identifier_finding(
    column: str,
    role: str,
    power: float,
    kind: str,
    context: Context,
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> LeakageFinding | None:
    warn, severe = (
        (ID_RHO_WARN, ID_RHO_SEVERE) if kind == "regression" else (ID_AUC_WARN, ID_AUC_SEVERE)
    )
    null = 0.0 if kind == "regression" else 0.5
    se = _null_se(_labels(context)[0], kind)
    if not (power >= warn and power - null > 4.0 * se):
        return None
    severity: Severity = "severe" if role == "identifier" and power >= severe else "warning"
    metric = "|Spearman rho|" if kind == "regression" else "AUC"
    return LeakageFinding(
        "identifier_predicts_label",
        severity,
        f"the {role} column '{column}' predicts '{context.target}' with {metric} {power:.3f} "
        f"in train; {'ids' if role == 'identifier' else 'dates'} should carry no signal."
        f"{_sample_note(context, train, test)}",
        "find how ids or dates were assigned (e.g. positives collected in a later batch); drop "
        "the column from the features and split by it"
        if role == "identifier"
        else "a date that predicts the label means a trend or a collection artefact: split by time "
        "and keep raw dates out of the features",
        columns=(column,),
        value=float(power),
        metric=metric,
    )


@register("conflicting_labels")
def _check_conflicting_labels(context: Context) -> list[LeakageFinding]:
    h_train, h_test = _row_hashes(context)
    hashes = pd.Series(np.r_[h_train, h_test])
    repeated = hashes.duplicated(keep=False).to_numpy()  # only repeated rows can conflict
    labels = pd.concat([context.train[context.target], context.test[context.target]])
    codes, _ = pd.factorize(labels.iloc[np.flatnonzero(repeated)].astype("string"))
    frame = pd.DataFrame({"h": hashes.to_numpy()[repeated], "y": codes})
    conflict = np.zeros(len(hashes), dtype=bool)
    conflict[repeated] = frame.groupby("h")["y"].transform("nunique").to_numpy() > 1
    if not conflict.any():
        return []
    fine = not _coarse(context)
    rows = np.flatnonzero(conflict[: len(h_train)])
    test_rows = np.flatnonzero(conflict[len(h_train) :])
    return [
        LeakageFinding(
            "conflicting_labels",
            "warning" if fine else "info",
            f"{int(conflict.sum())} rows ({conflict.mean():.2%}) share identical features with a "
            f"row of another label ({len(rows)} in train, {len(test_rows)} in test)."
            + (
                ""
                if fine
                else " Every feature takes few distinct values, so rows that look "
                "identical but differ in label are expected."
            ),
            "check the labelling of these rows (duplicates labelled twice, label noise) or add a "
            "feature that tells them apart",
            rows=tuple(int(r) for r in (test_rows if len(test_rows) else rows)[:10]),
            split="test" if len(test_rows) else "train",
            value=float(conflict.mean()),
            metric="share of all rows",
        )
    ]


@register("label_only_in_test", "category_only_in_test")
def _check_unseen(context: Context) -> list[LeakageFinding]:
    findings = []
    if target_kind(context.train[context.target]) != "regression":
        unseen = _unseen(context.train[context.target], context.test[context.target])
        if len(unseen):
            values = pd.unique(context.test[context.target].to_numpy()[unseen])
            findings.append(
                LeakageFinding(
                    "label_only_in_test",
                    "severe",
                    f"label value(s) {', '.join(map(repr, values[:5]))} of '{context.target}' "
                    f"appear in {len(unseen)} test rows but never in train",
                    "the model cannot predict a class it never saw: split stratified, or drop the "
                    "class from the evaluation",
                    columns=(context.target,),
                    rows=tuple(int(r) for r in unseen[:10]),
                    value=len(unseen) / len(context.test),
                    metric="share of test rows",
                )
            )
    for column in context.features:
        if numeric_view(context.train[column].iloc[:0]) is not None:
            continue
        finding = _unseen_category(context, column)
        if finding is not None:
            findings.append(finding)
    return findings


def _unseen(train: pd.Series, test: pd.Series) -> np.ndarray:
    """Positions of test values never seen in train (compared as text if the types differ)."""
    same = train.dtype == test.dtype or (
        isinstance(train.dtype, pd.CategoricalDtype) and isinstance(test.dtype, pd.CategoricalDtype)
    )
    if not same:
        train, test = train.astype("string"), test.astype("string")
    seen = train.dropna().unique()
    return np.flatnonzero((~test.isin(seen) & test.notna()).to_numpy())


def _unseen_category(context: Context, column: str) -> LeakageFinding | None:
    unseen = _unseen(context.train[column], context.test[column])
    if len(unseen) == 0:
        return None
    share = len(unseen) / len(context.test)
    values = pd.unique(context.test[column].astype("string").to_numpy()[unseen])
    return LeakageFinding(
        "category_only_in_test",
        "warning" if share >= UNSEEN_CATEGORY_WARN else "info",
        f"{len(values)} categories of '{column}' appear only in test, in {len(unseen)} test "
        f"rows ({share:.2%}); e.g. {', '.join(map(repr, values[:3]))}",
        "make sure the encoder maps unseen categories to a shared 'other' bucket, and check "
        "whether the split separates a population the model never trained on",
        columns=(column,),
        rows=tuple(int(r) for r in unseen[:10]),
        value=share,
        metric="share of test rows",
    )


# -- distributions and pipelines -------------------------------------------------------------


@register("domain_classifier")
def _check_domain_classifier(context: Context) -> list[LeakageFinding]:
    skip = set(_identifier_columns(context))
    columns = [c for c in context.features if c not in skip]
    if not columns:
        raise SkipCheck("no features left after removing identifiers and dates")
    limit = min(context.sample_rows, 50_000)
    train, test = context.sample(context.train, 5, limit), context.sample(context.test, 6, limit)
    scores, label, gains = domain_scores(train, test, columns, seed=context.seed)
    value = auc(scores, label.astype(bool))
    if not value >= DOMAIN_AUC_WARN:
        return []
    top = sorted(gains.items(), key=lambda kv: -kv[1])[:3]
    return [
        LeakageFinding(
            "domain_classifier",
            "warning",
            f"a classifier tells train from test with cross-fitted AUC {value:.3f} "
            f"(on {len(train):,} + {len(test):,} rows); the columns that separate them most: "
            + ", ".join(f"'{c}' ({g:.0%})" for c, g in top),
            "the two sides come from different distributions: if the split was meant to be random "
            "it is not; if it is a time split, consider importance weights "
            "(loopml.trainingdata.importance_weights) and monitor these columns",
            columns=tuple(c for c, _ in top),
            value=value,
            metric="AUC",
        )
    ]


@register("fitted_before_split")
def _check_fitted_before_split(context: Context) -> list[LeakageFinding]:
    if not context.transformers:
        raise SkipCheck("no transformers given")
    findings = []
    for name, transformer in context.transformers.items():
        finding = _fitted_on_more(name, transformer, context)
        if finding is not None:
            findings.append(finding)
    return findings


def _fitted_on_more(name: str, transformer: Any, context: Context) -> LeakageFinding | None:
    seen = getattr(transformer, "n_samples_seen_", None)
    n_train = len(context.train)
    if seen is not None and int(np.max(seen)) > n_train:
        return _fit_finding(
            name,
            f"saw {int(np.max(seen)):,} rows when fitted but the training split has {n_train:,}",
            float(np.max(seen)) / n_train,
        )
    verdict = _refit_verdict(transformer, context)
    if verdict is None or verdict == "train":
        return None
    where = (
        "train and test together"
        if verdict == "train+test"
        else "rows other than the training split"
    )
    return _fit_finding(
        name,
        f"holds statistics that a fit on the training split does not "
        f"reproduce; they match a fit on {where}",
        None,
    )


def _fit_finding(name: str, detail: str, value: float | None) -> LeakageFinding:
    return LeakageFinding(
        "fitted_before_split",
        "severe",
        f"transformer '{name}' {detail}: its statistics include rows it is evaluated on",
        "fit every transformer inside the training split only (put it in the model pipeline "
        "and fit after make_split)",
        columns=(name,),
        value=value,
        metric="rows seen / training rows",
    )


def _refit_verdict(transformer: Any, context: Context) -> str | None:
    """Refit clones on train and on train+test; say which one the fitted state matches."""
    from sklearn.base import clone

    columns = list(getattr(transformer, "feature_names_in_", [])) or [
        c for c in context.features if pd.api.types.is_numeric_dtype(context.train[c].dtype)
    ]
    try:
        fitted = _fitted_state(transformer)
        on_train = _fitted_state(clone(transformer).fit(context.train[columns]))
        both = pd.concat([context.train[columns], context.test[columns]])
        on_both = _fitted_state(clone(transformer).fit(both))
    except Exception:  # noqa: BLE001 - a transformer we cannot refit is reported as unverified
        return None
    if not fitted or _same_state(fitted, on_train):
        return "train"
    return "train+test" if _same_state(fitted, on_both) else "other"


def _fitted_state(transformer: Any) -> dict[str, np.ndarray]:
    state = {}
    for key, value in vars(transformer).items():
        if key.endswith("_") and not key.startswith("_") and key != "n_samples_seen_":
            array = np.asarray(value) if np.ndim(value) or np.isscalar(value) else None
            if array is not None and array.dtype.kind in "fiu":
                state[key] = array.astype(float)
    return state


def _same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(
        x.shape == b[k].shape and np.allclose(x, b[k], rtol=1e-7, atol=1e-12, equal_nan=True)
        for k, x in a.items()
    )
