"""Predictions r = mu + b_u + b_i + p_u . q_i (q_i already the effective movie factors), and fused
error sums for RMSE/MAE that never materialise the prediction array."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mfrec.kernels._config import FASTMATH

_N_CHUNKS = 256


@njit(cache=True, fastmath=FASTMATH)
def _one(u, i, mu, user_bias, movie_bias, user_factors, movie_factors):
    s = np.float32(0.0)
    for a in range(user_factors.shape[1]):
        s += user_factors[u, a] * movie_factors[i, a]
    return mu + user_bias[u] + movie_bias[i] + s


@njit(cache=True)
def _shown(u, i, mu, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip):
    """One prediction as the caller sees it: clipped to [lo, hi] when ``clip``."""
    v = _one(u, i, mu, user_bias, movie_bias, user_factors, movie_factors)
    if clip:
        v = min(max(v, lo), hi)
    return v


@njit(cache=True, parallel=True)
def _predict(users, movies, mu, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip, out):
    mu32 = np.float32(mu)
    for j in prange(users.shape[0]):
        out[j] = _shown(users[j], movies[j], mu32, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip)


@njit(cache=True, parallel=True)
def _error_sums(users, movies, ratings, mu, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip):
    n = users.shape[0]
    n_chunks = max(1, min(n, _N_CHUNKS))
    sq = np.zeros(n_chunks, np.float64)
    ab = np.zeros(n_chunks, np.float64)
    mu32 = np.float32(mu)
    for c in prange(n_chunks):
        a = c * n // n_chunks
        b = (c + 1) * n // n_chunks
        s2 = 0.0
        s1 = 0.0
        for j in range(a, b):
            v = _shown(users[j], movies[j], mu32, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip)
            e = np.float64(v) - ratings[j]
            s2 += e * e
            s1 += abs(e)
        sq[c] = s2
        ab[c] = s1
    return sq.sum(), ab.sum()


def _check(users, movies, n_users, n_movies):
    users = np.ascontiguousarray(users, dtype=np.int32)
    movies = np.ascontiguousarray(movies, dtype=np.int32)
    if users.shape != movies.shape or users.ndim != 1:
        raise ValueError(f"users and movies must be 1-d arrays of one length, got {users.shape} and {movies.shape}")
    if len(users):
        if users.min() < 0 or users.max() >= n_users:
            raise ValueError(f"user indices must lie in 0..{n_users - 1}")
        if movies.min() < 0 or movies.max() >= n_movies:
            raise ValueError(f"movie indices must lie in 0..{n_movies - 1}")
    return users, movies


def predict(users, movies, mu, user_bias, movie_bias, user_factors, movie_factors, scale=None) -> np.ndarray:
    """float32 predictions for index pairs; clipped to ``scale`` = (lo, hi) when given."""
    users, movies = _check(users, movies, len(user_bias), len(movie_bias))
    out = np.empty(len(users), np.float32)
    lo, hi = scale if scale is not None else (0.0, 0.0)
    _predict(users, movies, float(mu), user_bias, movie_bias, user_factors, movie_factors,
             np.float32(lo), np.float32(hi), scale is not None, out)
    return out


def error_sums(users, movies, ratings, mu, user_bias, movie_bias, user_factors, movie_factors, scale=None):
    """(sum of squared errors, sum of absolute errors) over the pairs, predictions clipped to ``scale``."""
    users, movies = _check(users, movies, len(user_bias), len(movie_bias))
    ratings = np.ascontiguousarray(ratings, dtype=np.float32)
    if len(ratings) != len(users):
        raise ValueError("ratings must have one entry per (user, movie) pair")
    if len(users) == 0:
        return 0.0, 0.0
    lo, hi = scale if scale is not None else (0.0, 0.0)
    sq, ab = _error_sums(users, movies, ratings, float(mu), user_bias, movie_bias, user_factors, movie_factors,
                         np.float32(lo), np.float32(hi), scale is not None)
    return float(sq), float(ab)


@njit(cache=True, parallel=True)
def _error_sums_csr(indptr, indices, ratings, mu, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip):
    n = indptr.shape[0] - 1
    n_chunks = max(1, min(n, _N_CHUNKS))
    sq = np.zeros(n_chunks, np.float64)
    ab = np.zeros(n_chunks, np.float64)
    mu32 = np.float32(mu)
    for c in prange(n_chunks):
        s2 = 0.0
        s1 = 0.0
        for u in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            for j in range(indptr[u], indptr[u + 1]):
                v = _shown(u, indices[j], mu32, user_bias, movie_bias, user_factors, movie_factors, lo, hi, clip)
                e = np.float64(v) - ratings[j]
                s2 += e * e
                s1 += abs(e)
        sq[c] = s2
        ab[c] = s1
    return sq.sum(), ab.sum()


def error_sums_csr(indptr, indices, ratings, mu, user_bias, movie_bias, user_factors, movie_factors, scale=None):
    """``error_sums`` over a user-CSR of ratings (row = user, indices = movies): a fit loop's training
    error from the matrix it already holds, without touching the split's own arrays."""
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    ratings = np.ascontiguousarray(ratings, dtype=np.float32)
    if len(indptr) != len(user_bias) + 1 or len(ratings) != len(indices) or (len(indptr) and indptr[-1] != len(indices)):
        raise ValueError(f"the CSR needs {len(user_bias) + 1} indptr entries ending at its {len(indices)} ratings")
    if len(indices) == 0:
        return 0.0, 0.0
    lo, hi = scale if scale is not None else (0.0, 0.0)
    sq, ab = _error_sums_csr(indptr, indices, ratings, float(mu), user_bias, movie_bias, user_factors, movie_factors,
                             np.float32(lo), np.float32(hi), scale is not None)
    return float(sq), float(ab)
