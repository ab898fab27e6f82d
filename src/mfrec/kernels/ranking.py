"""Per-user ranking metrics of top-k lists: hit, NDCG, recall, genre Jaccard (definitions in
``mfrec.evaluation.ranking``), one parallel Numba kernel over the evaluated users.

``user_metrics`` validates the CSRs and indices and calls ``_user_metrics``; each iteration writes
only its own output row. ``tests/naive.py`` holds the reference it is checked against.
"""

from __future__ import annotations

import numba
import numpy as np

from mfrec.errors import MfrecError
from mfrec.kernels.csr import check_csr


@numba.njit(cache=True, parallel=True)
def _user_metrics(topk, rows, tgt_indptr, tgt_indices, hist_indptr, hist_indices,
                  genre_indptr, genre_indices, n_genres, out):
    """Per evaluated user: out[i] = (hit, ndcg, recall, genre jaccard, n_targets)."""
    n, k = topk.shape
    n_movies = len(genre_indptr) - 1
    for i in numba.prange(n):
        r = rows[i]
        t0, t1 = tgt_indptr[r], tgt_indptr[r + 1]
        n_t = t1 - t0
        is_target = np.zeros(n_movies, np.bool_)
        for p in range(t0, t1):
            is_target[tgt_indices[p]] = True
        hits = 0
        dcg = 0.0
        for j in range(k):
            m = topk[i, j]
            if m >= 0 and is_target[m]:
                hits += 1
                dcg += 1.0 / np.log2(j + 2.0)
        idcg = 0.0
        for j in range(min(n_t, k)):
            idcg += 1.0 / np.log2(j + 2.0)
        hist_g = np.zeros(n_genres, np.bool_)
        rec_g = np.zeros(n_genres, np.bool_)
        for p in range(hist_indptr[r], hist_indptr[r + 1]):
            m = hist_indices[p]
            for q in range(genre_indptr[m], genre_indptr[m + 1]):
                hist_g[genre_indices[q]] = True
        for j in range(k):
            m = topk[i, j]
            if m >= 0:
                for q in range(genre_indptr[m], genre_indptr[m + 1]):
                    rec_g[genre_indices[q]] = True
        inter = 0
        union = 0
        for g in range(n_genres):
            if hist_g[g] and rec_g[g]:
                inter += 1
            if hist_g[g] or rec_g[g]:
                union += 1
        out[i, 0] = 1.0 if hits > 0 else 0.0
        out[i, 1] = dcg / idcg if idcg > 0 else 0.0
        out[i, 2] = hits / n_t if n_t > 0 else 0.0
        out[i, 3] = inter / union if union > 0 else 0.0
        out[i, 4] = n_t


def user_metrics(topk: np.ndarray, rows: np.ndarray, target_indptr, target_indices, history_indptr,
                 history_indices, genre_indptr, genre_indices, n_genres: int) -> np.ndarray:
    """Per-user (hit, ndcg, recall, genre Jaccard, number of targets) for top-k lists ``topk``."""
    topk = np.ascontiguousarray(topk, dtype=np.int32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n_movies = len(genre_indptr) - 1
    n_rows = len(target_indptr) - 1
    tptr, tidx = check_csr(target_indptr, target_indices, n_rows, n_movies, "targets")
    hptr, hidx = check_csr(history_indptr, history_indices, n_rows, n_movies, "history")
    gptr = np.ascontiguousarray(genre_indptr, dtype=np.int64)
    gidx = np.ascontiguousarray(genre_indices, dtype=np.int32)
    if len(gidx) and (gidx.min() < 0 or gidx.max() >= n_genres):
        raise MfrecError(f"genre index outside 0..{n_genres - 1}")
    if topk.ndim != 2 or len(topk) != len(rows):
        raise MfrecError("topk must be (n, k) with one row index per top-k row")
    if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
        raise MfrecError(f"rows must index the {n_rows} target rows")
    if len(topk) and topk.max() >= n_movies:
        raise MfrecError(f"top-k movie index {int(topk.max())} is outside 0..{n_movies - 1}")
    out = np.empty((len(topk), 5), np.float64)
    _user_metrics(topk, rows, tptr, tidx, hptr, hidx, gptr, gidx, int(max(n_genres, 1)), out)
    return out
