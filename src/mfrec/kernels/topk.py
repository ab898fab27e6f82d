"""Top-k selection over score rows: the Numba kernel behind every recommendation list and ranking metric.

``topk_rows`` takes a block of raw scores (``rows x movies``, e.g. ``P_block @ Q.T`` from BLAS),
adds the row and column biases, drops each row's excluded movies (a CSR of seen movies) and
movies outside a filter, and keeps the ``k`` best per row, best first. Ties go to the lower
movie index so the result is deterministic. A block of more than ``SERIAL_ROWS`` rows runs in
parallel over its rows (each iteration writing only its own output row); a few rows (one user's
request) run on the calling thread. Both entry points share one row body, ``_topk_row``.

``score_one`` scores every movie for one user vector on the calling thread.
"""

from __future__ import annotations

import numba
import numpy as np

from mfrec.errors import MfrecError
from mfrec.kernels._config import FASTMATH


@numba.njit(cache=True)
def _better(s_a, i_a, s_b, i_b):
    # is (score a, index a) ranked before (score b, index b)?
    return s_a > s_b or (s_a == s_b and i_a < i_b)


@numba.njit(cache=True)
def _sift_down(heap_s, heap_i, pos, size):
    # min-heap on "rank": the root is the worst of the kept items
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        worst = left
        right = left + 1
        if right < size and _better(heap_s[worst], heap_i[worst], heap_s[right], heap_i[right]):
            worst = right
        if _better(heap_s[pos], heap_i[pos], heap_s[worst], heap_i[worst]):
            heap_s[pos], heap_s[worst] = heap_s[worst], heap_s[pos]
            heap_i[pos], heap_i[worst] = heap_i[worst], heap_i[pos]
            pos = worst
        else:
            return


@numba.njit(cache=True)
def _select_row(row, row_bias, col_bias, allowed, excluded, k, out_i, out_s):
    """Best k of one row (``excluded`` marks movies to skip); fills out_i/out_s best first, -1 pad."""
    n = row.shape[0]
    heap_s = np.empty(k, np.float32)
    heap_i = np.empty(k, np.int32)
    size = 0
    for m in range(n):
        if not allowed[m] or excluded[m]:
            continue
        s = np.float32(row[m] + col_bias[m] + row_bias)
        if s != s:  # NaN never ranks
            continue
        if size < k:
            # insert: append then sift up
            pos = size
            heap_s[pos] = s
            heap_i[pos] = m
            size += 1
            while pos > 0:
                parent = (pos - 1) // 2
                if _better(heap_s[parent], heap_i[parent], heap_s[pos], heap_i[pos]):
                    heap_s[parent], heap_s[pos] = heap_s[pos], heap_s[parent]
                    heap_i[parent], heap_i[pos] = heap_i[pos], heap_i[parent]
                    pos = parent
                else:
                    break
        elif _better(s, m, heap_s[0], heap_i[0]):
            heap_s[0] = s
            heap_i[0] = m
            _sift_down(heap_s, heap_i, 0, size)
    # pop the heap worst-first into the tail of the output
    for j in range(k):
        out_i[j] = -1
        out_s[j] = np.float32(np.nan)
    while size > 0:
        size -= 1
        out_i[size] = heap_i[0]
        out_s[size] = heap_s[0]
        heap_s[0] = heap_s[size]
        heap_i[0] = heap_i[size]
        _sift_down(heap_s, heap_i, 0, size)


@numba.njit(cache=True)
def _topk_row(r, scores, row_bias, col_bias, allowed, excl_indptr, excl_indices, row_offset, k, out_i, out_s):
    """Row ``r`` of the block: mark its excluded movies, then select its best k (the one loop body)."""
    excluded = np.zeros(scores.shape[1], np.bool_)  # this row's own marker
    u = row_offset + r
    for p in range(excl_indptr[u], excl_indptr[u + 1]):
        excluded[excl_indices[p]] = True
    _select_row(scores[r], row_bias[r], col_bias, allowed, excluded, k, out_i[r], out_s[r])


@numba.njit(cache=True, parallel=True)
def _topk_rows(scores, row_bias, col_bias, allowed, excl_indptr, excl_indices, row_offset, k, out_i, out_s):
    for r in numba.prange(scores.shape[0]):
        _topk_row(r, scores, row_bias, col_bias, allowed, excl_indptr, excl_indices, row_offset, k, out_i, out_s)


@numba.njit(cache=True, nogil=True)
def _topk_rows_serial(scores, row_bias, col_bias, allowed, excl_indptr, excl_indices, row_offset, k, out_i, out_s):
    # the same rows without a thread pool: one user's list should not wait for worker threads; without
    # the GIL, so a server's other request threads run their Python meanwhile
    for r in range(scores.shape[0]):
        _topk_row(r, scores, row_bias, col_bias, allowed, excl_indptr, excl_indices, row_offset, k, out_i, out_s)


@numba.njit(cache=True, fastmath=FASTMATH, nogil=True)  # re-association only, so the dot product vectorises
def _score_one(movie_factors, vector, movie_bias, base, out):
    n, k = movie_factors.shape
    for i in range(n):
        s = np.float32(0.0)
        for a in range(k):
            s += movie_factors[i, a] * vector[a]
        out[i] = s + movie_bias[i] + base


def score_one(movie_factors: np.ndarray, vector: np.ndarray, movie_bias: np.ndarray, base: float) -> np.ndarray:
    """``movie_factors @ vector + movie_bias + base`` for one user, float32, on the calling thread only
    (a BLAS call would wake its thread pool, which costs more than the sum on a busy machine)."""
    movie_factors = np.ascontiguousarray(movie_factors, dtype=np.float32)
    vector = np.ascontiguousarray(vector, dtype=np.float32)
    movie_bias = np.ascontiguousarray(movie_bias, dtype=np.float32)
    if movie_factors.ndim != 2 or vector.shape != (movie_factors.shape[1],) or movie_bias.shape != (movie_factors.shape[0],):
        raise MfrecError(
            f"score_one shapes disagree: factors {movie_factors.shape}, vector {vector.shape}, bias {movie_bias.shape}"
        )
    out = np.empty(movie_factors.shape[0], np.float32)
    _score_one(movie_factors, vector, movie_bias, np.float32(base), out)
    return out


SERIAL_ROWS = 8  # up to this many rows the top-k runs on the calling thread


def topk_rows(
    scores: np.ndarray,
    k: int,
    *,
    row_bias: np.ndarray | None = None,
    col_bias: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    exclude_indptr: np.ndarray | None = None,
    exclude_indices: np.ndarray | None = None,
    row_offset: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores + row_bias[:, None] + col_bias[None, :]``.

    ``allowed`` (bool, per column) keeps only those columns; row ``r`` also skips the columns
    ``exclude_indices[exclude_indptr[row_offset + r]:exclude_indptr[row_offset + r + 1]]``.
    Returns ``(indices int32, scores float32)`` of shape ``(rows, k)``, best first; a row with fewer
    than ``k`` eligible columns is padded with index -1 and score NaN.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if scores.ndim != 2:
        raise MfrecError(f"topk_rows needs a 2-D score block, got shape {scores.shape}")
    n_rows, n_cols = scores.shape
    if k < 1:
        raise MfrecError(f"top-k needs k >= 1, got {k}")
    row_bias = np.zeros(n_rows, np.float32) if row_bias is None else np.ascontiguousarray(row_bias, dtype=np.float32)
    col_bias = np.zeros(n_cols, np.float32) if col_bias is None else np.ascontiguousarray(col_bias, dtype=np.float32)
    allowed = np.ones(n_cols, np.bool_) if allowed is None else np.ascontiguousarray(allowed, dtype=np.bool_)
    if exclude_indptr is None:
        exclude_indptr = np.zeros(row_offset + n_rows + 1, np.int64)
        exclude_indices = np.zeros(0, np.int32)
    exclude_indptr = np.ascontiguousarray(exclude_indptr, dtype=np.int64)
    exclude_indices = np.ascontiguousarray(exclude_indices, dtype=np.int32)
    if row_bias.shape != (n_rows,) or col_bias.shape != (n_cols,) or allowed.shape != (n_cols,):
        raise MfrecError(
            f"top-k shapes disagree: scores {scores.shape}, row_bias {row_bias.shape}, "
            f"col_bias {col_bias.shape}, allowed {allowed.shape}"
        )
    if row_offset < 0 or len(exclude_indptr) < row_offset + n_rows + 1:
        raise MfrecError(f"the exclusion CSR has {len(exclude_indptr) - 1} rows; rows {row_offset}..{row_offset + n_rows - 1} were asked for")
    if len(exclude_indices) and (exclude_indices.min() < 0 or exclude_indices.max() >= n_cols):
        raise MfrecError(f"an excluded movie index is outside 0..{n_cols - 1}")
    out_i = np.empty((n_rows, k), np.int32)
    out_s = np.empty((n_rows, k), np.float32)
    kernel = _topk_rows_serial if n_rows <= SERIAL_ROWS else _topk_rows
    kernel(scores, row_bias, col_bias, allowed, exclude_indptr, exclude_indices, row_offset, k, out_i, out_s)
    return out_i, out_s
