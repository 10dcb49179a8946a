"""point_in_time_join: cell by cell against a brute-force reference, and every bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.core import ConfigError, SchemaError
from loopml.features import _pit, point_in_time_join

from ._reference import brute_force_pit

T0 = pd.Timestamp("2024-03-01", tz="UTC")


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert list(a.index) == list(b.index)
    for column in a.columns:
        left, right = a[column].tolist(), b[column].tolist()
        for row, (x, y) in enumerate(zip(left, right, strict=True)):
            if pd.isna(x) or pd.isna(y):
                assert pd.isna(x) and pd.isna(y), f"{column} row {row}: {x!r} != {y!r}"
            else:
                assert x == y, f"{column} row {row}: {x!r} != {y!r}"


@st.composite
def _frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    n_features = draw(st.integers(0, 25))
    n_entities = draw(st.integers(0, 15))
    minutes = st.integers(0, 12)  # a small range forces ties on the feature timestamp
    created = st.one_of(st.none(), st.integers(0, 3))
    features = pd.DataFrame(
        {
            "user": draw(st.lists(st.integers(0, 3), min_size=n_features, max_size=n_features)),
            "at": [T0 + pd.Timedelta(minutes=m) for m in draw(
                st.lists(minutes, min_size=n_features, max_size=n_features))],
            "created": [pd.NaT if c is None else T0 + pd.Timedelta(hours=c) for c in draw(
                st.lists(created, min_size=n_features, max_size=n_features))],
            "value": np.arange(n_features, dtype=np.int64) * 10,
            "score": np.arange(n_features, dtype=np.float64) / 4,
        }
    )
    features["at"] = pd.to_datetime(features["at"], utc=True)
    features["created"] = pd.to_datetime(features["created"], utc=True)
    entities = pd.DataFrame(
        {
            "user": draw(st.lists(st.integers(0, 4), min_size=n_entities, max_size=n_entities)),
            "ts": [T0 + pd.Timedelta(minutes=m) for m in draw(
                st.lists(st.integers(-2, 15), min_size=n_entities, max_size=n_entities))],
        },
        index=pd.Index(draw(st.permutations(list(range(100, 100 + n_entities))))),
    )
    entities["ts"] = pd.to_datetime(entities["ts"], utc=True)
    ttl = draw(st.sampled_from([None, "3m", "10m"]))
    return entities, features, ttl


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames(), st.booleans())
def test_matches_brute_force_for_any_frames(
    frames: tuple[pd.DataFrame, pd.DataFrame, str | None], use_created: bool
) -> None:
    entities, features, ttl = frames
    if not use_created:
        features = features.drop(columns="created")
    created = "created" if use_created else None
    got = point_in_time_join(
        entities, features, keys="user", entity_timestamp="ts", feature_timestamp="at",
        created_timestamp=created, ttl=ttl,
    )
    want = brute_force_pit(
        entities, features, keys=["user"], entity_timestamp="ts", feature_timestamp="at",
        created_timestamp=created, ttl=pd.Timedelta(ttl) if ttl else None,
    )
    _same(got, want)


def test_ties_go_to_latest_created_then_last_row() -> None:
    at = T0 + pd.Timedelta(hours=1)
    features = pd.DataFrame({
        "k": [1, 1, 1, 2, 2],
        "at": [at] * 5,
        "created": [at + pd.Timedelta(minutes=m) for m in (5, 9, 1, 3, 3)],
        "v": ["a", "b", "c", "d", "e"],
    })
    entities = pd.DataFrame({"k": [1, 2], "ts": [at, at + pd.Timedelta(days=1)]})
    for _ in range(5):  # the answer never changes from run to run
        out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                                 feature_timestamp="at", created_timestamp="created")
        assert out["v"].tolist() == ["b", "e"]


def test_duplicate_entity_rows_are_kept_in_order_with_their_index() -> None:
    features = pd.DataFrame({"k": [1, 2], "at": [T0, T0], "v": [1.5, 2.5]})
    entities = pd.DataFrame(
        {"k": [2, 1, 2, 2, 3], "ts": [T0] * 5, "label": [0, 1, 0, 0, 1]},
        index=[9, 3, 9, 7, 1],
    )
    out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                             feature_timestamp="at")
    assert list(out.index) == [9, 3, 9, 7, 1]
    assert out["v"].tolist()[:4] == [2.5, 1.5, 2.5, 2.5] and np.isnan(out["v"].iloc[4])
    assert out["label"].tolist() == [0, 1, 0, 0, 1]


def test_ttl_boundary_is_inclusive_and_nulls_keep_integer_values_exact() -> None:
    features = pd.DataFrame({"k": [1], "at": [T0], "big": [2**62 + 1], "flag": [True]})
    entities = pd.DataFrame({"k": [1, 1, 1], "ts": [T0 + pd.Timedelta(d) for d in
                                                    ("0s", "7D", "7D 1us")]})
    out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                             feature_timestamp="at", ttl="7d")
    assert str(out["big"].dtype) == "Int64" and str(out["flag"].dtype) == "boolean"
    assert out["big"].tolist()[:2] == [2**62 + 1, 2**62 + 1] and out["big"].isna().iloc[2]


def test_timestamp_units_and_zones_are_compared_as_instants() -> None:
    paris = pd.Series(pd.to_datetime(["2024-03-01 01:30"]).tz_localize("Europe/Paris"))
    features = pd.DataFrame({
        "k": [1, 1],
        "at": pd.Series(pd.to_datetime(["2024-03-01 00:15", "2024-03-01 00:45"], utc=True))
        .dt.as_unit("ns"),
        "v": [1, 2],
    })
    entities = pd.DataFrame({"k": [1], "ts": paris.dt.as_unit("s")})  # 00:30 UTC
    out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                             feature_timestamp="at")
    assert out["v"].tolist() == [1]
    assert out["ts"].dt.tz is not None and str(out["ts"].dt.tz) == "Europe/Paris"


def test_a_column_of_mixed_time_zones_is_converted_value_by_value() -> None:
    features = pd.DataFrame({
        "k": [1, 1],
        "at": ["2024-03-01T10:00:00+02:00", "2024-03-01T09:30:00Z"],  # 08:00 and 09:30 UTC
        "v": [1, 2],
    })
    entities = pd.DataFrame({"k": [1, 1], "ts": pd.to_datetime(
        ["2024-03-01 09:00", "2024-03-01 10:00"], utc=True)})
    out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                             feature_timestamp="at")
    assert out["v"].tolist() == [1, 2]


def test_text_timestamps_without_zone_and_naive_against_aware_are_errors() -> None:
    entities = pd.DataFrame({"k": [1], "ts": [T0]})
    features = pd.DataFrame({"k": [1], "at": ["2024-03-01 10:00"], "v": [1]})
    with pytest.raises(SchemaError.__mro__[1], match=r"row 0.*no time zone"):
        point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                           feature_timestamp="at")
    naive = features.assign(at=pd.to_datetime(features["at"]))
    with pytest.raises(SchemaError, match="'at' has no time zone but 'ts' has one"):
        point_in_time_join(entities, naive, keys="k", entity_timestamp="ts",
                           feature_timestamp="at")
    both_naive = entities.assign(ts=entities["ts"].dt.tz_localize(None))
    out = point_in_time_join(both_naive, naive, keys="k", entity_timestamp="ts",
                             feature_timestamp="at")
    assert out["v"].isna().all()  # 10:00 is after 00:00 on both sides, read alike


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (pd.Series([1, 2], dtype="int32"), pd.Series([1, 2], dtype="int64")),
        (pd.Series([1, 2]), pd.Series([1.0, 2.0])),
        (pd.Series([1, 2]), pd.Series(["1", "2"])),
        (pd.Series(["1", "2"]), pd.Series([1, 2], dtype="uint16")),
        (pd.Series([1, 2], dtype="Int64"), pd.Series([1.0, np.nan])),
        (pd.Series(["a", "b"], dtype="category"), pd.Series(["a", "b"], dtype=object)),
    ],
)
def test_keys_of_different_types_are_cast_when_lossless(
    left: pd.Series, right: pd.Series
) -> None:
    entities = pd.DataFrame({"k": left, "ts": [T0, T0]})
    features = pd.DataFrame({"k": right, "at": [T0, T0], "v": [10, 20]})
    out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                             feature_timestamp="at")
    assert out["v"].iloc[0] == 10
    assert out["k"].dtype == left.dtype  # the entity frame comes back as it went in


@pytest.mark.parametrize(
    ("left", "right", "where"),
    [
        (pd.Series([1, 2]), pd.Series([1.0, 2.5]), "features row 1 holds 2.5"),
        (pd.Series([1, 2]), pd.Series(["1", "02"]), "features row 1 holds '02'"),
        (pd.Series(["x", "2"]), pd.Series([1, 2]), "entities row 0 holds 'x'"),
        (pd.Series([True, False]), pd.Series([1, 0]), "bool in entities but int64"),
    ],
)
def test_keys_that_cannot_be_cast_without_loss_are_clear_errors(
    left: pd.Series, right: pd.Series, where: str
) -> None:
    entities = pd.DataFrame({"k": left, "ts": [T0, T0]})
    features = pd.DataFrame({"k": right, "at": [T0, T0], "v": [10, 20]})
    with pytest.raises(SchemaError, match=where):
        point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                           feature_timestamp="at")


def test_bad_columns_clashes_and_ttl_are_clear_errors() -> None:
    entities = pd.DataFrame({"k": [1], "ts": [T0], "v": [0]})
    features = pd.DataFrame({"k": [1], "at": [T0], "v": [1]})
    with pytest.raises(SchemaError, match="'v' clashes with an entity column"):
        point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                           feature_timestamp="at")
    with pytest.raises(SchemaError, match="The features frame has no column 'event_time'"):
        point_in_time_join(entities[["k", "ts"]], features, keys="k", entity_timestamp="ts",
                           feature_timestamp="event_time")
    with pytest.raises(ConfigError, match="'ttl' parameter must be a duration like '7d'"):
        point_in_time_join(entities[["k", "ts"]], features, keys="k", entity_timestamp="ts",
                           feature_timestamp="at", ttl="a week")
    with pytest.raises(SchemaError, match="must hold timestamps"):
        point_in_time_join(entities[["k", "ts"]], features.assign(at=[5]), keys="k",
                           entity_timestamp="ts", feature_timestamp="at")


def test_composite_keys_null_keys_and_null_times_match_nothing() -> None:
    features = pd.DataFrame({
        "a": [1, 1, None], "b": ["x", "y", "x"], "at": [T0, T0, T0], "v": [1, 2, 3],
    })
    entities = pd.DataFrame({
        "a": [1, 1, None, 1], "b": ["y", "x", "x", "x"],
        "ts": [T0, T0, T0, pd.NaT],
    })
    out = point_in_time_join(entities, features, keys=["a", "b"], entity_timestamp="ts",
                             feature_timestamp="at")
    assert out["v"].tolist()[:2] == [2, 1] and out["v"].isna().tolist()[2:] == [True, True]


def test_empty_frames() -> None:
    features = pd.DataFrame({"k": pd.Series([], dtype="int64"),
                             "at": pd.Series([], dtype="datetime64[us, UTC]"),
                             "v": pd.Series([], dtype="float64")})
    entities = pd.DataFrame({"k": [1], "ts": [T0]})
    out = point_in_time_join(entities, features, keys="k", entity_timestamp="ts",
                             feature_timestamp="at")
    assert len(out) == 1 and out["v"].isna().all()
    none = point_in_time_join(entities.iloc[:0], features, keys="k", entity_timestamp="ts",
                              feature_timestamp="at")
    assert list(none.columns) == ["k", "ts", "v"] and len(none) == 0


_FAR = [-(2**61), -(2**40), -1, 0, 1, 2**33, 2**61]  # microseconds: a span of 2**62


@st.composite
def _wide_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Sparse or text keys, composite keys and instants 146,000 years apart, with ties."""
    kind = draw(st.sampled_from(["sparse", "text", "pair"]))
    n_f, n_e = draw(st.integers(0, 25)), draw(st.integers(0, 15))

    def keys(n: int) -> list[int]:
        return draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))

    def times(n: int) -> pd.Series:
        micros = draw(st.lists(st.sampled_from(_FAR), min_size=n, max_size=n))
        return pd.Series(np.array(micros, dtype="datetime64[us]")).dt.tz_localize("UTC")

    def key_columns(n: int) -> dict[str, object]:
        base = keys(n)
        if kind == "sparse":
            return {"k": pd.Series([k * 10**15 - 7 for k in base], dtype="int64")}
        if kind == "text":
            return {"k": pd.Series([f"user-{k}" for k in base], dtype="str")}
        return {"k": pd.Series(base, dtype="int64"),
                "j": pd.Series([str(k % 2) for k in keys(n)], dtype="str")}

    features = pd.DataFrame({**key_columns(n_f), "at": times(n_f),
                             "made": times(n_f), "v": np.arange(n_f) * 10})
    entities = pd.DataFrame({**key_columns(n_e), "ts": times(n_e)})
    return entities, features, draw(st.sampled_from([None, "1ms", "3000d"]))


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_wide_frames())
def test_matches_brute_force_with_wide_spans_sparse_and_composite_keys(
    frames: tuple[pd.DataFrame, pd.DataFrame, str | None],
) -> None:
    """Times too far apart to pack with the key code are ranked first; the answer is the same."""
    entities, features, ttl = frames
    keys = [c for c in ("k", "j") if c in features.columns]
    got = point_in_time_join(entities, features, keys=keys, entity_timestamp="ts",
                             feature_timestamp="at", created_timestamp="made", ttl=ttl)
    want = brute_force_pit(entities, features, keys=keys, entity_timestamp="ts",
                           feature_timestamp="at", created_timestamp="made",
                           ttl={None: None, "1ms": pd.Timedelta(milliseconds=1),
                                "3000d": pd.Timedelta(days=3000)}[ttl])
    _same(got, want)


def test_many_key_columns_whose_codes_would_overflow_are_compressed() -> None:
    rng = np.random.default_rng(3)
    names = [f"k{i}" for i in range(8)]  # 8 keys of 1,024+ codes each: 2**80 combinations
    features = pd.DataFrame({n: rng.integers(0, 2, 60) * 1000 for n in names})
    features["at"] = T0 + pd.to_timedelta(rng.integers(0, 5, 60), unit="h")
    features["v"] = np.arange(60)
    entities = features[names].sample(40, replace=True, random_state=1).reset_index(drop=True)
    entities["ts"] = T0 + pd.to_timedelta(rng.integers(0, 6, 40), unit="h")
    got = point_in_time_join(entities, features, keys=names, entity_timestamp="ts",
                             feature_timestamp="at")
    want = brute_force_pit(entities, features, keys=names, entity_timestamp="ts",
                           feature_timestamp="at")
    _same(got, want)
    assert got["v"].notna().sum() > 10


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 80), st.integers(0, 30), st.integers(2, 5),
       st.booleans())
def test_joining_ranges_of_keys_in_threads_gives_the_one_thread_answer(
    seed: int, n_features: int, n_entities: int, threads: int, with_nulls: bool
) -> None:
    """Large joins are cut into ranges of key codes joined in threads; small ones are forced
    through the same path here, with many ties, null keys (-1) and null times."""
    rng = np.random.default_rng(seed)
    f_code, f_us = rng.integers(-1, 7, n_features), rng.integers(0, 6, n_features)
    made = rng.integers(0, 3, n_features)
    e_code, e_us = rng.integers(-1, 8, n_entities), rng.integers(-1, 7, n_entities)
    if with_nulls:
        f_us[::4] = np.iinfo(np.int64).min
        made[::3] = np.iinfo(np.int64).min
    for created in (made, None):
        one = _pit._asof(e_code.copy(), e_us, f_code.copy(), f_us, created, 8, threads=1)
        many = _pit._asof(e_code.copy(), e_us, f_code.copy(), f_us, created, 8, threads=threads)
        assert one.tolist() == many.tolist()


def test_a_join_large_enough_for_threads_matches_pandas_merge_asof() -> None:
    """Above the threshold for threads; the reference is pandas' merge_asof over features
    sorted by (time, created, input row), so the last of tied rows is the winner."""
    rng = np.random.default_rng(7)
    n, m = 300_000, 150_000
    at = T0 + pd.to_timedelta(rng.integers(0, 2_000, n), unit="min")
    features = pd.DataFrame({"user": rng.integers(0, 5_000, n), "at": at,
                             "made": at + pd.to_timedelta(rng.integers(0, 3, n), unit="s"),
                             "v": np.arange(n)})
    entities = pd.DataFrame({"user": rng.integers(0, 5_100, m),
                             "ts": T0 + pd.to_timedelta(rng.integers(-10, 2_100, m), unit="min")})
    assert n + m >= _pit._PARALLEL_MIN_ROWS
    got = point_in_time_join(entities, features, keys="user", entity_timestamp="ts",
                             feature_timestamp="at", created_timestamp="made", ttl="3h")
    ordered = features.assign(row=np.arange(n)).sort_values(["at", "made", "row"], kind="stable")
    want = pd.merge_asof(entities.assign(pos=np.arange(m)).sort_values("ts", kind="stable"),
                         ordered.drop(columns=["made", "row"]), left_on="ts", right_on="at",
                         by="user", tolerance=pd.Timedelta("3h")).sort_values("pos")
    assert got["v"].tolist() == want["v"].astype("Int64").tolist()
    assert got["v"].notna().sum() > m // 2
