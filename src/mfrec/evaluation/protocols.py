"""Evaluation protocols shared by every model (ALS, neural, popularity).

- **rating**: RMSE and MAE of ``model.predict(user_idx, movie_idx)`` on the test split.
- **ranking**: on a ``user-last`` split, each user's held-out latest ratings (the test split) are the
  targets; the candidates are all movies the user has not rated in training or validation (what the
  model may know about the user before the held-out period); no sampled negatives. Metrics as in
  ``mfrec.evaluation.ranking``: Hit@k, NDCG@k, Recall@k, catalogue coverage and genre consistency
  (history = the user's training and validation movies).

A model takes part in the ranking protocol through ``score_users(user_indices) -> (n, n_movies)``;
a model with only ``predict`` is scored through ``predict`` on every (user, movie) pair.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from mfrec.errors import DataError, ModelError
from mfrec.evaluation.ranking import DEFAULT_K, evaluate_ranking
from mfrec.kernels.csr import csr_from_pairs

RANKING_SPLIT = "user-last"


def rating_protocol(model, dataset, split: str = "test", batch_size: int = 1 << 18) -> dict[str, Any]:
    """RMSE and MAE of ``model.predict`` on a split (default: test)."""
    s = dataset.split(split)
    if s is None or len(s) == 0:
        raise DataError(f"dataset {dataset.name!r} has no {split} split to evaluate ratings on")
    if getattr(model, "implicit", False):
        raise ModelError(f"an {model.kind} model scores movies for ranking and predicts no ratings, so it has no RMSE; "
                         "use --protocol ranking")
    if not hasattr(model, "predict"):
        raise ModelError(f"a {getattr(model, 'kind', type(model).__name__)} model does not predict ratings; use --protocol ranking")
    users, movies = np.asarray(s.user), np.asarray(s.movie)
    truth = np.asarray(s.rating, dtype=np.float64)
    se = ae = 0.0
    t0 = time.perf_counter()
    for a in range(0, len(truth), batch_size):
        pred = np.asarray(model.predict(users[a:a + batch_size], movies[a:a + batch_size]), dtype=np.float64)
        if not np.all(np.isfinite(pred)):
            raise ModelError("the model predicted NaN or infinite ratings")
        err = pred - truth[a:a + batch_size]
        se += float(err @ err)
        ae += float(np.abs(err).sum())
    n = len(truth)
    return {"protocol": "rating", "split": split, "rmse": (se / n) ** 0.5, "mae": ae / n, "n_ratings": n,
            "seconds": time.perf_counter() - t0}


def require_user_last(dataset) -> None:
    method = dataset.manifest.split.get("method")
    if method != RANKING_SPLIT:
        raise DataError(
            f"the ranking protocol needs a user-last split, but dataset {dataset.name!r} has a {method!r} split; "
            f"prepare one with: python Data_processing.py ... --split user-last --holdout 5"
        )


def history_and_targets(dataset, with_val: bool = True):
    """(history CSR, target CSR) over all users: history = train (+ val) movies, targets = test movies."""
    parts = [dataset.train] + ([dataset.val] if with_val and dataset.val is not None else [])
    hu = np.concatenate([np.asarray(p.user) for p in parts])
    hm = np.concatenate([np.asarray(p.movie) for p in parts])
    history = csr_from_pairs(hu, hm, dataset.n_users)
    test = dataset.test
    if test is None or len(test) == 0:
        raise DataError(f"dataset {dataset.name!r} has no test split to rank against")
    targets = csr_from_pairs(np.asarray(test.user), np.asarray(test.movie), dataset.n_users)
    return history, targets


def scorer_of(model) -> Callable[[np.ndarray], np.ndarray]:
    """``score_users`` when the model has it, else ``predict`` on every (user, movie) pair."""
    if hasattr(model, "score_users"):
        return model.score_users
    if hasattr(model, "predict"):
        def score(users: np.ndarray) -> np.ndarray:
            n_movies = int(getattr(model, "n_movies", 0)) or _n_movies_of(model)
            u = np.repeat(np.asarray(users, np.int32), n_movies)
            m = np.tile(np.arange(n_movies, dtype=np.int32), len(users))
            return np.asarray(model.predict(u, m), np.float32).reshape(len(users), n_movies)
        return score
    raise ModelError(f"a {type(model).__name__} can neither score users nor predict ratings")


def _n_movies_of(model) -> int:
    for attr in ("movie_bias", "movie_factors"):
        a = getattr(model, attr, None)
        if a is not None:
            return len(a)
    raise ModelError(f"cannot tell how many movies a {type(model).__name__} scores")


def ranking_protocol(model, dataset, k: int = DEFAULT_K, batch_size: int = 256, strict: bool = True,
                     callback: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Hit@k, NDCG@k, Recall@k, coverage and genre consistency over every user with test ratings.

    ``strict`` requires a ``user-last`` split (the protocol); without it the same metrics are
    computed on whatever test split there is (used for per-run summaries).
    """
    if strict:
        require_user_last(dataset)
    history, targets = history_and_targets(dataset)
    users = np.flatnonzero(np.diff(targets[0]) > 0)
    if len(users) == 0:
        raise DataError(f"dataset {dataset.name!r}: no user has test ratings")
    g = dataset.movie_genres
    t0 = time.perf_counter()
    res = evaluate_ranking(scorer_of(model), dataset.n_movies, users, history, targets,
                           (np.asarray(g.indptr), np.asarray(g.indices)), len(dataset.genres), k=k,
                           batch_size=batch_size, callback=callback)
    return {"protocol": "ranking", "split": dataset.manifest.split.get("method"), "k": k,
            **res.as_dict(), "candidates": "all movies not rated in train or val", "seconds": time.perf_counter() - t0}
