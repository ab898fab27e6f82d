"""Grouping ratings: a stable counting sort, per-user (timestamp, movie) order without older
duplicates, a parallel gather and the stable partition into train / validation / test.

Each public function validates its arguments and calls a pure ``@njit`` ``_kernel``; each kernel
is checked against a reference in ``tests/naive.py``.
"""

from __future__ import annotations

import numba
import numpy as np

from mfrec.errors import DataError

@numba.njit(cache=True)
def _counting_sort(keys, n_keys, order):
    """Stable counting sort into ``order`` (the permutation grouping entries by key); returns indptr.

    ``order`` is allocated by the caller (NumPy allocations of this size get transparent huge pages).
    """
    n = keys.shape[0]
    indptr = np.zeros(n_keys + 1, np.int64)
    for i in range(n):
        indptr[keys[i] + 1] += 1
    for j in range(n_keys):
        indptr[j + 1] += indptr[j]
    fill = indptr[:-1].copy()
    for i in range(n):
        kk = keys[i]
        order[fill[kk]] = i
        fill[kk] += 1
    return indptr


@numba.njit(cache=True, parallel=True)
def _sort_segments_dedupe(indptr, order, ts, movie, n_movies, keep):
    """Within each user's segment of ``order``: sort by (timestamp, movie), stably; mark older duplicates.

    ``order`` is permuted in place. ``keep[j]`` (position in ``order``) becomes False for every
    rating of a (user, movie) pair that has a later one (the later in time, or in file order on
    equal timestamps). Returns the number of duplicates dropped.
    """
    n_users = indptr.shape[0] - 1
    n_blocks = min(n_users, 64)
    dropped = np.zeros(n_blocks, np.int64)
    for blk in numba.prange(n_blocks):
        seen = np.full(n_movies, -1, np.int64)
        for u in range(blk, n_users, n_blocks):
            a, b = indptr[u], indptr[u + 1]
            if b - a > 1:
                ordered = True
                for j in range(a + 1, b):
                    p, q = order[j - 1], order[j]
                    if ts[q] < ts[p] or (ts[q] == ts[p] and movie[q] < movie[p]):
                        ordered = False
                        break
                if not ordered:
                    seg = order[a:b].copy()
                    # stable sort by movie, then stable by timestamp: (timestamp, movie, file order)
                    mk = np.empty(b - a, np.int64)
                    for j in range(b - a):
                        mk[j] = movie[seg[j]]
                    seg = seg[np.argsort(mk, kind="mergesort")]
                    for j in range(b - a):
                        mk[j] = ts[seg[j]]
                    seg = seg[np.argsort(mk, kind="mergesort")]
                    order[a:b] = seg
            for j in range(b - 1, a - 1, -1):  # latest first: keep the first of each movie seen
                m = movie[order[j]]
                if seen[m] == u:
                    keep[j] = False
                    dropped[blk] += 1
                else:
                    seen[m] = u
    return dropped.sum()


@numba.njit(cache=True, parallel=True)
def _gather(src, order, out):
    for i in numba.prange(order.shape[0]):
        out[i] = src[order[i]]


@numba.njit(cache=True)
def _partition(codes, rows, user, movie, timestamp, rating, out_user, out_movie, out_ts, out_rating):
    """Stable partition by split code (0, 1, 2) of rows ``rows[i]`` of the source arrays; returns the counts."""
    n = codes.shape[0]
    counts = np.zeros(3, np.int64)
    for i in range(n):
        counts[codes[i]] += 1
    cursor = np.zeros(3, np.int64)
    cursor[1] = counts[0]
    cursor[2] = counts[0] + counts[1]
    for i in range(n):
        c = codes[i]
        p = cursor[c]
        cursor[c] = p + 1
        r = rows[i]
        out_user[p] = user[r]
        out_movie[p] = movie[r]
        out_ts[p] = timestamp[r]
        out_rating[p] = rating[r]
    return counts


def _check_index(a: np.ndarray, n: int, what: str) -> None:
    if len(a) and (int(a.min()) < 0 or int(a.max()) >= n):
        raise DataError(f"{what} index outside 0..{n - 1}")


def counting_sort(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, order): the stable permutation grouping entries by key, and each key's range in it."""
    keys = np.ascontiguousarray(keys)
    _check_index(keys, n_keys, "a key")
    order = np.empty(len(keys), np.int64)  # allocated by NumPy: transparent huge pages at this size
    indptr = _counting_sort(keys, n_keys, order)
    return indptr, order


def group_by_user(user: np.ndarray, movie: np.ndarray, timestamp: np.ndarray, n_users: int, n_movies: int) -> tuple[np.ndarray, int]:
    """The order that sorts ratings by (user, timestamp, movie), without the older duplicates.

    Duplicate (user, movie) pairs keep the latest rating (on equal timestamps, the later in file
    order); returns the order and the number of duplicates dropped.
    """
    if not len(user) == len(movie) == len(timestamp):
        raise DataError(f"users, movies and timestamps must be of one length, got {len(user)}, {len(movie)}, {len(timestamp)}")
    _check_index(movie, n_movies, "a movie")
    indptr, order = counting_sort(user, n_users)
    keep = np.ones(len(order), np.bool_)
    dropped = int(_sort_segments_dedupe(indptr, order, np.ascontiguousarray(timestamp), np.ascontiguousarray(movie), n_movies, keep))
    if dropped:
        order = order[keep]
    return order, dropped


def gather(src: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``src[order]`` in parallel."""
    src = np.ascontiguousarray(src)
    order = np.ascontiguousarray(order)
    _check_index(order, len(src), "a gathered")
    out = np.empty(len(order), src.dtype)
    _gather(src, order, out)
    return out


def partition(codes: np.ndarray, rows: np.ndarray, user: np.ndarray, movie: np.ndarray, timestamp: np.ndarray,
              rating: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``rows`` of (user, movie, timestamp, rating), stably partitioned by ``codes`` (0, 1, 2).

    Returns the four partitioned arrays and the count of each code.
    """
    codes = np.ascontiguousarray(codes)
    rows = np.ascontiguousarray(rows)
    if codes.shape != rows.shape or codes.ndim != 1:
        raise DataError(f"split codes and rows must be 1-d of one length, got {codes.shape} and {rows.shape}")
    _check_index(codes, 3, "a split code (0, 1, 2)")
    if not len(user) == len(movie) == len(timestamp) == len(rating):
        raise DataError("users, movies, timestamps and ratings must be of one length")
    _check_index(rows, len(user), "a row")
    src = [np.ascontiguousarray(a) for a in (user, movie, timestamp, rating)]
    outs = [np.empty(len(rows), a.dtype) for a in src]
    counts = _partition(codes, rows, *src, *outs)
    return (*outs, counts)
