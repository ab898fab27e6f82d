"""A seeded generator of MovieLens-shaped rating data.

Ratings come from the same kind of latent model mfrec fits, so a model's accuracy on it means
something: global mean + user bias + movie bias + p_u . (q_i + |G_i|^-1/2 sum_g z_g) + noise, rounded
to the scale. User activity is log-normal (long tail, at least ``min_per_user`` ratings each, as in
ML-1M), movie popularity is Zipf-like, every user rates a movie at most once, and each user's
timestamps increase.

The same seed gives byte-identical output: every user draws from its own counter-based random
stream, so the parallel kernel's result does not depend on thread scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mfrec.data.raw import ML_GENRES, RawData

# Shapes of the real datasets (users, movies, ratings) used for the named presets.
SHAPES = {
    "ml-100k": (943, 1682, 100_000),
    "ml-1m": (6040, 3706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-20m": (138_493, 26_744, 20_000_263),
    "ml-25m": (162_541, 59_047, 25_000_095),
    "ml-32m": (200_948, 84_432, 32_000_204),
}
# ML-1M's age groups and their shares of users.
AGE_GROUPS = np.array([1, 18, 25, 35, 45, 50, 56])
AGE_SHARES = np.array([0.037, 0.183, 0.347, 0.197, 0.091, 0.082, 0.063])
# How common each ML-1M genre is among movies (roughly ML-1M's shares; a movie has 1-3 genres).
GENRE_WEIGHTS = np.array([
    0.13, 0.08, 0.03, 0.07, 0.31, 0.06, 0.035, 0.41, 0.018, 0.012, 0.09, 0.03, 0.027, 0.12, 0.07,
    0.13, 0.04, 0.018,
])

_ADJ = (
    "Silent Dark Golden Last Lost Broken Hidden Wild Crimson Frozen Secret Burning Quiet Endless "
    "Distant Bitter Savage Sweet Lonely Midnight Electric Hollow Scarlet Iron Velvet Shattered Final "
    "Restless Forgotten Eternal Wicked Brave Little Strange Northern Southern Falling Rising Perfect "
    "Deadly Gentle Violent Empty Fading Blue Green Silver Black White Red"
).split()
_NOUN = (
    "River Kingdom Shadow Road Garden Storm Heart Empire Island Mirror Summer Winter Stranger City "
    "Horizon Promise Journey Harbor Witness Station Crown Forest Desert Voyage Signal Echo Letter "
    "Bridge Machine Orchard Frontier Circus Ocean Canyon Tower Hunter Dancer Soldier Thief Angel "
    "Planet Valley Lighthouse Carnival Detective Memory Legacy Paradise Mountain Prophecy"
).split()
_PATTERNS = ("The {a} {n}", "{a} {n}", "{n} of the {a} {m}", "A {n} in {m}", "{a} {n}s", "Return to the {n}")


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of a synthetic dataset."""

    n_users: int = 6040
    n_movies: int = 3706
    n_ratings: int = 1_000_209
    seed: int = 42
    half_stars: bool = False  # ml-20m onwards use 0.5..5 in half stars; ml-1m uses 1..5
    rank: int = 8  # latent dimension of the generating model
    noise: float = 0.75  # standard deviation of the rating noise before rounding
    min_per_user: int = 20

    def validate(self) -> None:
        if self.n_users < 1 or self.n_movies < 2 or self.n_ratings < 1:
            raise ValueError("a synthetic dataset needs at least 1 user, 2 movies and 1 rating")
        if self.n_ratings > self.n_users * self.n_movies * 0.5:
            raise ValueError(
                f"{self.n_ratings:,} ratings do not fit {self.n_users:,} users x {self.n_movies:,} movies "
                "(at most half of all pairs); ask for fewer ratings or more users/movies"
            )


def _titles(rng: np.random.Generator, n: int, years: np.ndarray) -> list[str]:
    seen: dict[str, int] = {}
    titles = []
    adj = rng.integers(0, len(_ADJ), n)
    noun = rng.integers(0, len(_NOUN), n)
    noun2 = rng.integers(0, len(_NOUN), n)
    pattern = rng.choice(len(_PATTERNS), n, p=[0.3, 0.25, 0.15, 0.1, 0.1, 0.1])
    for i in range(n):
        base = _PATTERNS[pattern[i]].format(a=_ADJ[adj[i]], n=_NOUN[noun[i]], m=_NOUN[noun2[i]])
        count = seen.get(base, 0) + 1
        seen[base] = count
        if count > 1:  # sequels keep titles distinct
            base = f"{base} {_roman(count)}"
        titles.append(f"{base} ({years[i]})")
    return titles


def _roman(n: int) -> str:
    out = []
    for value, sym in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                       (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out.append(sym)
            n -= value
    return "".join(out)


def _activity(rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """Ratings per user: log-normal, at least min_per_user, at most half the catalogue, summing to n_ratings."""
    cap = max(1, spec.n_movies // 2)
    floor = min(spec.min_per_user, cap, max(1, spec.n_ratings // spec.n_users))
    weights = rng.lognormal(0.0, 1.1, spec.n_users)
    counts = np.full(spec.n_users, floor, np.int64)
    remaining = spec.n_ratings - counts.sum()
    for _ in range(50):  # distribute what is left by weight, respecting the cap
        if remaining <= 0:
            break
        room = cap - counts
        w = np.where(room > 0, weights, 0.0)
        if w.sum() == 0:
            break
        add = np.minimum(np.floor(remaining * w / w.sum()).astype(np.int64), room)
        if add.sum() == 0:  # rounding left a few: give them one each to the heaviest with room
            idx = np.argsort(-w)[:remaining]
            add = np.zeros_like(counts)
            add[idx] = 1
            add = np.minimum(add, room)
        counts += add
        remaining = spec.n_ratings - counts.sum()
    while remaining > 0:  # proportional rounds converge slowly at the end: one more each, heaviest first
        room = cap - counts
        idx = np.flatnonzero(room > 0)
        if len(idx) == 0:
            break
        idx = idx[np.argsort(-weights[idx], kind="stable")][:remaining]
        counts[idx] += 1
        remaining = spec.n_ratings - counts.sum()
    if remaining < 0:  # fewer ratings than users x floor: trim the heaviest
        order = np.argsort(-counts)
        for i in order:
            take = min(-remaining, counts[i] - 1)
            counts[i] -= take
            remaining += take
            if remaining == 0:
                break
    return counts


def generate(spec: SyntheticSpec, movies=None, users=None) -> RawData:
    """Generate a synthetic dataset as :class:`RawData` (userId = user + 1, movieId = movie + 1).

    ``movies`` / ``users`` (polars tables as a reader returns them, e.g. a real ML-1M movies.dat and
    users.dat) replace the generated catalogue and users: the ratings then use their ids, and the
    generating model's genre effects follow the given genres. ``spec.n_movies`` / ``spec.n_users``
    must equal their heights.
    """
    import polars as pl

    from mfrec.kernels.synthetic import generate_ratings

    spec.validate()
    if movies is not None and movies.height != spec.n_movies:
        raise ValueError(f"the movies table has {movies.height:,} movies but the spec asks for {spec.n_movies:,}")
    if users is not None and users.height != spec.n_users:
        raise ValueError(f"the users table has {users.height:,} users but the spec asks for {spec.n_users:,}")
    rng = np.random.default_rng(spec.seed)
    nu, nm, k = spec.n_users, spec.n_movies, spec.rank
    n_genres = len(ML_GENRES)

    # movies: genres, years, titles
    g_prob = GENRE_WEIGHTS / GENRE_WEIGHTS.sum()
    n_g = rng.choice([1, 2, 3], nm, p=[0.5, 0.35, 0.15])
    genre_sets = [np.sort(rng.choice(n_genres, n_g[i], replace=False, p=g_prob)) for i in range(nm)]
    years = np.clip(np.round(2015 - rng.gamma(2.0, 9.0, nm)), 1919, 2019).astype(np.int32)
    titles = _titles(rng, nm, years)
    if movies is not None:  # the given catalogue's genres drive the genre effects
        gpos = {g: i for i, g in enumerate(ML_GENRES)}
        genre_sets = [np.array(sorted({gpos[g] for g in gs if g in gpos}), dtype=np.int64) for gs in movies["genres"].to_list()]

    # users: demographics
    gender = np.where(rng.random(nu) < 0.717, "M", "F")
    age = rng.choice(AGE_GROUPS, nu, p=AGE_SHARES / AGE_SHARES.sum())
    occupation = rng.integers(0, 21, nu)
    zips = np.char.zfill(rng.integers(0, 100_000, nu).astype(str), 5)

    # the generating model
    mu = 3.55 if not spec.half_stars else 3.5
    bu = rng.normal(0.0, 0.35, nu)
    popularity = rng.permutation(nm)  # popularity rank of each movie
    pop_w = 1.0 / (popularity + 10.0) ** 1.05
    bi = rng.normal(0.0, 0.4, nm) + 0.25 * (np.log(pop_w) - np.log(pop_w).mean()) / np.log(pop_w).std()
    scale = 0.9 / np.sqrt(k)
    p = rng.normal(0.0, scale, (nu, k))
    q = rng.normal(0.0, scale * 0.8, (nm, k))
    z = rng.normal(0.0, scale * 1.2, (n_genres, k))
    q_eff = q.copy()
    for i, gs in enumerate(genre_sets):
        if len(gs):
            q_eff[i] += z[gs].sum(axis=0) / np.sqrt(len(gs))
    counts = _activity(rng, spec)
    lo, hi, step = (0.5, 5.0, 0.5) if spec.half_stars else (1.0, 5.0, 1.0)
    t0 = 946_684_800 if not spec.half_stars else 820_454_400  # 2000-01-01 / 1996-01-01
    horizon = 3.0e8 if spec.half_stars else 9.0e7
    start = t0 + rng.random(nu) * horizon * 0.8
    span = rng.random(nu) * np.minimum(horizon * 0.2, 3.0e7) + 3600.0

    movie, rating, ts = generate_ratings(
        counts, np.cumsum(pop_w), spec.seed, mu, bu, bi, p, q_eff, spec.noise, (lo, hi, step), start, span,
    )
    user = np.repeat(np.arange(nu, dtype=np.int64), counts)

    user_id = user + 1 if users is None else users["userId"].to_numpy().astype(np.int64)[user]
    movie_id = movie.astype(np.int64) + 1 if movies is None else movies["movieId"].to_numpy().astype(np.int64)[movie]
    ratings = pl.DataFrame({
        "userId": user_id,
        "movieId": movie_id,
        "rating": rating,
        "timestamp": ts,
    })
    movies_gen = pl.DataFrame({
        "movieId": np.arange(1, nm + 1, dtype=np.int64),
        "title": titles,
        "year": years,
        "genres": [[ML_GENRES[g] for g in gs] for gs in genre_sets],
    })
    users_gen = pl.DataFrame({
        "userId": np.arange(1, nu + 1, dtype=np.int64),
        "gender": gender,
        "age": age.astype(np.int32),
        "occupation": occupation.astype(np.int32),
        "zip": zips,
    })
    if movies is not None:
        movies = movies.select(
            pl.col("movieId").cast(pl.Int64), "title", pl.col("year").cast(pl.Int32), pl.col("genres").cast(pl.List(pl.String))
        )
    else:
        movies = movies_gen
    if users is not None:
        users = users.with_columns(pl.col("userId").cast(pl.Int64))
    else:
        users = users_gen
    return RawData(
        dataset="synthetic",
        ratings=ratings,
        movies=movies,
        users=users,
        rating_scale=(lo, hi),
        rating_step=step,
        source=f"synthetic(seed={spec.seed}, users={nu}, movies={nm}, ratings={spec.n_ratings})",
        ratings_file="<synthetic>",
        extra={"generator": {"rank": k, "noise": spec.noise, "half_stars": spec.half_stars}},
    )
