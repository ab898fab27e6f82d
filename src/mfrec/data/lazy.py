"""The Polars engine of ``prepare``: ratings read, deduplicated, id-mapped, filtered and split as Polars expressions.

``scan_ratings`` gives a lazy scan of a ratings file in any of the MovieLens layouts (``u.data``
tabs, ``ratings.dat`` ``::``, ``ratings.csv`` with a header) with the schema given, so nothing is
inferred and nothing is read until the plan runs. ``ordered_ratings`` runs the plan with Polars'
streaming engine: the file is read in batches (never held whole as text), sorted by (user id,
timestamp, movie id, file line) and the older duplicates of each (user, movie) pair dropped.
``index_and_filter`` maps the ids to dense indices and applies the iterated minimum-count filters;
``split_codes`` gives the split of every rating. The result is bit-identical to the Numba engine's
(``mfrec.data.prepare``): the same order, duplicates, indices, splits.

Polars parses numbers more leniently than the Numba parser (``+5``, `` 5``, ``4.``, ``3.5e0``,
quoted fields are accepted). Every failure it reports, and every value that the checks here find
wrong (a missing field, a negative id, a rating off the scale), sends the file through the Numba
parser (``RawData.rescan``), which raises the same one-sentence, line-numbered error as the Numba
engine; where that parser finds nothing wrong (trailing whitespace it skips), its arrays are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.errors import DataError

SCHEMA_NAMES = ("userId", "movieId", "rating", "timestamp")


def _schema():
    import polars as pl

    return {"userId": pl.Int32, "movieId": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64}


def check_window(path: Path, label: str, header: str | None) -> None:
    """The checks the Numba reader makes before parsing, without mapping the file into memory.

    Raises DataError when the file cannot be read, is empty, has the wrong header or only the header.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            first = f.readline()
            f.seek(max(0, size - (1 << 16)))
            tail = f.read()
    except OSError as e:
        raise DataError(f"{label} cannot be read ({e.strerror or e})") from None
    if size == 0 or (size <= (1 << 16) and not tail.strip()):
        raise DataError(f"{label} is empty")
    if header is not None:
        got = first.decode("utf-8", "replace").strip().lstrip("\ufeff")
        if got.split(",")[:4] != header.split(","):
            raise DataError(f"{label} line 1: expected the header {header}, got {got[:80]!r}")
        if size <= (1 << 16) and not tail[len(first):].strip():
            raise DataError(f"{label} has no ratings (only the header)")


def scan_ratings(path: Path, label: str, sep: bytes, header: str | None):
    """A lazy frame userId Int32, movieId Int32, rating Float32, timestamp Int64 over a ratings file.

    ``sep`` is ``b"\\t"`` (u.data), ``b"::"`` (ratings.dat: read as ``:``-separated with an empty
    field between each pair, which must stay empty) or ``b","`` (ratings.csv, with ``header``).
    """
    import polars as pl

    check_window(path, label, header)
    schema = _schema()
    if sep == b"::":
        gaps = {"_gap1": pl.String, "_gap2": pl.String, "_gap3": pl.String}
        names = ["userId", "_gap1", "movieId", "_gap2", "rating", "_gap3", "timestamp"]
        full = {n: (schema.get(n) or gaps[n]) for n in names}
        lf = pl.scan_csv(path, separator=":", has_header=False, schema=full, quote_char=None)
        # a '::' line has nothing between the two colons; anything there is a malformed line
        return lf.select(*SCHEMA_NAMES, _gaps=pl.any_horizontal(pl.col("_gap1", "_gap2", "_gap3").is_not_null()))
    if len(sep) != 1:
        raise DataError(f"the field separator must be one byte or '::', got {sep!r}")
    return pl.scan_csv(path, separator=sep.decode(), has_header=header is not None, schema=schema, quote_char=None)


def ordered_ratings(ratings, scale: tuple[float, float], step: float, rescan: Callable[[], Any] | None,
                    label: str) -> tuple[Any, int, int]:
    """Run the scan: the valid ratings sorted by (userId, timestamp, movieId, line) without older duplicates.

    ``ratings`` is a lazy or eager frame of the four columns. Returns (frame, number of ratings
    read, duplicates dropped). Any parse failure or bad value calls ``rescan()`` (the Numba
    parser), which raises the line-numbered error, or returns the frame the file really holds.
    """
    import polars as pl

    lf = ratings.lazy()
    # the dataset's order; the line breaks ties, so the last of a (user, movie) pair is its latest
    plan = lf.with_row_index("line").sort(["userId", "timestamp", "movieId", "line"])
    try:
        df = plan.collect(engine="streaming")
    except pl.exceptions.PolarsError:
        df = None
    if df is None or _has_bad_values(df, scale, step):
        if rescan is None:
            if df is None:
                raise DataError(f"{label} cannot be parsed")
            _raise_first_bad(df.sort("line"), scale, step, label)
        df = rescan().lazy().with_row_index("line").sort(["userId", "timestamp", "movieId", "line"]).collect(engine="streaming")
    n_read = df.height
    if n_read == 0:
        raise DataError(f"{label}: no ratings")
    pair = pl.col("userId").cast(pl.Int64) * (1 << 32) + pl.col("movieId").cast(pl.Int64)
    if df.select(pair.n_unique()).item() < n_read:  # duplicates: a hash pass, only when there are any
        df = df.filter(pair.is_last_distinct())
    df = df.select(*SCHEMA_NAMES)
    return df, n_read, n_read - df.height


def _bad_value_exprs(scale: tuple[float, float], step: float):
    import polars as pl

    lo, hi = scale
    r = pl.col("rating").cast(pl.Float64)
    q = r / step
    return [
        pl.any_horizontal(pl.col(*SCHEMA_NAMES).is_null()),
        (pl.col("userId") < 0) | (pl.col("movieId") < 0),
        ~((r >= lo) & (r <= hi)) | ((q - q.round()).abs() > 1e-4),
    ]


def _has_bad_values(df, scale: tuple[float, float], step: float) -> bool:
    import polars as pl

    checks = _bad_value_exprs(scale, step)
    if "_gaps" in df.columns:
        checks.append(pl.col("_gaps"))
    return bool(df.select(pl.any_horizontal(checks).fill_null(True).any()).item())


def _raise_first_bad(df, scale: tuple[float, float], step: float, label: str) -> None:
    """For a frame without a file behind it: name the first bad rating (generated data never has one)."""
    import polars as pl

    checks = _bad_value_exprs(scale, step)
    bad = df.filter(pl.any_horizontal(checks).fill_null(True)).row(0, named=True)
    raise DataError(
        f"{label}: rating {bad['rating']} (user {bad['userId']}, movie {bad['movieId']}) is missing, negative "
        f"or outside the scale {scale[0]:g}..{scale[1]:g} in steps of {step:g}"
    )


def sorted_ids(df, column: str) -> np.ndarray:
    """The distinct values of ``column``, ascending, as int64 (the index order of both engines)."""
    import polars as pl

    return df.select(pl.col(column).unique().sort()).to_series().to_numpy().astype(np.int64)


def index_and_filter(df, min_user: int, min_movie: int) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """Map ids to dense indices (``user``, ``movie`` Int32 columns), after the iterated minimum-count filters.

    A rating is dropped once its user has fewer than ``min_user`` ratings left or its movie fewer
    than ``min_movie``, repeated until both limits hold: the same fixed point as
    ``mfrec.data.prepare.min_count_mask``. Returns (frame, user ids, movie ids, ratings dropped).
    """
    import polars as pl

    n_before = df.height
    if min_user > 1 or min_movie > 1:
        while True:
            before = df.height
            if min_movie > 1:
                df = df.filter(pl.len().over("movieId") >= min_movie)
            if min_user > 1:
                df = df.filter(pl.len().over("userId") >= min_user)
            if df.height == before:
                break
    user_ids, movie_ids = sorted_ids(df, "userId"), sorted_ids(df, "movieId")
    # the frame is sorted by userId: its index counts the changes; a movie's is its rank among the
    # ids, looked up in a table when the ids are small (as mfrec.data.prepare.dense_index does)
    if len(movie_ids) and movie_ids[-1] < max(50_000_000, 4 * df.height):
        lookup = np.zeros(int(movie_ids[-1]) + 1, np.int32)
        lookup[movie_ids] = np.arange(len(movie_ids), dtype=np.int32)
        movie = pl.lit(pl.Series(lookup)).gather(pl.col("movieId"))
    else:
        movie = pl.lit(pl.Series(movie_ids.astype(np.int32))).search_sorted(pl.col("movieId")).cast(pl.Int32)
    df = df.with_columns(
        user=(pl.col("userId") != pl.col("userId").shift(1)).fill_null(True).cum_sum().cast(pl.Int32) - 1,
        movie=movie,
    )
    return df, user_ids, movie_ids, n_before - df.height


def user_last_codes(df, holdout: float, val_fraction: float) -> np.ndarray:
    """``mfrec.data.splits.user_last_split`` as Polars expressions over a frame sorted by (user, time)."""
    import polars as pl

    from mfrec.data.splits import TEST, TRAIN, VAL

    # sorted by user: each user's first and last position, by filling from where the user changes
    pos = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = (pl.col("user") != pl.col("user").shift(1)).fill_null(True)
    ends = (pl.col("user") != pl.col("user").shift(-1)).fill_null(True)
    head = pl.when(starts).then(pos).fill_null(strategy="forward")
    tail = pl.when(ends).then(pos).fill_null(strategy="backward")
    per_user = tail - head + 1
    from_end = tail - pos
    if holdout >= 1:
        k = pl.lit(int(holdout), pl.Int64)
    else:
        k = pl.max_horizontal(pl.lit(1, pl.Int64), (per_user.cast(pl.Float64) * holdout).floor().cast(pl.Int64))
    k = pl.min_horizontal(k, per_user.cast(pl.Int64) - 1)
    code = pl.when(from_end < k).then(pl.lit(TEST, pl.Int8))
    if val_fraction > 0:
        kv = pl.min_horizontal(k, per_user.cast(pl.Int64) - 1 - k)
        code = code.when((from_end >= k) & (from_end < k + kv)).then(pl.lit(VAL, pl.Int8))
    code = code.otherwise(pl.lit(TRAIN, pl.Int8))
    return df.select(code.alias("split")).to_series().to_numpy()
