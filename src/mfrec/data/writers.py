"""Write :class:`RawData` back out in a real MovieLens layout, so the readers can be run at any scale.

``ml-25m``: ``ratings.csv`` (userId,movieId,rating,timestamp; ratings as ``4.0``/``3.5``) and
``movies.csv`` (movieId,title,genres with RFC-4180 quoting, ``|`` genres, ``(no genres listed)``),
UTF-8, as GroupLens ships ml-20m and later. ``ml-1m``: ``ratings.dat``, ``movies.dat`` and (when
the data has users) ``users.dat`` with ``::`` separators in ISO-8859-1; half-star ratings are
written as ``3.5`` the way ml-10m does. Each file is written atomically (:mod:`mfrec.io`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mfrec.data.raw import RawData
from mfrec.errors import DataError
from mfrec.io import atomic_path, write_bytes

RAW_FORMATS = ("ml-25m", "ml-1m")


def write_raw(raw: RawData, out_dir: str | os.PathLike, fmt: str = "ml-25m") -> Path:
    """Write ``raw`` into ``out_dir`` in the ``fmt`` layout; return the folder."""
    if fmt not in RAW_FORMATS:
        raise DataError(f"unknown raw format {fmt!r}; choose one of: {', '.join(RAW_FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "ml-25m":
        _write_csv_layout(raw, out)
    else:
        _write_dat_layout(raw, out)
    return out


def _genre_field(pl):
    return (
        pl.when(pl.col("genres").list.len() > 0)
        .then(pl.col("genres").list.join("|"))
        .otherwise(pl.lit("(no genres listed)"))
    )


def _write_csv_layout(raw: RawData, out: Path) -> None:
    import polars as pl

    ratings = raw.ratings.select("userId", "movieId", "rating", "timestamp")
    with atomic_path(out / "ratings.csv") as p:
        ratings.write_csv(p, float_precision=1)
    movies = raw.movies.select(pl.col("movieId").cast(pl.Int64), "title", _genre_field(pl).alias("genres"))
    with atomic_path(out / "movies.csv") as p:
        movies.write_csv(p, quote_style="necessary")


def _rating_text(pl, step: float):
    r = pl.col("rating").cast(pl.Float64)
    whole = r.round(0).cast(pl.Int64).cast(pl.String)
    if step >= 1:
        return whole
    return pl.when(r == r.round(0)).then(whole).otherwise(r.round(1).cast(pl.String))


def _write_dat_layout(raw: RawData, out: Path) -> None:
    import polars as pl

    lines = raw.ratings.select(
        pl.concat_str(
            [pl.col("userId").cast(pl.String), pl.col("movieId").cast(pl.String), _rating_text(pl, raw.rating_step),
             pl.col("timestamp").cast(pl.String)],
            separator="::",
        ).alias("line")
    )
    with atomic_path(out / "ratings.dat") as p:
        lines.write_csv(p, include_header=False, quote_style="never")

    movies = raw.movies.select("movieId", "title", _genre_field(pl).alias("genres")).rows()
    text = "".join(f"{mid}::{title}::{genres}\n" for mid, title, genres in movies)
    write_bytes(out / "movies.dat", _latin1(text, "movies.dat"))

    users = raw.users
    if users is None:
        return
    need = ("gender", "age", "occupation", "zip")
    missing = [c for c in need if c not in users.columns]
    if missing:
        raise DataError(f"users.dat needs the users' {', '.join(missing)}, which this data does not have")
    text = "".join(f"{u}::{g}::{a}::{o}::{z}\n" for u, g, a, o, z in users.select("userId", *need).rows())
    write_bytes(out / "users.dat", _latin1(text, "users.dat"))


def _latin1(text: str, name: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError as e:
        bad = text[e.start:e.end]
        raise DataError(f"{name}: the character {bad!r} cannot be written in ISO-8859-1 (the ml-1m encoding); use --raw-format ml-25m") from None
