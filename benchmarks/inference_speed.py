"""Inference speed on an ML-25M-shape model (k = 64): fold-in + score + top 10, and batch top 10.

    .venv/bin/python benchmarks/inference_speed.py                 # ML-25M shape, all users
    .venv/bin/python benchmarks/inference_speed.py --batch-users 20000 --k 64

The factors are random with ML-25M's shape (162,541 users x 59,047 movies, k = 64, 20 genres with
genre factors, as mf-genre has): training an ML-25M model on this machine takes far longer than the
benchmark, and speed does not depend on the values. What is timed is the code Inference.py runs:

1. per made-up user (warm process, after one JIT warm-up call): ``FactorModel.fold_in`` (the model's ALS
   user half-step, ``mfrec.kernels.als.solve_rows``, on a 20-rating one-row CSR) + scoring every
   movie (``FactorModel.score_movies``) + the Numba top-k with the 20 rated movies excluded — the same
   calls ``Recommender.recommend`` makes before it builds the output table; median and p90 ms;
2. batch: top 10 for every user with ``recommend_all`` (BLAS scores a block of users, the Numba
   kernel selects per row in parallel), excluding ~150 "seen" movies per user (ML-25M's mean);
   users per second.

Writes ``benchmarks/results/inference_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "inference_speed.json"
ML25M = (162_541, 59_047)


def build_model(n_users: int, n_movies: int, k: int, n_genres: int, seed: int):
    from mfrec.models.factor import FactorModel

    rng = np.random.default_rng(seed)
    per_movie = rng.integers(1, 4, n_movies)
    genre_indptr = np.r_[0, np.cumsum(per_movie)].astype(np.int64)
    genre_indices = np.concatenate([rng.choice(n_genres, c, replace=False) for c in per_movie]).astype(np.int32)
    scale = 0.3 / np.sqrt(k)
    arrays = {
        "mu": np.float32(3.53),
        "user_bias": rng.normal(0, 0.3, n_users).astype(np.float32),
        "movie_bias": rng.normal(0, 0.4, n_movies).astype(np.float32),
        "user_factors": rng.normal(0, scale, (n_users, k)).astype(np.float32),
        "movie_factors": rng.normal(0, scale, (n_movies, k)).astype(np.float32),
        "genre_factors": rng.normal(0, scale, (n_genres, k)).astype(np.float32),
        "genre_indptr": genre_indptr,
        "genre_indices": genre_indices,
        "user_ids": np.arange(1, n_users + 1, dtype=np.int64),
        "movie_ids": np.arange(1, n_movies + 1, dtype=np.int64),
    }
    return FactorModel(**arrays, config={"model": "mf-genre", "factors": k, "reg": 0.4, "reg_bias": 1.0,
                                         "weighted_reg": True, "reg_exponent": 0.75})


def one_user(model, movies: np.ndarray, ratings: np.ndarray, n: int = 10):
    """What Recommender.recommend computes before building its table."""
    from mfrec.kernels.topk import topk_rows

    bias, vec = model.fold_in(np.array([0, len(movies)], np.int64), movies, ratings)
    scores = model.score_movies(float(bias[0]), vec[0])
    excl = np.unique(movies)
    return topk_rows(scores[None, :], n, exclude_indptr=np.array([0, len(excl)], np.int64), exclude_indices=excl)


def full_path(run: str, n_ratings: int, repeats: int, rng) -> dict:
    """Median ms of ``Recommender.recommend`` (fold-in, scores, top 10, polars table, why column)."""
    import mfrec
    from mfrec.inference import recommender

    exp = mfrec.load_experiment(run)
    rec = recommender(exp)
    n = rec.model.n_movies
    out = {}
    for explain in (False, True):
        times = []
        for i in range(repeats // 3 + 1):
            ratings = [(int(m), float(r)) for m, r in zip(rng.choice(n, n_ratings, replace=False), rng.integers(1, 6, n_ratings))]
            t = time.perf_counter()
            rec.recommend(ratings, n=10, explain=explain)
            if i:  # the first call loads tables and titles
                times.append((time.perf_counter() - t) * 1000)
        out["median_ms_explain" if explain else "median_ms"] = float(np.median(times))
    return {"run": exp.name, "n_users": rec.model.n_users, "n_movies": n, "k": rec.model.k, **out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=ML25M[0])
    ap.add_argument("--movies", type=int, default=ML25M[1])
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--ratings-per-user", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=300, help="made-up users timed one by one")
    ap.add_argument("--batch-users", type=int, default=0, help="users in the batch run (0 = all)")
    ap.add_argument("--seen-per-user", type=int, default=150)
    ap.add_argument("--block", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--run", default=None, help="also time the whole Recommender.recommend (output table "
                    "included) on this trained run, e.g. ml-100k-u1-mf-genre")
    args = ap.parse_args()

    import numba

    from mfrec.inference.topk import recommend_all

    t0 = time.perf_counter()
    model = build_model(args.users, args.movies, args.k, 20, args.seed)
    build_s = time.perf_counter() - t0
    rng = np.random.default_rng(args.seed + 1)

    def profile():
        m = rng.choice(args.movies, args.ratings_per_user, replace=False).astype(np.int32)
        r = rng.integers(1, 6, args.ratings_per_user).astype(np.float32)
        return m, r

    t0 = time.perf_counter()
    one_user(model, *profile())  # JIT warm-up (or cache load)
    warmup_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        m, r = profile()
        t = time.perf_counter()
        one_user(model, m, r)
        times.append((time.perf_counter() - t) * 1000)
    times = np.array(times)

    n_batch = args.users if args.batch_users <= 0 else min(args.batch_users, args.users)
    seen_counts = rng.poisson(args.seen_per_user, n_batch).clip(1, args.movies // 2)
    indptr = np.r_[0, np.cumsum(seen_counts)].astype(np.int64)
    indices = rng.integers(0, args.movies, int(indptr[-1]), dtype=np.int32)
    users = np.arange(n_batch)
    recommend_all(model.user_factors, model.effective_movie_factors, model.user_bias, model.movie_bias, model.mu, 10,
                  exclude_indptr=indptr, exclude_indices=indices, users=users[: args.block], block=args.block)  # warm-up
    t0 = time.perf_counter()
    top_i, _ = recommend_all(model.user_factors, model.effective_movie_factors, model.user_bias, model.movie_bias, model.mu, 10,
                             exclude_indptr=indptr, exclude_indices=indices, users=users, block=args.block)
    batch_s = time.perf_counter() - t0
    assert (top_i >= 0).all()

    result = {
        "benchmark": "inference_speed",
        "model": "random factors with ML-25M shape (mf-genre: 20 genres with genre factors); not trained",
        "n_users": args.users, "n_movies": args.movies, "k": args.k,
        "fold_in": {
            "ratings_per_user": args.ratings_per_user, "repeats": args.repeats,
            "what": "FactorModel.fold_in (ALS user half-step, Cholesky) + predict every movie + Numba top-10",
            "median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "min_ms": float(times.min()), "first_call_s": warmup_s, "target_median_ms": 5.0,
        },
        "batch_top10": {
            "users": int(n_batch), "seen_excluded_per_user_mean": float(seen_counts.mean()), "block": args.block,
            "seconds": batch_s, "users_per_second": n_batch / batch_s,
        },
        "model_build_seconds": build_s,
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(), "python": platform.python_version(),
                    "numpy": np.__version__, "numba": numba.__version__, "platform": platform.platform()},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if args.run:
        result["full_recommend_on_run"] = full_path(args.run, args.ratings_per_user, args.repeats, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
