"""Raw data as read from a source, before index mapping: what every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# The 18 ML-1M genres, in MovieLens' order. Later datasets add "IMAX" (and "(no genres listed)",
# which mfrec reads as an empty genre list).
ML_GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)
NO_GENRES = {"(no genres listed)", "unknown", ""}


@dataclass
class RawData:
    """Ratings and side tables keyed by the source's original ids.

    ratings: polars frame (or, for the Polars engine, lazy frame) ``userId``, ``movieId`` (any integer type: the file readers give Int32, the
             generator Int64), ``rating`` Float32, ``timestamp`` Int64.
    movies:  ``movieId`` Int64, ``title`` Utf8, ``year`` Int32 (null when absent), ``genres`` List(Utf8).
    users:   ``userId`` Int64 and demographics (``gender``, ``age``, ``occupation``, ``zip``) or None.
    """

    dataset: str
    ratings: Any
    movies: Any
    users: Any | None
    rating_scale: tuple[float, float]
    rating_step: float
    source: str
    ratings_file: str = "ratings"
    # canonical splits shipped with the source (ml-100k: u1..u5, ua, ub): name -> (base, test)
    # ratings frames, read when the source is (a zip's temporary copy does not outlive the read)
    canonical_splits: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # the Polars engine's ratings are a lazy scan (mfrec.data.lazy); ``rescan()`` reads the file again
    # with the Numba parser, which raises the line-numbered error of a malformed file
    rescan: Callable[[], Any] | None = None


def check_side_tables(raw: RawData, user_ids: Any, movie_ids: Any) -> None:
    """Every movie (and user, where the source has a users file) must be in the side tables (sorted id arrays)."""
    import numpy as np

    from mfrec.errors import DataError

    known_movies = raw.movies["movieId"].to_numpy()
    unknown = movie_ids[~np.isin(movie_ids, known_movies)]
    if len(unknown):
        raise DataError(
            f"{raw.ratings_file}: movie id {unknown[0]} is not in the movies file ({len(unknown)} unknown movie id(s))"
        )
    if raw.users is not None:
        missing = user_ids[~np.isin(user_ids, raw.users["userId"].to_numpy())]
        if len(missing):
            raise DataError(f"{raw.ratings_file}: user id {missing[0]} is not in the users file ({len(missing)} unknown)")
