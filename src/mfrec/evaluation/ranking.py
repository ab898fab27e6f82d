"""Full-ranking metrics: every movie a user has not already rated is a candidate (no sampled negatives).

For a user u with

- ``E_u``: the movies excluded from u's candidates (the movies u rated in training, and in validation
  when the protocol says so),
- ``T_u``: the held-out target movies (u's test ratings; under a ``user-last`` split, u's latest ones),
- ``R_u``: the top-k candidates by score, best first (ties go to the lower movie index),

the metrics (all means over the users with at least one target) are

- ``hit@k``    = 1 if ``R_u ∩ T_u`` is non-empty, else 0;
- ``ndcg@k``   = DCG / IDCG with DCG = Σ_{rank r (0-based) of R_u, R_u[r] ∈ T_u} 1 / log2(r + 2) and
  IDCG = Σ_{r < min(|T_u|, k)} 1 / log2(r + 2) (binary relevance);
- ``recall@k`` = |R_u ∩ T_u| / |T_u|;
- ``coverage@k`` (catalogue coverage) = |∪_u R_u| / n_movies, over the evaluated users;
- ``genre_consistency@k`` = mean over the evaluated users of the Jaccard similarity
  |G(H_u) ∩ G(R_u)| / |G(H_u) ∪ G(R_u)|, where G(S) is the union of the genres of the movies in S and
  ``H_u`` is u's input history (the excluded movies ``E_u``: what the model was given about u).
  A user for whom both genre sets are empty scores 0.

The top-k selection is the package's one Numba top-k kernel (``mfrec.inference.topk``, parallel over
score rows, each row writing its own output row), the same one behind recommendations; the metrics
are a Numba kernel here. ``tests/naive.py`` holds the NumPy references both are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from mfrec.errors import MfrecError, ModelError
from mfrec.inference.topk import topk_rows

DEFAULT_K = 10


# -- kernels -------------------------------------------------------------------------------------
@numba.njit(cache=True, parallel=True)
def _user_metrics_kernel(topk, rows, tgt_indptr, tgt_indices, hist_indptr, hist_indices,
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


# -- public wrappers -----------------------------------------------------------------------------
def _check_csr(indptr, indices, n_rows: int, n_cols: int, what: str):
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    if len(indptr) != n_rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise MfrecError(f"{what}: a CSR with {n_rows} rows needs a non-decreasing indptr of length {n_rows + 1} ending at {len(indices)}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise MfrecError(f"{what}: movie index {int(indices.max()) if indices.max() >= n_cols else int(indices.min())} is outside 0..{n_cols - 1}")
    return indptr, indices


def top_k(scores: np.ndarray, exclude_indptr: np.ndarray, exclude_indices: np.ndarray, k: int = DEFAULT_K,
          rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k best movies of each score row that are not excluded: (items int32 (n, k), scores float32).

    ``scores`` is (n, n_movies); score row i uses CSR row ``rows[i]`` (default i) of the exclusion
    lists. Ties go to the lower movie index; rows with fewer than k candidates are padded with -1.
    NaN scores raise ``ModelError``.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    if scores.ndim != 2:
        raise MfrecError(f"scores must be a 2-d (users, movies) array, got shape {scores.shape}")
    if k < 1:
        raise MfrecError(f"k must be at least 1, got {k}")
    if np.isnan(scores).any():
        raise ModelError("the model produced NaN scores; it cannot be ranked")
    n, n_movies = scores.shape
    rows = np.arange(n, dtype=np.int64) if rows is None else np.ascontiguousarray(rows, dtype=np.int64)
    if len(rows) != n:
        raise MfrecError(f"rows has {len(rows)} entries for {n} score rows")
    n_rows = len(exclude_indptr) - 1
    indptr, indices = _check_csr(exclude_indptr, exclude_indices, n_rows, n_movies, "exclusions")
    if n and (rows.min() < 0 or rows.max() >= n_rows):
        raise MfrecError(f"rows must index the {n_rows} exclusion rows")
    # the exclusion lists of the asked-for rows, as a CSR of their own, for the one top-k kernel the
    # package has (mfrec.inference.topk: also behind recommendations; same tie rule)
    starts = np.asarray(indptr, np.int64)[rows]
    lengths = np.asarray(indptr, np.int64)[rows + 1] - starts
    sub_indptr = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=sub_indptr[1:])
    gather = np.repeat(starts - sub_indptr[:-1], lengths) + np.arange(sub_indptr[-1], dtype=np.int64)
    sub_indices = np.asarray(indices, np.int32)[gather]
    items, best = topk_rows(scores, k, exclude_indptr=sub_indptr, exclude_indices=sub_indices)
    best[items < 0] = -np.inf  # padding: this module's contract is -1 / -inf
    return items, best


def user_metrics(topk: np.ndarray, rows: np.ndarray, target_indptr, target_indices, history_indptr,
                 history_indices, genre_indptr, genre_indices, n_genres: int) -> np.ndarray:
    """Per-user (hit, ndcg, recall, genre Jaccard, number of targets) for top-k lists ``topk``."""
    topk = np.ascontiguousarray(topk, dtype=np.int32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    n_movies = len(genre_indptr) - 1
    n_rows = len(target_indptr) - 1
    tptr, tidx = _check_csr(target_indptr, target_indices, n_rows, n_movies, "targets")
    hptr, hidx = _check_csr(history_indptr, history_indices, n_rows, n_movies, "history")
    gptr = np.ascontiguousarray(genre_indptr, dtype=np.int64)
    gidx = np.ascontiguousarray(genre_indices, dtype=np.int32)
    if len(gidx) and (gidx.min() < 0 or gidx.max() >= n_genres):
        raise MfrecError(f"genre index outside 0..{n_genres - 1}")
    if topk.ndim != 2 or len(topk) != len(rows):
        raise MfrecError("topk must be (n, k) with one row index per top-k row")
    if len(topk) and topk.max() >= n_movies:
        raise MfrecError(f"top-k movie index {int(topk.max())} is outside 0..{n_movies - 1}")
    out = np.empty((len(topk), 5), np.float64)
    _user_metrics_kernel(topk, rows, tptr, tidx, hptr, hidx, gptr, gidx, int(max(n_genres, 1)), out)
    return out


@dataclass
class RankingResult:
    """Means over evaluated users plus the per-user values."""

    k: int
    users: np.ndarray  # evaluated user indices
    per_user: np.ndarray  # (n, 5): hit, ndcg, recall, genre jaccard, n_targets
    coverage: float

    def as_dict(self) -> dict:
        k = self.k
        pu = self.per_user
        mean = (lambda c: float(pu[:, c].mean())) if len(pu) else (lambda c: float("nan"))
        return {
            f"hit@{k}": mean(0),
            f"ndcg@{k}": mean(1),
            f"recall@{k}": mean(2),
            f"coverage@{k}": self.coverage,
            f"genre_consistency@{k}": mean(3),
            "users_evaluated": int(len(pu)),
        }


def csr_from_pairs(user: np.ndarray, movie: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) grouping movies by user (stable within a user)."""
    user = np.asarray(user, dtype=np.int64)
    order = np.argsort(user, kind="stable")
    counts = np.bincount(user, minlength=n_users)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.asarray(movie, dtype=np.int32)[order]


def evaluate_ranking(score_fn, n_movies: int, users: np.ndarray, exclude: tuple, targets: tuple,
                     movie_genres: tuple, n_genres: int, k: int = DEFAULT_K, batch_size: int = 512,
                     callback=None) -> RankingResult:
    """Rank all candidates for ``users`` in batches with ``score_fn(user_batch) -> (b, n_movies)``.

    ``exclude`` and ``targets`` are (indptr, indices) CSRs over all users; ``movie_genres`` the
    movie x genre CSR (indptr, indices). The history for genre consistency is ``exclude``. Each
    batch is reported to ``callback`` as a ``mfrec.callbacks.Step`` of users.
    """
    from mfrec.callbacks import Step, emit

    users = np.asarray(users, dtype=np.int64)
    per_user = np.empty((len(users), 5), np.float64)
    seen = np.zeros(n_movies, np.bool_)
    for a in range(0, len(users), batch_size):
        b = users[a:a + batch_size]
        scores = np.asarray(score_fn(b), dtype=np.float32)
        if scores.shape != (len(b), n_movies):
            raise ModelError(f"the model scored a batch as shape {scores.shape}, expected {(len(b), n_movies)}")
        items, _ = top_k(scores, exclude[0], exclude[1], k, rows=b)
        per_user[a:a + len(b)] = user_metrics(items, b, targets[0], targets[1], exclude[0], exclude[1],
                                              movie_genres[0], movie_genres[1], n_genres)
        seen[items[items >= 0]] = True
        emit(callback, Step(len(b), len(users), "ranking users", " users"))
    return RankingResult(k, users, per_user, float(seen.sum() / max(n_movies, 1)))


# -- the popularity baseline ---------------------------------------------------------------------
class Popularity:
    """Scores every movie by its number of training ratings (the same list for every user)."""

    kind = "popularity"

    def __init__(self, counts: np.ndarray):
        self.counts = np.asarray(counts, dtype=np.float32)

    @classmethod
    def fit(cls, dataset) -> "Popularity":
        return cls(np.diff(np.asarray(dataset.train_by_movie.indptr)).astype(np.float32))

    def score_users(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts)))
