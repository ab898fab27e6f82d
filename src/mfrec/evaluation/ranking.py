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

The top-k selection is the package's one Numba top-k kernel (``mfrec.kernels.topk``, parallel over
score rows, each row writing its own output row), the same one behind recommendations; the metrics
are the Numba kernel ``mfrec.kernels.ranking.user_metrics``. ``tests/naive.py`` holds the NumPy
references both are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfrec.errors import MfrecError, ModelError
from mfrec.kernels.csr import check_csr, csr_rows
from mfrec.kernels.ranking import user_metrics
from mfrec.kernels.topk import topk_rows

DEFAULT_K = 10


def top_k(scores: np.ndarray, exclude_indptr: np.ndarray, exclude_indices: np.ndarray, k: int = DEFAULT_K,
          rows: np.ndarray | None = None, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k best movies of each score row that are not excluded: (items int32 (n, k), scores float32).

    ``scores`` is (n, n_movies); score row i uses CSR row ``rows[i]`` (default i) of the exclusion
    lists; ``allowed`` (bool per movie) keeps only those movies as candidates. Ties go to the lower
    movie index; rows with fewer than k candidates are padded with -1. NaN scores raise ``ModelError``.
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
    indptr, indices = check_csr(exclude_indptr, exclude_indices, n_rows, n_movies, "exclusions")
    if n and (rows.min() < 0 or rows.max() >= n_rows):
        raise MfrecError(f"rows must index the {n_rows} exclusion rows")
    # the exclusion lists of the asked-for rows, as a CSR of their own, for the one top-k kernel the
    # package has (mfrec.kernels.topk: also behind recommendations; same tie rule)
    sub_indptr, positions = csr_rows(indptr, rows)
    items, best = topk_rows(scores, k, allowed=allowed, exclude_indptr=sub_indptr, exclude_indices=indices[positions])
    best[items < 0] = -np.inf  # padding: this module's contract is -1 / -inf
    return items, best


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


def evaluate_ranking(score_fn, n_movies: int, users: np.ndarray, exclude: tuple, targets: tuple,
                     movie_genres: tuple, n_genres: int, k: int = DEFAULT_K, batch_size: int = 512,
                     callback=None, allowed=None):
    """Rank all candidates for ``users`` in batches with ``score_fn(user_batch) -> (b, n_movies)``.

    ``exclude`` and ``targets`` are (indptr, indices) CSRs over all users; ``movie_genres`` the
    movie x genre CSR (indptr, indices). The history for genre consistency is ``exclude``. Each
    batch is reported to ``callback`` as a ``mfrec.callbacks.Step`` of users.

    ``allowed``: None (every movie a candidate) -> one ``RankingResult``; a bool mask per movie -> one
    result over those candidates; a list of masks (None for all) -> a list of results, one per mask,
    from the same scores (each batch is scored once).
    """
    from mfrec.callbacks import Step, emit

    many = isinstance(allowed, list)
    masks = allowed if many else [allowed]
    users = np.asarray(users, dtype=np.int64)
    per_user = [np.empty((len(users), 5), np.float64) for _ in masks]
    seen = [np.zeros(n_movies, np.bool_) for _ in masks]
    for a in range(0, len(users), batch_size):
        b = users[a:a + batch_size]
        scores = np.asarray(score_fn(b), dtype=np.float32)
        if scores.shape != (len(b), n_movies):
            raise ModelError(f"the model scored a batch as shape {scores.shape}, expected {(len(b), n_movies)}")
        for mask, pu, s in zip(masks, per_user, seen):
            items, _ = top_k(scores, exclude[0], exclude[1], k, rows=b, allowed=mask)
            pu[a:a + len(b)] = user_metrics(items, b, targets[0], targets[1], exclude[0], exclude[1],
                                            movie_genres[0], movie_genres[1], n_genres)
            s[items[items >= 0]] = True
        emit(callback, Step(len(b), len(users), "ranking users", " users"))
    results = [RankingResult(k, users, pu, float(s.sum() / max(n_movies, 1))) for pu, s in zip(per_user, seen)]
    return results if many else results[0]


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
