"""Label matrices: validation, one-hot vote encodings and shared arithmetic.

A label matrix ``L`` has one row per example and one column per labeling function; each cell
is a class index in ``0..k-1`` or ``-1`` for abstain. Every label model calls
:func:`check_label_matrix` first, so bad input fails the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.core import ConfigError, DataError

__all__ = [
    "ABSTAIN",
    "check_cardinality",
    "check_label_matrix",
    "infer_cardinality",
    "VoteMoments",
    "label_dtype",
    "lf_agreement",
    "one_blas_thread",
    "linear_votes",
    "vote_counts",
    "vote_moments",
    "votes_one_hot",
]

ABSTAIN = -1

IntArray = npt.NDArray[np.integer[Any]]
FloatArray = npt.NDArray[np.float64]


def label_dtype(cardinality: int) -> type[np.integer[Any]]:
    """The smallest integer type that holds ``-1..cardinality-1``: int8, else int16.

    >>> label_dtype(2).__name__, label_dtype(300).__name__
    ('int8', 'int16')
    """
    if cardinality <= 127:
        return np.int8
    if cardinality <= 32767:
        return np.int16
    raise ConfigError(
        f"The 'cardinality' parameter must be at most 32767. Got {cardinality} instead."
    )


def _first_bad(mask: npt.NDArray[np.bool_]) -> tuple[int, int]:
    rows, cols = np.nonzero(mask)
    return int(rows[0]), int(cols[0])


def check_label_matrix(
    L: Any, cardinality: int | None = None, *, name: str = "L", min_rows: int = 1
) -> IntArray:
    """Validate a label matrix and return it as a 2-D integer array (no copy when possible).

    Values must be integers in ``-1..cardinality-1``; the error names the row and the
    labeling function (column) of the first bad cell.

    >>> check_label_matrix([[0, -1], [1, 1]], 2).dtype.name
    'int8'
    >>> check_label_matrix([[0, 3]], 2)
    Traceback (most recent call last):
    ...
    loopml.core._exceptions.DataError: The label matrix L has the value 3 at row 0, ...
    """
    names = getattr(L, "columns", None)
    array = np.asarray(L)
    if array.ndim != 2:
        raise DataError(
            f"The label matrix {name} must be 2-D (rows x labeling functions). "
            f"Got an array of shape {array.shape} instead.",
            hint="stack the labeling functions' outputs as columns",
        )
    if array.shape[0] < min_rows or array.shape[1] == 0:
        raise DataError(
            f"The label matrix {name} has shape {array.shape}; it needs at least {min_rows} "
            "row(s) and one labeling function.",
            hint="apply at least one labeling function to some rows",
        )
    if not np.issubdtype(array.dtype, np.integer):
        array = _to_integer(array, name)
    low, high = int(array.min()), int(array.max())
    limit = cardinality if cardinality is not None else max(high + 1, 2)
    if low < ABSTAIN or high >= limit:
        row, col = _first_bad((array < ABSTAIN) | (array >= limit))
        column = f"{names[col]!r} (column {col})" if names is not None else f"(column) {col}"
        raise DataError(
            f"The label matrix {name} has the value {array[row, col]} at row {row}, labeling "
            f"function {column}; values must be -1 (abstain) or a class index in 0..{limit - 1}",
            hint="check the labeling function's output, or pass "
            f"cardinality={max(high + 1, limit)}",
        )
    dtype = label_dtype(limit)
    return array if array.dtype == dtype else array.astype(dtype)


def _to_integer(array: npt.NDArray[Any], name: str) -> IntArray:
    try:
        as_float = array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(
            f"The label matrix {name} must hold integers (-1 for abstain). "
            f"Got values of type {array.dtype} instead.",
            hint="labeling functions return a class index or -1",
        ) from error
    bad = ~np.isfinite(as_float) | (as_float != np.round(as_float))
    if bad.any():
        row, col = _first_bad(bad)
        raise DataError(
            f"The label matrix {name} has the non-integer value {array[row, col]!r} at row "
            f"{row}, column {col}; values must be -1 (abstain) or a class index",
            hint="use -1 for abstain instead of NaN or None",
        )
    return as_float.astype(np.int16)


def infer_cardinality(L: IntArray, cardinality: int | None) -> int:
    """``cardinality`` if given, else the largest class index seen plus one (at least 2).

    >>> infer_cardinality(np.array([[0, 2], [-1, 1]]), None)
    3
    """
    if cardinality is not None:
        return check_cardinality(cardinality)
    return max(int(L.max()) + 1, 2)


def check_cardinality(cardinality: Any) -> int:
    """``cardinality`` itself if it is an integer of at least 2, else a ``ConfigError``.

    >>> check_cardinality(3)
    3
    """
    if isinstance(cardinality, bool) or not isinstance(cardinality, int) or cardinality < 2:
        raise ConfigError(
            "The 'cardinality' parameter must be an integer of at least 2. "
            f"Got {cardinality!r} instead."
        )
    return cardinality


def votes_one_hot(L: IntArray, cardinality: int) -> Any:
    """The votes as a sparse CSR matrix ``n x (m * k)``: a 1 at ``(i, j*k + L[i, j])``.

    Abstains are left out, so the matrix holds only as many entries as there are votes.

    >>> votes_one_hot(np.array([[0, -1], [1, 1]]), 2).toarray()
    array([[1., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """
    from scipy import sparse

    n, m = L.shape
    voted = L != ABSTAIN
    flat = np.flatnonzero(voted)
    columns = (flat % m).astype(np.int32) * cardinality + L.ravel()[flat]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(voted, axis=1), out=indptr[1:])
    data = np.ones(len(flat), dtype=np.float64)
    return sparse.csr_matrix((data, columns, indptr), shape=(n, m * cardinality))


@dataclass(frozen=True)
class VoteMoments:
    """What the moment-based models need from the rows, gathered in one pass.

    ``overlaps[j*k+v, l*k+u] = P(lambda_j = v, lambda_l = u)``; ``majority_joint[j*k+v, c]``
    sums, over rows, the majority vote's soft label for ``c`` where ``lambda_j = v``;
    ``majority_mass[c]`` sums that soft label over all rows (uncovered rows count 1/k).
    """

    overlaps: FloatArray
    majority_joint: FloatArray
    majority_mass: FloatArray
    n: int


def vote_moments(L: IntArray, cardinality: int, chunk_rows: int = 65_536) -> VoteMoments:
    """One pass over ``L`` in chunks of dense 0/1 blocks, one block per class.

    Each block ``(L_chunk == c)`` is written contiguously as float32 (exact for a chunk's
    counts) and multiplied with one BLAS thread: on a busy 2-core machine multi-threaded
    BLAS was 30x slower on these thin products, and a one-hot layout of ``j*k+v`` columns
    5-20x slower to build.

    >>> vote_moments(np.array([[0, 0], [1, -1]]), 2).overlaps
    array([[0.5, 0. , 0.5, 0. ],
           [0. , 0.5, 0. , 0. ],
           [0.5, 0. , 0.5, 0. ],
           [0. , 0. , 0. , 0. ]])
    """
    n, m = L.shape
    k = cardinality
    overlaps, joint, mass = np.zeros((k * m, k * m)), np.zeros((k * m, k)), np.zeros(k)
    with one_blas_thread():
        for blocks in _class_blocks(L, k, chunk_rows):
            counts = np.stack([block.sum(axis=1, dtype=np.float64) for block in blocks], axis=1)
            totals = counts.sum(axis=1, keepdims=True)
            soft = np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / k)
            soft32 = soft.astype(np.float32)
            for a in range(k):
                joint[a * m : (a + 1) * m] += blocks[a].T @ soft32
                for b in range(a, k):
                    product = blocks[a].T @ blocks[b]
                    overlaps[a * m : (a + 1) * m, b * m : (b + 1) * m] += product
                    if b != a:
                        overlaps[b * m : (b + 1) * m, a * m : (a + 1) * m] += product.T
            mass += soft.sum(axis=0)
    order = _lf_major(m, k)
    return VoteMoments(overlaps[np.ix_(order, order)] / n, joint[order], mass, n)


def linear_votes(L: IntArray, weights: FloatArray, chunk_rows: int = 65_536) -> FloatArray:
    """``onehot(L) @ weights`` for ``weights`` of shape ``(m * k, d)``, abstains as zeros.

    >>> linear_votes(np.array([[0, -1], [1, 1]]), np.arange(8.0).reshape(4, 2))
    array([[ 0.,  1.],
           [ 8., 10.]])
    """
    n, m = L.shape
    k = weights.shape[0] // m
    per_class = weights.reshape(m, k, -1).astype(np.float32)
    out = np.zeros((n, weights.shape[1]))
    with one_blas_thread():
        starts = range(0, n, chunk_rows)
        for start, blocks in zip(starts, _class_blocks(L, k, chunk_rows), strict=True):
            for c in range(k):
                out[start : start + chunk_rows] += blocks[c] @ per_class[:, c, :]
    return out


def _class_blocks(L: IntArray, k: int, chunk_rows: int) -> Iterator[list[npt.NDArray[np.float32]]]:
    """Per chunk of rows, ``[(chunk == c) as float32 for c in 0..k-1]``."""
    for start in range(0, L.shape[0], chunk_rows):
        chunk = L[start : start + chunk_rows]
        blocks = []
        for c in range(k):
            block = np.empty(chunk.shape, dtype=np.float32)
            np.equal(chunk, c, out=block, casting="unsafe")
            blocks.append(block)
        yield blocks


def _lf_major(m: int, k: int) -> IntArray:
    """Index that reorders class-major columns (``c*m + j``) to ``j*k + c``."""
    return np.asarray([c * m + j for j in range(m) for c in range(k)])


def one_blas_thread() -> Any:
    """A context that runs every BLAS loaded so far on one thread.

    The products here are thin (tall x 2..100); on a shared 2-core machine OpenBLAS's
    threads cost 10-30x more than they save.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def vote_counts(L: IntArray, cardinality: int) -> FloatArray:
    """Per row and class, the number of votes for that class.

    >>> vote_counts(np.array([[0, -1, 0], [1, 0, -1]]), 2)
    array([[2., 0.],
           [1., 1.]])
    """
    n, m = L.shape
    counts = np.empty((n, cardinality))
    ones = np.ones(m, dtype=np.float32)
    with one_blas_thread():
        starts = range(0, n, _CHUNK)
        for start, blocks in zip(starts, _class_blocks(L, cardinality, _CHUNK), strict=True):
            for c, block in enumerate(blocks):
                counts[start : start + _CHUNK, c] = block @ ones
    return counts


def lf_agreement(L: IntArray, proba: FloatArray) -> FloatArray:
    """Per labeling function, the mean probability its votes get from ``proba`` (NaN if none).

    >>> lf_agreement(np.array([[0, 1], [0, -1]]), np.array([[0.9, 0.1], [0.6, 0.4]]))
    array([0.75, 0.1 ])
    """
    n, m = L.shape
    k = proba.shape[1]
    agree, votes = np.zeros(m), np.zeros(m)
    weights = proba.astype(np.float32)
    ones = np.ones(_CHUNK, dtype=np.float32)
    with one_blas_thread():
        starts = range(0, n, _CHUNK)
        for start, blocks in zip(starts, _class_blocks(L, k, _CHUNK), strict=True):
            for c, block in enumerate(blocks):
                agree += weights[start : start + _CHUNK, c] @ block
                votes += ones[: len(block)] @ block
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(votes > 0, agree / np.maximum(votes, 1), np.nan))


_CHUNK = 65_536
