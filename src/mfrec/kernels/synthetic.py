"""The synthetic ratings generator: per user, distinct movies (popularity-weighted or uniform), ratings
from the latent model plus Gaussian noise rounded to the scale, and increasing timestamps.

Every user draws from its own counter-based random stream (the splitmix64 finaliser over
(seed, user, counter)), so the parallel kernel's output depends on the seed only, never on thread
scheduling. ``generate_ratings`` validates and allocates; ``_generate_ratings`` is pure ``@njit``.
"""

from __future__ import annotations

import numba
import numpy as np

from mfrec.errors import DataError


@numba.njit(cache=True)
def _mix(x):
    # splitmix64 finaliser: a counter-based generator, so stream (seed, user, i) needs no state.
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(cache=True)
def _uniform(key, counter):
    # a float64 in [0, 1) from 53 random bits
    return float(_mix(key + np.uint64(counter) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, parallel=True)
def _generate_ratings(
    counts, offsets, movie_cdf, seed, mu, bu, bi, p, q_eff, noise, lo, hi, step, start, span, out_movie, out_rating, out_ts
):
    n_users = counts.shape[0]
    n_movies = movie_cdf.shape[0]
    k = p.shape[1]
    n_blocks = min(n_users, 256)
    for blk in numba.prange(n_blocks):
        seen = np.full(n_movies, -1, np.int64)  # per-block marker: which user last took each movie
        for u in range(blk, n_users, n_blocks):
            key = _mix(np.uint64(seed) * np.uint64(0x100000001B3) + np.uint64(u) + np.uint64(1))
            c = np.uint64(0)
            o = offsets[u]
            need = counts[u]
            got = 0
            while got < need:
                r = _uniform(key, c)
                c += np.uint64(1)
                if r < 0.85:  # popularity-weighted pick ...
                    m = np.searchsorted(movie_cdf, _uniform(key, c) * movie_cdf[-1], side="right")
                    if m >= n_movies:
                        m = n_movies - 1
                else:  # ... or uniform, so heavy users also reach the tail
                    m = int(_uniform(key, c) * n_movies)
                c += np.uint64(1)
                if seen[m] == u:
                    continue
                seen[m] = u
                out_movie[o + got] = m
                got += 1
            # ratings and increasing timestamps
            t = start[u]
            gap = span[u] / (need + 1.0)
            for j in range(need):
                m = out_movie[o + j]
                s = mu + bu[u] + bi[m]
                for f in range(k):
                    s += p[u, f] * q_eff[m, f]
                u1 = max(_uniform(key, c), 1e-300)
                u2 = _uniform(key, c + np.uint64(1))
                c += np.uint64(2)
                s += noise * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
                s = np.round(s / step) * step
                out_rating[o + j] = min(max(s, lo), hi)
                t += 1.0 + gap * 2.0 * _uniform(key, c)
                c += np.uint64(1)
                out_ts[o + j] = np.int64(t)


def generate_ratings(counts, movie_cdf, seed: int, mu: float, user_bias, movie_bias, user_factors, movie_factors,
                     noise: float, scale: tuple[float, float, float], start, span):
    """Ratings of every user: (movie int32, rating float32, timestamp int64), user by user.

    User ``u`` gets ``counts[u]`` distinct movies (``counts[u]`` must be at most the number of
    movies), drawn 85% by popularity (``movie_cdf``: the cumulative, unnormalised weights) and 15%
    uniformly; rating = round((mu + b_u + b_i + p_u . q_i + noise * N(0, 1)) / step) * step, clipped
    to ``scale`` = (lo, hi, step); timestamps increase from ``start[u]`` over about ``span[u]`` seconds.
    """
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    movie_cdf = np.ascontiguousarray(movie_cdf, dtype=np.float64)
    user_bias, movie_bias, start, span = (np.ascontiguousarray(a, dtype=np.float64) for a in (user_bias, movie_bias, start, span))
    user_factors = np.ascontiguousarray(user_factors, dtype=np.float64)
    movie_factors = np.ascontiguousarray(movie_factors, dtype=np.float64)
    n_users, n_movies = len(counts), len(movie_cdf)
    if user_bias.shape != (n_users,) or start.shape != (n_users,) or span.shape != (n_users,) or len(user_factors) != n_users:
        raise DataError("the generator needs one bias, factor row, start and span per user")
    if movie_bias.shape != (n_movies,) or movie_factors.shape != (n_movies, user_factors.shape[1]):
        raise DataError("the generator needs one bias and one factor row per movie, of the users' rank")
    if n_users and (counts.min() < 0 or counts.max() > n_movies):
        raise DataError(f"a user cannot rate fewer than 0 or more than all {n_movies} movies")
    lo, hi, step = scale
    if not (step > 0 and lo <= hi):
        raise DataError(f"bad rating scale {scale}")
    offsets = np.zeros(n_users, np.int64)
    if n_users:
        np.cumsum(counts[:-1], out=offsets[1:])
    total = int(counts.sum())
    movie = np.empty(total, np.int32)
    rating = np.empty(total, np.float32)
    ts = np.empty(total, np.int64)
    _generate_ratings(counts, offsets, movie_cdf, np.uint64(seed), mu, user_bias, movie_bias, user_factors, movie_factors,
                      noise, lo, hi, step, start, span, movie, rating, ts)
    return movie, rating, ts
