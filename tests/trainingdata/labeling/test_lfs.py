"""Labeling functions, the applier (in worker processes), analysis and training labels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from loopml.core import ConfigError, DataError
from loopml.trainingdata.labeling import (
    ABSTAIN,
    DawidSkene,
    analyze_lfs,
    apply_lfs,
    keyword_lf,
    labeling_function,
    lookup_lf,
    model_lf,
    regex_lf,
    threshold_lf,
    training_labels,
    vectorized_lf,
)


@labeling_function
def short_comment(row):
    return 0 if len(row.text.split()) < 4 else ABSTAIN


@labeling_function(name="mentions_song")
def song(row):
    return 0 if "song" in row["text"].lower() else ABSTAIN


def youtube_lfs():
    return [
        keyword_lf("text", ["my channel", "my video"], 1, name="keyword_my"),
        keyword_lf("text", ["subscribe"], 1),
        regex_lf("text", r"https?://|www\.", 1, name="keyword_link"),
        regex_lf("text", r"check (it|this|my|out)", 1, name="regex_check_out"),
        short_comment,
        song,
    ]


def test_applier_on_youtube_texts_matches_sequential_and_parallel(youtube) -> None:
    _, y, texts = youtube["train"]
    frame = pd.DataFrame({"text": texts})
    sequential = apply_lfs(frame, youtube_lfs(), cardinality=2, n_jobs=1, chunk_size=300)
    parallel = apply_lfs(frame, youtube_lfs(), cardinality=2, n_jobs=2, chunk_size=300)
    pd.testing.assert_frame_equal(sequential, parallel)
    assert sequential.shape == (len(texts), 6)
    assert set(sequential.dtypes.astype(str)) == {"int8"}
    table = analyze_lfs(sequential, y=y).table
    assert table.loc["keyword_link", "accuracy"] > 0.9  # links are spam
    assert table.loc["keyword_link", "polarity"] == [1]
    assert 0.05 < table.loc["keyword_link", "coverage"] < 0.3
    labels = DawidSkene().fit(sequential, seed=0).predict(sequential)
    voted = labels != -1
    assert (labels[voted] == y[voted]).mean() > 0.75


def test_lambdas_work_in_worker_processes() -> None:
    frame = pd.DataFrame({"x": range(50)})
    lf = labeling_function(name="even")(lambda row: 1 if row.x % 2 == 0 else 0)
    L = apply_lfs(frame, [lf], n_jobs=2, chunk_size=10)
    assert L["even"].tolist() == [1 - (i % 2) for i in range(50)]


def test_error_in_a_row_function_names_lf_and_row() -> None:
    frame = pd.DataFrame({"text": ["ok", "fine", None, "x"]}, index=["a", "b", "c", "d"])

    @labeling_function
    def length(row):
        return 1 if len(row.text) > 2 else ABSTAIN

    for n_jobs in (1, 2):
        with pytest.raises(DataError, match=r"'length' raised TypeError.*row 2 \(index 'c'\)"):
            apply_lfs(frame, [length], n_jobs=n_jobs, chunk_size=1)


def test_bad_return_values_are_named() -> None:
    frame = pd.DataFrame({"v": [1, 2, 3]})
    returns_none = labeling_function(name="none")(lambda row: None if row.v == 2 else 0)
    with pytest.raises(DataError, match=r"'none' returned None for row 1.*-1 to abstain"):
        apply_lfs(frame, [returns_none])
    too_big = labeling_function(name="big")(lambda row: 5)
    with pytest.raises(DataError, match=r"'big' returned 5 for row 0.*0\.\.1"):
        apply_lfs(frame, [too_big], cardinality=2)
    as_text = vectorized_lf(name="text")(lambda f: np.array(["spam"] * len(f)))
    with pytest.raises(DataError, match="'text' returned 'spam' for row 0"):
        apply_lfs(frame, [as_text])
    wrong_length = vectorized_lf(name="short")(lambda f: np.zeros(2))
    with pytest.raises(DataError, match=r"'short' returned shape \(2,\)"):
        apply_lfs(frame, [wrong_length])
    missing = keyword_lf("body", ["x"], 1)
    with pytest.raises(DataError, match="'body'"):
        apply_lfs(frame, [missing])


def test_applier_rejects_bad_configuration() -> None:
    frame = pd.DataFrame({"v": [1]})
    with pytest.raises(ConfigError, match="at least one"):
        apply_lfs(frame, [])
    with pytest.raises(ConfigError, match="named 'short_comment'"):
        apply_lfs(frame, [short_comment, short_comment])
    with pytest.raises(ConfigError, match="LabelingFunction"):
        apply_lfs(frame, [lambda row: 0])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="regular expression"):
        regex_lf("v", "(", 1)
    with pytest.raises(ConfigError, match="above"):
        threshold_lf("v", 1)


def test_builders() -> None:
    frame = pd.DataFrame(
        {
            "text": ["Visit www.x.com", "love it", pd.NA],
            "amount": [10, 5000, None],
            "domain": ["spam.biz", "ok.org", "spam.biz"],
        }
    )

    class Confident:
        def predict_proba(self, X):
            return np.array([[0.95, 0.05], [0.4, 0.6], [0.1, 0.9]])

    L = apply_lfs(
        frame,
        [
            regex_lf("text", r"www\.", 1, name="link"),
            threshold_lf("amount", 1, above=1000),
            lookup_lf("domain", {"spam.biz": 1}),
            model_lf(Confident(), ["amount"], min_confidence=0.8, name="model"),
        ],
    )
    assert L.to_numpy().tolist() == [[1, -1, 1, 0], [-1, 1, -1, -1], [-1, -1, 1, 1]]


def test_analysis_totals_and_report() -> None:
    L = np.array([[1, 1, -1], [0, 1, -1], [-1, -1, 0], [-1, -1, -1]])
    result = analyze_lfs(L, ["a", "b", "c"])
    assert result.totals == {
        "rows": 4,
        "lfs": 3,
        "coverage": 0.75,
        "overlap": 0.5,
        "conflict": 0.25,
        "votes_per_row": 1.25,
    }
    assert "accuracy" not in result.table
    assert "<table" in result.to_html() and "conflict 0.250" in result.to_text()
    with pytest.raises(DataError, match="one label per row"):
        analyze_lfs(L, y=[0, 1])


def test_training_labels_filter_and_expansion() -> None:
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.55, 0.45]])
    L = np.array([[0, 0], [-1, -1], [1, -1], [0, 1]])
    kept = training_labels(proba, L, min_votes=1, min_confidence=0.6)
    assert kept.rows.tolist() == [0, 2] and kept.dropped == 2
    assert "2 dropped" in kept.summary()
    rows, labels, weights = kept.expanded()
    assert rows.tolist() == [0, 0, 2, 2] and labels.tolist() == [0, 1, 0, 1]
    assert np.allclose(weights, [0.9, 0.1, 0.3, 0.7])
    with pytest.raises(ConfigError, match="min_confidence"):
        training_labels(proba, min_confidence=2)
    with pytest.raises(DataError, match=re.escape("rows")):
        training_labels(proba, L[:2])


def test_soft_labels_train_a_classifier_on_youtube(youtube) -> None:
    """Probabilistic labels from the train split's LFs train a text classifier that beats
    the label model itself on the test split's covered + uncovered rows (it generalises to
    rows no LF covers)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    L, _, texts = youtube["train"]
    L_test, y_test, texts_test = youtube["test"]
    proba = DawidSkene().fit(L, seed=0).predict_proba(L)
    kept = training_labels(proba, L, min_votes=1)
    rows, labels, weights = kept.expanded()
    vectorizer = TfidfVectorizer(min_df=2).fit(texts)
    X = vectorizer.transform(texts)
    clf = LogisticRegression(C=10, max_iter=1000).fit(X[rows], labels, sample_weight=weights)
    accuracy = (clf.predict(vectorizer.transform(texts_test)) == y_test).mean()
    assert accuracy > 0.85, accuracy


def test_decorated_functions_pickle_by_reference() -> None:
    """Module-level decorated functions pickle by reference (the name is bound to the
    LabelingFunction, so plain pickling of the inner function would fail)."""
    import pickle

    assert pickle.loads(pickle.dumps(short_comment)) is short_comment
    assert pickle.loads(pickle.dumps(song)) is song
    frame = pd.DataFrame({"text": ["see www.x.com", "hi"], "n": [5, 1], "d": ["a", "b"]})
    built = [
        keyword_lf("text", ["see"], 1),
        regex_lf("text", r"www\.", 1),
        threshold_lf("n", 1, above=3),
        lookup_lf("d", {"a": 0}),
    ]
    for lf in built:  # the builders pickle too, and vote the same afterwards
        copy = pickle.loads(pickle.dumps(lf))
        assert copy.name == lf.name
        assert np.array_equal(copy.apply_frame(frame), lf.apply_frame(frame))
