"""From raw ratings to a ``Training_data/<name>/`` folder: clean, filter, map ids, split, write."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.data.raw import NO_GENRES, RawData
from mfrec.data.splits import CANONICAL, SplitSpec, make_split
from mfrec.data.store import DEFAULT_ROOT, write_dataset
from mfrec.errors import DataError


def default_name(dataset: str, split: SplitSpec) -> str:
    return f"{dataset}-{split.method}"


def dedupe(ratings):
    """Keep the latest rating of each (user, movie) pair; return (frame, number dropped)."""
    import polars as pl

    n = ratings.height
    if n == 0:
        return ratings, 0
    # unique(keep="last") after a stable sort by time keeps the latest rating of each pair
    deduped = ratings.sort("timestamp", maintain_order=True).unique(["userId", "movieId"], keep="last", maintain_order=False)
    dropped = n - deduped.height
    return (deduped if dropped else ratings), dropped


def apply_min_counts(ratings, min_user: int, min_movie: int):
    """Drop users and movies with too few ratings, repeating until both limits hold."""
    import polars as pl

    rounds = 0
    while min_user > 1 or min_movie > 1:
        before = ratings.height
        if min_movie > 1:
            ratings = ratings.filter(pl.len().over("movieId") >= min_movie)
        if min_user > 1:
            ratings = ratings.filter(pl.len().over("userId") >= min_user)
        rounds += 1
        if ratings.height == before:
            break
    return ratings, rounds


def check_scale(raw: RawData) -> None:
    import polars as pl

    lo, hi = raw.rating_scale
    r = raw.ratings
    bad = r.with_row_index("row").filter((pl.col("rating") < lo) | (pl.col("rating") > hi) | pl.col("rating").is_nan())
    if bad.height:
        first = bad.row(0, named=True)
        raise DataError(
            f"{raw.ratings_file}: rating {first['rating']} (user {first['userId']}, movie {first['movieId']}) "
            f"is outside the {raw.dataset} scale {lo:g}..{hi:g}"
        )


def prepare(
    raw: RawData,
    split: SplitSpec,
    name: str | None = None,
    root: str | Path = DEFAULT_ROOT,
    min_user_ratings: int = 0,
    min_movie_ratings: int = 0,
    canonical_test: Callable[[str], Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write ``root/name`` from raw data; return its path and the summary that was printed.

    ``canonical_test(split_name)`` returns the test (userId, movieId) pairs of a canonical split
    (ml-100k's u1..ub); it is required for those splits.
    """
    import polars as pl

    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    split.validate()
    name = name or default_name(raw.dataset, split)
    ratings = raw.ratings
    if ratings.height == 0:
        raise DataError(f"{raw.ratings_file}: no ratings")
    check_scale(raw)
    ratings, n_dupes = dedupe(ratings)
    if n_dupes:
        say(f"dropped {n_dupes:,} duplicate (user, movie) ratings, keeping the latest of each")
    n_before = ratings.height
    ratings, _rounds = apply_min_counts(ratings, min_user_ratings, min_movie_ratings)
    if ratings.height == 0:
        raise DataError(
            f"no ratings left after --min-user-ratings {min_user_ratings} and --min-movie-ratings {min_movie_ratings}"
        )

    # id maps: sorted original ids of the users and movies that have ratings
    movies_known = raw.movies["movieId"]
    unknown = ratings.select(pl.col("movieId").unique()).filter(~pl.col("movieId").is_in(movies_known.implode()))
    if unknown.height:
        raise DataError(
            f"{raw.ratings_file}: movie id {unknown['movieId'][0]} is not in the movies file "
            f"({unknown.height} unknown movie id(s))"
        )
    user_ids = ratings["userId"].unique().sort()
    movie_ids = ratings["movieId"].unique().sort()
    if raw.users is not None:
        missing = user_ids.filter(~user_ids.is_in(raw.users["userId"].implode()))
        if len(missing):
            raise DataError(f"{raw.ratings_file}: user id {missing[0]} is not in the users file ({len(missing)} unknown)")
    umap = pl.DataFrame({"userId": user_ids, "user": np.arange(len(user_ids), dtype=np.int32)})
    mmap = pl.DataFrame({"movieId": movie_ids, "movie": np.arange(len(movie_ids), dtype=np.int32)})
    mapped = (
        ratings.lazy()
        .join(umap.lazy(), on="userId", how="left")
        .join(mmap.lazy(), on="movieId", how="left")
        .select("user", "movie", pl.col("rating").cast(pl.Float32), pl.col("timestamp").cast(pl.Int64), "userId", "movieId")
        .sort(["user", "timestamp", "movie"])
        .collect()
    )
    n_users, n_movies = len(user_ids), len(movie_ids)
    say(f"mapped {mapped.height:,} ratings of {n_users:,} users and {n_movies:,} movies")

    user = mapped["user"].to_numpy()
    ts = mapped["timestamp"].to_numpy()
    split_info: dict[str, Any] = {}
    if split.method in CANONICAL:
        if canonical_test is None:
            raise DataError(f"split {split.method!r} is one of ml-100k's canonical files and needs --dataset ml-100k")
        test_pairs = canonical_test(split.method).with_columns(pl.lit(2, pl.Int8).alias("split"))
        codes = (
            mapped.select("userId", "movieId")
            .join(test_pairs, on=["userId", "movieId"], how="left", maintain_order="left")["split"]
            .fill_null(0)
            .to_numpy()
            .astype(np.int8)
        )
        if int((codes == 2).sum()) != test_pairs.height:
            raise DataError(f"{split.method}.test has ratings that are not in u.data (or were filtered out)")
        split_info["test_file"] = f"{split.method}.test"
    else:
        codes, split_info = make_split(split, user, ts, n_users)

    frame = mapped.select("user", "movie", "rating", "timestamp").with_columns(pl.Series("split", codes))
    frame = frame.sort(["split", "user", "timestamp", "movie"])
    say("split and sorted")

    # side tables in index order
    movies = (
        mmap.join(raw.movies, on="movieId", how="left")
        .sort("movie")
        .select(
            "movie",
            "movieId",
            pl.col("title").fill_null(""),
            pl.col("year").cast(pl.Int32),
            pl.col("genres").list.eval(pl.element().filter(~pl.element().is_in(list(NO_GENRES)))),
        )
    )
    genre_list = _genre_vocabulary(movies["genres"])
    gindex = {g: i for i, g in enumerate(genre_list)}
    gl = movies["genres"].to_list()
    genre_indptr = np.zeros(n_movies + 1, np.int64)
    genre_indptr[1:] = np.cumsum([len(g) for g in gl])
    genre_indices = np.array([gindex[g] for gs in gl for g in gs], dtype=np.int32)
    if raw.users is not None:
        users = umap.join(raw.users, on="userId", how="left").sort("user")
    else:
        users = umap
    users = users.select("user", "userId", *[c for c in users.columns if c not in ("user", "userId")])

    lo, hi = raw.rating_scale
    rating_np = frame["rating"].to_numpy()
    manifest = {
        "name": name,
        "dataset": raw.dataset,
        "source": raw.source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rating_scale": [lo, hi],
        "rating_step": raw.rating_step,
        "seed": split.seed,
        "split": {**split.as_dict(), **split_info},
        "filters": {"min_user_ratings": min_user_ratings, "min_movie_ratings": min_movie_ratings},
        "counts": {"duplicates_dropped": int(n_dupes), "filtered_out": int(n_before - ratings.height)},
        "extra": raw.extra,
    }
    out = write_dataset(
        Path(root) / name,
        user=frame["user"].to_numpy(),
        movie=frame["movie"].to_numpy(),
        rating=rating_np,
        timestamp=frame["timestamp"].to_numpy(),
        split=frame["split"].to_numpy(),
        n_users=n_users,
        n_movies=n_movies,
        movies=movies,
        users=users,
        genres=genre_list,
        genre_indptr=genre_indptr,
        genre_indices=genre_indices,
        manifest=manifest,
        presorted=True,
    )
    split_counts = np.bincount(frame["split"].to_numpy(), minlength=3)
    summary = {
        "name": name,
        "path": str(out),
        "dataset": raw.dataset,
        "users": n_users,
        "movies": n_movies,
        "ratings": int(frame.height),
        "density": frame.height / (n_users * n_movies),
        "rating_scale": f"{lo:g}..{hi:g} (step {raw.rating_step:g})",
        "mean_rating": float(rating_np.mean()),
        "split": split.method,
        "train": int(split_counts[0]),
        "val": int(split_counts[1]),
        "test": int(split_counts[2]),
        "duplicates_dropped": int(n_dupes),
        "filtered_out": int(n_before - ratings.height),
        "genres": len(genre_list),
        "seconds": time.perf_counter() - t0,
    }
    return out, summary


def _genre_vocabulary(genres) -> list[str]:
    """Genres in MovieLens order first, then any others in order of appearance."""
    from mfrec.data.raw import ML_GENRES

    present: dict[str, None] = {}
    for gs in genres.to_list():
        for g in gs:
            present.setdefault(g, None)
    known = [g for g in ML_GENRES if g in present]
    return known + [g for g in present if g not in ML_GENRES]
