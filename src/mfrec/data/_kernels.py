"""Numba kernels of the data pipeline: a ratings-file parser, grouping, de-duplication, counting sort.

Pure ``@njit`` functions, arrays in and arrays out, returning a status where they can fail; the
callers in ``movielens.py``, ``prepare.py`` and ``store.py`` validate inputs and raise the errors.
Each is checked against a NumPy reference in ``tests/naive.py``.
"""

from __future__ import annotations

import numba
import numpy as np

# parse status codes (0 = ok); the failing field is reported so the error can name it
BAD_USER, BAD_MOVIE, BAD_RATING, BAD_TIMESTAMP, BAD_END, EMPTY_LINE, BIG_ID = 1, 2, 3, 4, 5, 6, 7
_ID_MAX = 2**31 - 1  # user and movie ids are stored as int32
_NL, _CR, _MINUS, _DOT = 10, 13, 45, 46


@numba.njit(cache=True)
def _next_line_start(buf, pos, end):
    """The index just after the first newline at or after ``pos`` (``end`` if none)."""
    while pos < end:
        if buf[pos] == _NL:
            return pos + 1
        pos += 1
    return end


@numba.njit(cache=True, parallel=True)
def _count_lines(buf, starts, ends):
    """Lines in each chunk [starts[c], ends[c]); a final line without a newline counts too."""
    n = starts.shape[0]
    counts = np.zeros(n, np.int64)
    for c in numba.prange(n):
        k = 0
        for i in range(starts[c], ends[c]):
            if buf[i] == _NL:
                k += 1
        if ends[c] > starts[c] and buf[ends[c] - 1] != _NL:
            k += 1
        counts[c] = k
    return counts


@numba.njit(cache=True)
def _parse_int(buf, i, e):
    neg = False
    if i < e and buf[i] == _MINUS:
        neg = True
        i += 1
    v = 0
    j = i
    while j < e and 48 <= buf[j] <= 57:
        v = v * 10 + (np.int64(buf[j]) - 48)
        j += 1
    return (-v if neg else v), j, j > i


@numba.njit(cache=True)
def _parse_decimal(buf, i, e):
    # digits [. digits], accumulated as an integer and scaled once: exact for MovieLens' x.0 / x.5
    v = 0
    j = i
    while j < e and 48 <= buf[j] <= 57:
        v = v * 10 + (np.int64(buf[j]) - 48)
        j += 1
    ok = j > i
    scale = 1.0
    if ok and j < e and buf[j] == _DOT:
        j += 1
        k = j
        while j < e and 48 <= buf[j] <= 57 and j - k < 15:
            v = v * 10 + (np.int64(buf[j]) - 48)
            scale *= 10.0
            j += 1
        ok = j > k
    return v / scale, j, ok


@numba.njit(cache=True)
def _sep(buf, i, e, sep0, sep1, seplen):
    if i < e and buf[i] == sep0:
        if seplen == 1:
            return i + 1, True
        if i + 1 < e and buf[i + 1] == sep1:
            return i + 2, True
    return i, False


@numba.njit(cache=True)
def _parse_chunk(buf, s, e, off, sep0, sep1, seplen, user, movie, rating, ts):
    """Parse the lines of [s, e) into rows off, off+1, ...; return (status, local line, byte pos)."""
    i = s
    k = off
    line = 0
    while i < e:
        start = i
        if buf[i] == _NL or (buf[i] == _CR and (i + 1 >= e or buf[i + 1] == _NL)):
            return EMPTY_LINE, line, start
        u, i, ok = _parse_int(buf, i, e)
        if not ok:
            return BAD_USER, line, start
        if u < 0 or u > _ID_MAX:
            return BIG_ID, line, start
        i, ok = _sep(buf, i, e, sep0, sep1, seplen)
        if not ok:
            return BAD_USER, line, start
        m, i, ok = _parse_int(buf, i, e)
        if not ok:
            return BAD_MOVIE, line, start
        if m < 0 or m > _ID_MAX:
            return BIG_ID, line, start
        i, ok = _sep(buf, i, e, sep0, sep1, seplen)
        if not ok:
            return BAD_MOVIE, line, start
        r, i, ok = _parse_decimal(buf, i, e)
        if not ok:
            return BAD_RATING, line, start
        i, ok = _sep(buf, i, e, sep0, sep1, seplen)
        if not ok:
            return BAD_RATING, line, start
        t, i, ok = _parse_int(buf, i, e)
        if not ok:
            return BAD_TIMESTAMP, line, start
        if i < e and buf[i] == _CR:
            i += 1
        if i < e:
            if buf[i] != _NL:
                return BAD_END, line, start
            i += 1
        user[k] = u
        movie[k] = m
        rating[k] = r
        ts[k] = t
        k += 1
        line += 1
    return 0, line, e


@numba.njit(cache=True, parallel=True)
def _parse_ratings(buf, starts, ends, offsets, sep0, sep1, seplen, user, movie, rating, ts, status, bad_line, bad_pos):
    """Parse every chunk in parallel; per chunk a status, the failing local line and its byte offset."""
    for c in numba.prange(starts.shape[0]):
        st, ln, pos = _parse_chunk(buf, starts[c], ends[c], offsets[c], sep0, sep1, seplen, user, movie, rating, ts)
        status[c] = st
        bad_line[c] = ln
        bad_pos[c] = pos


@numba.njit(cache=True)
def _first_bad_rating(rating, lo, hi, step):
    """Index of the first rating outside [lo, hi] or off the step grid (NaN included); -1 if none."""
    for i in range(rating.shape[0]):
        r = rating[i]
        if not (r >= lo and r <= hi):
            return i
        q = r / step
        if np.abs(q - np.round(q)) > 1e-4:
            return i
    return -1


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
