"""From raw ratings to a ``Training_data/<name>/`` folder: clean, filter, map ids, split, write."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.data.raw import NO_GENRES, RawData, check_side_tables
from mfrec.data.splits import CANONICAL, SplitSpec, make_split, pair_keys
from mfrec.data.store import DEFAULT_ROOT, write_dataset, write_dataset_with
from mfrec.errors import DataError


ENGINES = ("numba", "polars", "stream")


def default_name(dataset: str, split: SplitSpec) -> str:
    return f"{dataset}-{split.method}"


def dense_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique ids, int32 index of every entry into them), by a lookup table when ids are small."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    lo, hi = int(ids.min()), int(ids.max())
    if lo >= 0 and hi < max(50_000_000, 4 * len(ids)):
        present = np.zeros(hi + 1, np.bool_)
        present[ids] = True
        lookup = np.cumsum(present, dtype=np.int64)
        lookup -= 1
        return np.flatnonzero(present).astype(np.int64), lookup.astype(np.int32)[ids]
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq.astype(np.int64), inverse.astype(np.int32)


def min_count_mask(user: np.ndarray, movie: np.ndarray, n_users: int, n_movies: int, min_user: int, min_movie: int) -> tuple[np.ndarray | None, int]:
    """Which ratings survive dropping users and movies with too few, repeated until both limits hold.

    Returns the mask (None when nothing is dropped) and the number of rounds.
    """
    if min_user <= 1 and min_movie <= 1:
        return None, 0
    keep = np.ones(len(user), np.bool_)
    rounds = 0
    while True:
        rounds += 1
        before = int(keep.sum())
        if min_movie > 1:
            counts = np.bincount(movie[keep], minlength=n_movies)
            keep &= counts[movie] >= min_movie
        if min_user > 1:
            counts = np.bincount(user[keep], minlength=n_users)
            keep &= counts[user] >= min_user
        if int(keep.sum()) == before:
            break
    return (None if keep.all() else keep), rounds


def check_scale(raw: RawData) -> None:
    from mfrec.kernels.parse import first_bad_rating

    lo, hi = raw.rating_scale
    bad = first_bad_rating(raw.ratings["rating"].to_numpy(), lo, hi, raw.rating_step)
    if bad >= 0:
        first = raw.ratings.row(bad, named=True)
        raise DataError(
            f"{raw.ratings_file}: rating {first['rating']:g} (user {first['userId']}, movie {first['movieId']}) "
            f"is outside the {raw.dataset} scale {lo:g}..{hi:g} in steps of {raw.rating_step:g}"
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
    engine: str = "numba",
    memory_budget: int | str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Write ``root/name`` from raw data; return its path and the summary that was printed.

    ``canonical_test(split_name)`` returns the test (userId, movieId) pairs of a canonical split
    (ml-100k's u1..ub); it is required for those splits. ``engine`` is "numba" (counting sorts over
    NumPy arrays) or "polars" (:mod:`mfrec.data.lazy`: Polars expressions run by its streaming
    engine) or "stream" (:mod:`mfrec.data.stream`: in passes over partitions of users, in memory
    bounded by ``memory_budget``, bytes or a size like "512MB"; default half the available memory);
    ratings given as a lazy frame take the Polars engine unless "stream" is asked for. All three
    write the same bytes.
    """
    import polars as pl

    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    split.validate()
    name = name or default_name(raw.dataset, split)
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if engine == "stream":
        from mfrec.data.stream import Scratch, default_budget, fmt_bytes, order_stream, parse_size

        budget = default_budget() if memory_budget is None else parse_size(memory_budget)
        with Scratch(Path(root), name) as scratch:
            st = order_stream(raw, split, min_user_ratings, min_movie_ratings, canonical_test, say, scratch, budget)
            out, summary = _write(raw, split, name, root, min_user_ratings, min_movie_ratings, say, t0,
                                  st.user_ids, st.movie_ids, st.split_counts, st.split_info, st.n_dupes, st.n_before,
                                  st.mean_rating, st.fill, None)
        summary["engine"] = f"stream ({st.partitions} partition(s), {fmt_bytes(budget)} budget)"
        return out, summary
    if engine == "polars" or isinstance(raw.ratings, pl.LazyFrame):
        ordered = _order_polars(raw, split, min_user_ratings, min_movie_ratings, canonical_test, say)
    else:
        ordered = _order_numba(raw, split, min_user_ratings, min_movie_ratings, canonical_test, say)
    (user_ids, movie_ids, user_out, movie_out, ts_out, rating_out, split_counts, split_info, n_dupes, n_before) = ordered
    say("split and sorted")
    out, summary = _write(raw, split, name, root, min_user_ratings, min_movie_ratings, say, t0, user_ids, movie_ids,
                          split_counts, split_info, n_dupes, n_before, float(rating_out.mean()), None,
                          (user_out, movie_out, ts_out, rating_out))
    summary["engine"] = "polars" if engine == "polars" or isinstance(raw.ratings, pl.LazyFrame) else "numba"
    return out, summary


def _write(raw: RawData, split: SplitSpec, name: str, root, min_user_ratings: int, min_movie_ratings: int, say, t0: float,
           user_ids, movie_ids, split_counts, split_info, n_dupes: int, n_before: int, mean_rating: float,
           fill, arrays) -> tuple[Path, dict[str, Any]]:
    """The side tables and the manifest, then the dataset folder: from ``arrays`` (user, movie,
    timestamp, rating in the dataset's order) or, for the stream engine, by ``fill`` (see
    ``mfrec.data.store.write_dataset_with``)."""
    import polars as pl

    n_users, n_movies = len(user_ids), len(movie_ids)
    n_ratings = int(np.sum(split_counts))

    # side tables in index order
    mmap = pl.DataFrame({"movieId": movie_ids, "movie": np.arange(n_movies, dtype=np.int32)})
    umap = pl.DataFrame({"userId": user_ids, "user": np.arange(n_users, dtype=np.int32)})
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
        "counts": {"duplicates_dropped": int(n_dupes), "filtered_out": int(n_before - n_ratings)},
        "extra": raw.extra,
    }
    tables = dict(n_users=n_users, n_movies=n_movies, movies=movies, users=users, genres=genre_list,
                  genre_indptr=genre_indptr, genre_indices=genre_indices, manifest=manifest)
    if arrays is None:
        out = write_dataset_with(Path(root) / name, fill, **tables)
    else:
        user_out, movie_out, ts_out, rating_out = arrays
        codes = np.repeat(np.arange(3, dtype=np.int8), split_counts)
        out = write_dataset(Path(root) / name, user=user_out, movie=movie_out, rating=rating_out, timestamp=ts_out,
                            split=codes, presorted=True, **tables)
    summary = {
        "name": name,
        "path": str(out),
        "dataset": raw.dataset,
        "users": n_users,
        "movies": n_movies,
        "ratings": n_ratings,
        "density": n_ratings / (n_users * n_movies),
        "rating_scale": f"{lo:g}..{hi:g} (step {raw.rating_step:g})",
        "mean_rating": float(mean_rating),
        "split": split.method,
        "train": int(split_counts[0]),
        "val": int(split_counts[1]),
        "test": int(split_counts[2]),
        "duplicates_dropped": int(n_dupes),
        "filtered_out": int(n_before - n_ratings),
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


def _order_numba(raw: RawData, split: SplitSpec, min_user_ratings: int, min_movie_ratings: int,
                 canonical_test: Callable[[str], Any] | None, say: Callable[[str], None]) -> tuple:
    """The Numba engine: counting sorts over the parsed arrays.

    Returns (user ids, movie ids, user, movie, timestamp, rating in (split, user, time, movie)
    order, counts per split, split facts, duplicates dropped, ratings before the filters).
    """
    from mfrec.kernels.sort import gather, group_by_user, partition

    ratings = raw.ratings
    if ratings.height == 0:
        raise DataError(f"{raw.ratings_file}: no ratings")
    check_scale(raw)
    uid_raw = ratings["userId"].to_numpy()
    mid_raw = ratings["movieId"].to_numpy()
    ts_raw = np.ascontiguousarray(ratings["timestamp"].to_numpy(), dtype=np.int64)
    rating_raw = np.ascontiguousarray(ratings["rating"].to_numpy(), dtype=np.float32)

    # index the ids present, then group by user in time order, dropping older duplicates
    user_ids, user0 = dense_index(uid_raw)
    movie_ids, movie0 = dense_index(mid_raw)
    order, n_dupes = group_by_user(user0, movie0, ts_raw, len(user_ids), len(movie_ids))
    if n_dupes:
        say(f"dropped {n_dupes:,} duplicate (user, movie) ratings, keeping the latest of each")
    n_before = len(order)
    keep = None
    if min_user_ratings > 1 or min_movie_ratings > 1:
        keep, _rounds = min_count_mask(user0[order], movie0[order], len(user_ids), len(movie_ids), min_user_ratings, min_movie_ratings)
    if keep is not None:
        order = order[keep]
        if len(order) == 0:
            raise DataError(
                f"no ratings left after --min-user-ratings {min_user_ratings} and --min-movie-ratings {min_movie_ratings}"
            )
        # re-index so that only the users and movies that are left get indices (per raw row again)
        u_left, u_new = dense_index(user0[order])
        m_left, m_new = dense_index(movie0[order])
        user_ids, movie_ids = user_ids[u_left], movie_ids[m_left]
        user0, movie0 = np.zeros(len(uid_raw), np.int32), np.zeros(len(uid_raw), np.int32)
        user0[order], movie0[order] = u_new, m_new
        del u_new, m_new
    order_rows = order  # rows of the raw arrays, in (user, time, movie) order

    check_side_tables(raw, user_ids, movie_ids)
    n_users, n_movies = len(user_ids), len(movie_ids)
    say(f"mapped {len(order_rows):,} ratings of {n_users:,} users and {n_movies:,} movies")

    # split codes for the ratings in (user, time, movie) order
    n = len(order_rows)
    split_info: dict[str, Any] = {}
    if split.method in CANONICAL:
        if canonical_test is None:
            raise DataError(f"split {split.method!r} is one of ml-100k's canonical files and needs --dataset ml-100k")
        keys = gather(user0, order_rows).astype(np.int64) * n_movies + gather(movie0, order_rows)
        codes, split_info = canonical_codes(raw, split, canonical_test(split.method), user_ids, movie_ids, keys)
    elif split.method == "random":
        codes, split_info = make_split(split, np.zeros(0, np.int32), np.zeros(0, np.int64), n_users, n=n)
    else:
        user_sorted = gather(user0, order_rows)
        ts_sorted = gather(ts_raw, order_rows)
        codes, split_info = make_split(split, user_sorted, ts_sorted, n_users)
        del user_sorted, ts_sorted

    # final order: by split (train, val, test), each still by (user, time, movie)
    user_out, movie_out, ts_out, rating_out, split_counts = partition(codes, order_rows, user0, movie0, ts_raw, rating_raw)
    return user_ids, movie_ids, user_out, movie_out, ts_out, rating_out, split_counts, split_info, n_dupes, n_before


def canonical_codes(raw: RawData, split: SplitSpec, pairs, user_ids: np.ndarray, movie_ids: np.ndarray,
                    keys: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Split codes of a canonical ml-100k split: test where (user, movie) is in ``pairs``, the .base rest train.

    ``keys`` is user * n_movies + movie of every rating in (user, time, movie) order; a validation
    share of the .base ratings is drawn at random with the seed, in that order.
    """
    test_keys, all_known = pair_keys(pairs, user_ids, movie_ids)
    codes = np.where(np.isin(keys, test_keys), np.int8(2), np.int8(0)).astype(np.int8)
    if not all_known or int((codes == 2).sum()) != pairs.height:
        raise DataError(f"{split.method}.test has ratings that are not in {raw.ratings_file} (or were filtered out)")
    split_info: dict[str, Any] = {"test_file": f"{split.method}.test"}
    if split.val_fraction > 0:
        base = np.flatnonzero(codes == 0)
        val = np.random.default_rng(split.seed).random(len(base)) < split.val_fraction
        codes[base[val]] = 1
        split_info["val_fraction"] = split.val_fraction
    return codes, split_info


def _order_polars(raw: RawData, split: SplitSpec, min_user_ratings: int, min_movie_ratings: int,
                  canonical_test: Callable[[str], Any] | None, say: Callable[[str], None]) -> tuple:
    """The Polars engine (:mod:`mfrec.data.lazy`); returns what ``_order_numba`` returns, bit for bit.

    The random split's and the canonical validation share's random draws, and the time split's
    quantile, stay NumPy's: the same generator stream and the same interpolation give the same codes.
    """
    import polars as pl

    from mfrec.data.lazy import index_and_filter, ordered_ratings, user_last_codes

    if split.method in CANONICAL and canonical_test is None:
        raise DataError(f"split {split.method!r} is one of ml-100k's canonical files and needs --dataset ml-100k")
    if not isinstance(raw.ratings, pl.LazyFrame):  # frames in memory get the Numba engine's checks
        if raw.ratings.height == 0:
            raise DataError(f"{raw.ratings_file}: no ratings")
        check_scale(raw)
    df, n_read, n_dupes = ordered_ratings(raw.ratings, raw.rating_scale, raw.rating_step, raw.rescan, raw.ratings_file)
    say(f"read {n_read:,} ratings")
    if n_dupes:
        say(f"dropped {n_dupes:,} duplicate (user, movie) ratings, keeping the latest of each")
    n_before = df.height
    df, user_ids, movie_ids, _dropped = index_and_filter(df, min_user_ratings, min_movie_ratings)
    if df.height == 0:
        raise DataError(
            f"no ratings left after --min-user-ratings {min_user_ratings} and --min-movie-ratings {min_movie_ratings}"
        )
    df = df.select("user", "movie", "timestamp", "rating")
    check_side_tables(raw, user_ids, movie_ids)
    n_users, n_movies = len(user_ids), len(movie_ids)
    say(f"mapped {df.height:,} ratings of {n_users:,} users and {n_movies:,} movies")

    split_info: dict[str, Any] = {}
    if split.method in CANONICAL:
        keys = df.select(pl.col("user").cast(pl.Int64) * n_movies + pl.col("movie")).to_series().to_numpy()
        codes, split_info = canonical_codes(raw, split, canonical_test(split.method), user_ids, movie_ids, keys)
    elif split.method == "user-last":
        split.validate()
        codes = user_last_codes(df, split.holdout, split.val_fraction)
    elif split.method == "time":
        codes, split_info = make_split(split, np.zeros(0, np.int32), df["timestamp"].to_numpy(), n_users)
    else:  # random (NumPy's stream) and none
        codes, split_info = make_split(split, np.zeros(df.height, np.int32), np.zeros(0, np.int64), n_users, n=df.height)
    df = df.with_columns(split=pl.Series(codes, dtype=pl.Int8))
    parts = [df.filter(pl.col("split") == c) for c in range(3)]
    counts = np.array([p.height for p in parts], np.int64)
    df = pl.concat(parts, rechunk=True)
    del parts
    cols = [np.ascontiguousarray(df[c].to_numpy()) for c in ("user", "movie", "timestamp", "rating")]
    return (user_ids, movie_ids, *cols, counts, split_info, n_dupes, n_before)
