"""Numbers that describe a prepared dataset: pure functions from a ``Dataset`` to arrays and frames.

Everything here reads all ratings (train, validation and test together) unless the name says
train. Nothing plots, prints or writes; ``mfrec.plots.dataset`` draws these numbers and
``mfrec.cli.analyze`` prints them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
# MovieLens-1M's age groups (users.dat codes) and their labels; raw ages are binned into the same groups.
AGE_CODES = (1, 18, 25, 35, 45, 50, 56)
AGE_LABELS = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_DAY = 86_400


def rating_distribution(ds) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rating values (ascending) and how many ratings have each."""
    values, counts = np.unique(np.asarray(ds.ratings.rating), return_counts=True)
    return values.astype(np.float64), counts.astype(np.int64)


def ratings_per_user(ds) -> np.ndarray:
    """Number of ratings (all splits) of every user, indexed by user index."""
    return np.bincount(np.asarray(ds.ratings.user), minlength=ds.n_users).astype(np.int64)


def ratings_per_movie(ds) -> np.ndarray:
    """Number of ratings (all splits) of every movie, indexed by movie index."""
    return np.bincount(np.asarray(ds.ratings.movie), minlength=ds.n_movies).astype(np.int64)


def quantiles(counts: np.ndarray, qs: tuple[float, ...] = QUANTILES) -> dict[str, float]:
    """``{"min": .., "p5": .., "p25": .., "median": .., "p75": .., "p95": .., "max": .., "mean": ..}``."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.size == 0:
        return {}
    names = {0.0: "min", 0.5: "median", 1.0: "max"}
    out = {names.get(q, f"p{round(q * 100)}"): float(v) for q, v in zip(qs, np.quantile(counts, qs))}
    out["mean"] = float(counts.mean())
    return out


def long_tail(counts: np.ndarray) -> np.ndarray:
    """Counts sorted from most to least (rank 1 first), zeros dropped: the y of a rank/frequency plot."""
    c = np.sort(np.asarray(counts, dtype=np.int64))[::-1]
    return c[c > 0]


def top_share(counts: np.ndarray, fraction: float = 0.2) -> float:
    """Share of all ratings held by the top ``fraction`` of users or movies (0.2: "top 20% hold x%")."""
    c = long_tail(counts)
    if c.size == 0:
        return 0.0
    n = max(1, int(round(fraction * c.size)))
    return float(c[:n].sum() / c.sum())


def _per_movie_sums(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    movie = np.asarray(ds.ratings.movie)
    r = np.asarray(ds.ratings.rating, dtype=np.float64)
    n = np.bincount(movie, minlength=ds.n_movies).astype(np.float64)
    s = np.bincount(movie, weights=r, minlength=ds.n_movies)
    s2 = np.bincount(movie, weights=r * r, minlength=ds.n_movies)
    return n, s, s2


def _mean_sem(n: np.ndarray, s: np.ndarray, s2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        var = np.where(n > 1, (s2 - n * mean * mean) / np.maximum(n - 1, 1), np.nan)
        sem = np.sqrt(np.maximum(var, 0.0)) / np.sqrt(np.maximum(n, 1))
    return mean, np.where(n > 1, sem, np.nan)


def genre_stats(ds):
    """Polars frame, one row per genre: genre, movies, ratings, share (of ratings), mean_rating, sem.

    A movie with several genres counts for each of them, so the shares can sum to more than 1.
    Sorted by number of ratings, most first.
    """
    import polars as pl

    G = ds.genre_matrix  # movies x genres, ones
    n, s, s2 = _per_movie_sums(ds)
    gn, gs, gs2 = (np.asarray(G.T @ v).ravel() for v in (n, s, s2))
    mean, sem = _mean_sem(gn, gs, gs2)
    movies = np.asarray(G.sum(axis=0)).ravel().astype(np.int64)
    total = max(1, len(ds.ratings))
    frame = pl.DataFrame({
        "genre": list(ds.genres),
        "movies": movies,
        "ratings": gn.astype(np.int64),
        "share": gn / total,
        "mean_rating": mean,
        "sem": sem,
    })
    return frame.sort("ratings", descending=True)


def main_genre(ds) -> np.ndarray:
    """Each movie's main genre index (-1 when it has none): its most specific genre, i.e. the one
    fewest movies in the catalogue have (Action|Sci-Fi -> Sci-Fi, Comedy|Romance -> Romance), so a
    map coloured by it shows more than "Drama" everywhere."""
    g = ds.movie_genres
    indptr, indices = np.asarray(g.indptr), np.asarray(g.indices)
    freq = np.bincount(indices, minlength=len(ds.genres))
    out = np.full(ds.n_movies, -1, np.int64)
    for m in range(ds.n_movies):
        gs = indices[indptr[m]:indptr[m + 1]]
        if gs.size:
            out[m] = gs[np.argmin(freq[gs])]
    return out


def ratings_over_time(ds, period: str | None = None):
    """Polars frame: start (date of the period), ratings, mean_rating, complete — one row per month when
    the ratings span at least two years, per week when at least 60 days, else per day (``period="M"``,
    ``"W"`` or ``"D"`` chooses; numpy weeks start on Thursdays).

    ``complete`` is False for a period the data cover only in part, to the day: the first one when the
    ratings begin after its first day, the last one when they end before its last day. Such a period
    holds fewer ratings than a whole one would, so a figure marks it rather than showing it as a drop.
    """
    import polars as pl

    ts = np.asarray(ds.ratings.timestamp)
    r = np.asarray(ds.ratings.rating, dtype=np.float64)
    if ts.size == 0:
        return pl.DataFrame({"start": [], "ratings": [], "mean_rating": [], "complete": []},
                            schema={"start": pl.Date, "ratings": pl.Int64, "mean_rating": pl.Float64, "complete": pl.Boolean})
    if period is None:
        span = int(ts.max()) - int(ts.min())
        period = "M" if span >= 730 * _DAY else "W" if span >= 60 * _DAY else "D"
    bucket = ts.astype("datetime64[s]").astype(f"datetime64[{period}]")
    starts, inverse = np.unique(bucket, return_inverse=True)
    n = np.bincount(inverse)
    s = np.bincount(inverse, weights=r)
    days = ts.astype("datetime64[s]").astype("datetime64[D]")
    first_day = starts.astype("datetime64[D]")
    last_day = (starts + 1).astype("datetime64[D]") - 1
    complete = (first_day >= days.min()) & (last_day <= days.max())
    return pl.DataFrame({
        "start": starts.astype("datetime64[D]").astype("datetime64[ms]"),
        "ratings": n.astype(np.int64),
        "mean_rating": s / n,
        "complete": complete,
    }).with_columns(pl.col("start").cast(pl.Date))


def age_groups(ages: np.ndarray) -> np.ndarray:
    """Group index (0..6 into AGE_LABELS) for ML-1M age codes or raw ages in years; -1 when unknown."""
    a = np.asarray(ages, dtype=np.float64)
    out = np.full(a.shape, -1, np.int64)
    ok = np.isfinite(a) & (a > 0)
    # codes and raw ages land in the same bins: 1 -> under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+
    out[ok] = np.searchsorted(np.array(AGE_CODES[1:], np.float64), a[ok], side="right")
    return out


def has_demographics(ds) -> bool:
    cols = set(ds.users.columns)
    return bool(cols & {"gender", "age"}) and any(ds.users[c].null_count() < ds.users.height for c in cols & {"gender", "age"})


def demographic_stats(ds):
    """Ratings by age group and gender, or None when the users table has neither column.

    Polars frame: age_group (label, or "all" when the source has no ages), gender ("all" when it has
    no genders), users, ratings, mean_rating, sem. Users with an unknown value are left out.
    """
    import polars as pl

    if not has_demographics(ds):
        return None
    users = ds.users.sort("user")
    n_users = ds.n_users
    if "age" in users.columns:
        ages = users["age"].cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
        age_idx = age_groups(ages)
        age_names = list(AGE_LABELS)
    else:
        age_idx = np.zeros(n_users, np.int64)
        age_names = ["all"]
    if "gender" in users.columns:
        gcol = users["gender"].cast(pl.Utf8).fill_null("").to_numpy()
        gender_names = sorted({g for g in gcol if g})
        lookup = {g: i for i, g in enumerate(gender_names)}
        gender_idx = np.array([lookup.get(g, -1) for g in gcol], np.int64)
    else:
        gender_idx = np.zeros(n_users, np.int64)
        gender_names = ["all"]
    n_g = len(gender_names)
    code = np.where((age_idx >= 0) & (gender_idx >= 0), age_idx * n_g + gender_idx, -1)
    rating_code = code[np.asarray(ds.ratings.user)]
    keep = rating_code >= 0
    rc = rating_code[keep]
    r = np.asarray(ds.ratings.rating, dtype=np.float64)[keep]
    size = len(age_names) * n_g
    n = np.bincount(rc, minlength=size).astype(np.float64)
    s = np.bincount(rc, weights=r, minlength=size)
    s2 = np.bincount(rc, weights=r * r, minlength=size)
    mean, sem = _mean_sem(n, s, s2)
    u = np.bincount(code[code >= 0], minlength=size)
    cells = np.arange(size)
    frame = pl.DataFrame({
        "age_group": [age_names[c // n_g] for c in cells],
        "gender": [gender_names[c % n_g] for c in cells],
        "users": u.astype(np.int64),
        "ratings": n.astype(np.int64),
        "mean_rating": mean,
        "sem": sem,
    })
    return frame.filter(pl.col("users") > 0)


def sequence_lengths(ds) -> tuple[np.ndarray, np.ndarray]:
    """Per user: the length of their training sequence (train ratings, in time order) and the days
    between their first and last rating (all splits)."""
    train_len = np.diff(np.asarray(ds.train_by_user.indptr)).astype(np.int64)
    user = np.asarray(ds.ratings.user)
    ts = np.asarray(ds.ratings.timestamp)
    first = np.full(ds.n_users, np.iinfo(np.int64).max, np.int64)
    last = np.full(ds.n_users, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(first, user, ts)
    np.maximum.at(last, user, ts)
    active = np.where(last >= first, (last - first) / _DAY, 0.0)
    return train_len, active


def dataset_stats(ds) -> dict[str, Any]:
    """The headline numbers of a dataset as one dict (plain Python numbers, JSON-serialisable)."""
    r = np.asarray(ds.ratings.rating, dtype=np.float64)
    ts = np.asarray(ds.ratings.timestamp)
    per_user, per_movie = ratings_per_user(ds), ratings_per_movie(ds)
    train_len, active_days = sequence_lengths(ds)
    g = ds.movie_genres
    genres_per_movie = np.diff(np.asarray(g.indptr))
    n = len(r)
    stats: dict[str, Any] = {
        "name": ds.name,
        "users": int(ds.n_users),
        "movies": int(ds.n_movies),
        "ratings": int(n),
        "density": n / max(1, ds.n_users * ds.n_movies),
        "rating_scale": [float(x) for x in ds.rating_scale],
        "mean_rating": float(r.mean()) if n else float("nan"),
        "std_rating": float(r.std()) if n else float("nan"),
        "splits": {name: len(s) for name in ("train", "val", "test") if (s := ds.split(name)) is not None},
        "ratings_per_user": quantiles(per_user),
        "ratings_per_movie": quantiles(per_movie),
        "top20_users_share": top_share(per_user),
        "top20_movies_share": top_share(per_movie),
        "movies_without_ratings": int((per_movie == 0).sum()),
        "genres": len(ds.genres),
        "genres_per_movie": float(genres_per_movie.mean()) if genres_per_movie.size else 0.0,
        "movies_without_genre": int((genres_per_movie == 0).sum()),
        "first_rating": int(ts.min()) if n else None,
        "last_rating": int(ts.max()) if n else None,
        "span_days": float((int(ts.max()) - int(ts.min())) / _DAY) if n else 0.0,
        "train_sequence_length": quantiles(train_len),
        "active_days_per_user": quantiles(active_days),
        "demographics": [c for c in ("gender", "age", "occupation") if c in ds.users.columns],
    }
    return stats
