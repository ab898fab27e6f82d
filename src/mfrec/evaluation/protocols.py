"""Evaluation protocols shared by every model (ALS, neural, popularity).

- **rating**: RMSE and MAE of ``model.predict(user_idx, movie_idx)`` on the test split.
- **ranking**: on a ``user-last`` split, each user's held-out latest ratings (the test split) are the
  targets; the candidates are all movies the user has not rated in training or validation (what the
  model may know about the user before the held-out period); no sampled negatives. Metrics as in
  ``mfrec.evaluation.ranking``: Hit@k, NDCG@k, Recall@k, catalogue coverage and genre consistency
  (history = the user's training and validation movies).

A model takes part in the ranking protocol through ``score_users(user_indices) -> (n, n_movies)``;
a model with only ``predict`` is scored through ``predict`` on every (user, movie) pair; a model that
scores from a history (``score_rows``: EASE) gets each user's train + val ratings, as the sequential
model gets its train + val sequence.
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


def history_and_targets(dataset, with_val: bool = True, target_split: str = "test"):
    """(history CSR, target CSR) over all users: history = train (+ val) movies, targets = test movies.

    ``target_split="val"`` (tuning): history = train movies only, targets = validation movies."""
    if target_split not in ("test", "val"):
        raise DataError(f"the ranking targets are the test or the val split, not {target_split!r}")
    with_val = with_val and target_split == "test"
    parts = [dataset.train] + ([dataset.val] if with_val and dataset.val is not None else [])
    hu = np.concatenate([np.asarray(p.user) for p in parts])
    hm = np.concatenate([np.asarray(p.movie) for p in parts])
    history = csr_from_pairs(hu, hm, dataset.n_users)
    target = dataset.split(target_split)
    if target is None or len(target) == 0:
        raise DataError(f"dataset {dataset.name!r} has no {target_split} split to rank against")
    targets = csr_from_pairs(np.asarray(target.user), np.asarray(target.movie), dataset.n_users)
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


def history_scorer(model, dataset, target_split: str = "test") -> Callable[[np.ndarray], np.ndarray] | None:
    """For a model that scores a user from their history (``score_rows``: EASE), the scorer over each
    user's train + val ratings (train only when ranking the val split), as the sequential model is
    given its train + val sequence: everything the user rated before the held-out period. None for
    a model that keeps its own user vectors."""
    if not hasattr(model, "score_rows"):
        return None
    parts = [dataset.train] + ([dataset.val] if target_split == "test" and dataset.val is not None else [])
    u = np.concatenate([np.asarray(p.user) for p in parts])
    t = np.concatenate([np.asarray(p.timestamp) for p in parts])
    order = np.lexsort((t, u))  # by user, each user's movies oldest first (the recency weighting reads the order)
    movies = np.concatenate([np.asarray(p.movie) for p in parts])[order]
    values = np.concatenate([np.asarray(p.rating, np.float32) for p in parts])[order]
    indptr = np.zeros(dataset.n_users + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=dataset.n_users), out=indptr[1:])

    def score(users: np.ndarray) -> np.ndarray:
        return model.score_rows(indptr, movies, values, users)

    return score


def _n_movies_of(model) -> int:
    for attr in ("movie_bias", "movie_factors"):
        a = getattr(model, attr, None)
        if a is not None:
            return len(a)
    raise ModelError(f"cannot tell how many movies a {type(model).__name__} scores")


def min_ratings_key(key: str, min_ratings: int) -> str:
    """The name a metric gets when the candidates are filtered: ``hit@10`` -> ``hit@10_min_ratings_10``."""
    return f"{key}_min_ratings_{int(min_ratings)}"


def candidate_mask(dataset, min_ratings: int) -> np.ndarray | None:
    """The movies with at least ``min_ratings`` training ratings (the recommendations' ``--min-ratings``
    filter), or None for 0 (every movie a candidate)."""
    if isinstance(min_ratings, bool) or not isinstance(min_ratings, (int, np.integer)) or min_ratings < 0:
        raise DataError(f"--min-ratings must be a whole number >= 0, got {min_ratings!r}")
    if min_ratings == 0:
        return None
    return np.diff(np.asarray(dataset.train_by_movie.indptr)) >= int(min_ratings)


def ranking_protocol(model, dataset, k: int = DEFAULT_K, batch_size: int = 256, strict: bool = True,
                     callback: Callable[[Any], None] | None = None, min_ratings: int = 0,
                     target_split: str = "test") -> dict[str, Any]:
    """Hit@k, NDCG@k, Recall@k, coverage and genre consistency over every user with test ratings.

    ``strict`` requires a ``user-last`` split (the protocol); without it the same metrics are
    computed on whatever test split there is (used for per-run summaries).

    ``min_ratings`` > 0 also ranks with the recommendations' candidate filter (only movies with at
    least that many training ratings can be listed, ``mfrec.inference.defaults``) and adds those
    metrics under ``min_ratings_key`` names (``hit@10_min_ratings_10``, ...): the targets stay the
    same, so a held-out movie the filter removes counts as a miss. ``target_split="val"`` ranks the
    validation split from the training history (for tuning; the test split is left alone).
    """
    if strict:
        require_user_last(dataset)
    history, targets = history_and_targets(dataset, target_split=target_split)
    users = np.flatnonzero(np.diff(targets[0]) > 0)
    if len(users) == 0:
        raise DataError(f"dataset {dataset.name!r}: no user has {target_split} ratings")
    mask = candidate_mask(dataset, min_ratings)
    g = dataset.movie_genres
    t0 = time.perf_counter()
    masks = [None] + ([mask] if mask is not None else [])
    score_fn = history_scorer(model, dataset, target_split) or scorer_of(model)
    results = evaluate_ranking(score_fn, dataset.n_movies, users, history, targets,
                               (np.asarray(g.indptr), np.asarray(g.indices)), len(dataset.genres), k=k,
                               batch_size=batch_size, callback=callback, allowed=masks)
    out = {"protocol": "ranking", "split": dataset.manifest.split.get("method"), "k": k, **results[0].as_dict(),
           "candidates": ("all movies not rated in train or val" if target_split == "test"
                          else "all movies not rated in train (targets: the val split)")}
    if target_split != "test":
        out["targets"] = target_split
    if mask is not None:
        out.update({min_ratings_key(key, min_ratings): v for key, v in results[1].as_dict().items()
                    if "@" in key})
        out["min_ratings"] = int(min_ratings)
        out["min_ratings_candidates"] = (f"as above, and only the {int(mask.sum()):,} of {dataset.n_movies:,} movies "
                                         f"with at least {int(min_ratings)} training ratings")
    out["seconds"] = time.perf_counter() - t0
    return out
