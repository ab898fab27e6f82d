"""The genre-factor step of mf-genre: one joint ridge regression for the genre factors y (n_genres, k).

With everything else fixed, the residual e_ui = r_ui - mu - b_u - b_i - p_u . q_i is fitted by
p_u . w_s sum_{g in s} y_g, where s = G_i is the movie's genre set and w_s = |s|^-1/2. The normal
equations are

    M = sum_s w_s^2 (1_s 1_s^T) (x) S_s,   S_s = sum_u n_us p_u p_u^T,   rhs_g = sum_{(u,i): g in G_i} w_i e_ui p_u

where n_us is how many of user u's ratings fall on movies of set s. So the per-rating work of
S is compressed to one weighted row per distinct (user, genre set) pair: the pairs are found once
per fit (``genre_index``), and each epoch forms S_s from them with BLAS (float32 blocks, float64
across blocks, one reused gather buffer) and the right-hand side in one parallel pass over the
user-CSR (fixed chunks, so the sums do not depend on the thread count). No array as large as the
ratings is allocated per epoch. The (n_genres k)^2 system is then factored exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from mfrec.kernels._config import FASTMATH
from mfrec.kernels.als import SolveError

_N_CHUNKS = 256  # fixed work split of the right-hand-side pass: the sum order never depends on threads
_BLOCK = 1 << 13  # gathered (user, set) rows per BLAS call


class GenreIndex(NamedTuple):
    """What the genre step needs about the ratings, built once per fit by ``genre_index``.

    ``set_indptr``/``set_genres``: each distinct genre set's genres (CSR); ``movie_set``: each
    movie's set (-1 = no genres); ``pair_indptr``/``pair_users``/``pair_counts``: per set, the
    users who rated its movies and how many of its movies each rated (n_us);
    ``genre_ratings``: ratings of movies with genre g (for the weighted-lambda penalty).
    """

    n_genres: int
    set_indptr: np.ndarray
    set_genres: np.ndarray
    movie_set: np.ndarray
    pair_indptr: np.ndarray
    pair_users: np.ndarray
    pair_counts: np.ndarray
    genre_ratings: np.ndarray


def genre_sets(genre_indptr, genre_indices) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Group movies by their genre set: (sets, set_indptr, set_movies); movies without genres are left out."""
    groups: dict[tuple[int, ...], list[int]] = {}
    gi = np.asarray(genre_indices)
    gp = np.asarray(genre_indptr)
    for i in range(len(gp) - 1):
        key = tuple(sorted(int(g) for g in gi[gp[i]:gp[i + 1]]))
        if key:
            groups.setdefault(key, []).append(i)
    sets = list(groups)
    counts = [len(groups[s]) for s in sets]
    set_indptr = np.zeros(len(sets) + 1, np.int64)
    set_indptr[1:] = np.cumsum(counts) if counts else []
    set_movies = np.array([i for s in sets for i in groups[s]], dtype=np.int32)
    return sets, set_indptr, set_movies


@njit(cache=True, parallel=True)
def _set_users(movie_indptr, movie_users, set_movie_indptr, set_movies, n_users, pair_indptr, out_users,
               out_counts, n_per_set):
    """Distinct users of each set's movies (first-touch order) and their rating counts.

    Counting pass when ``out_users`` is empty (fills ``n_per_set``), else the filling pass."""
    n_sets = set_movie_indptr.shape[0] - 1
    fill = out_users.shape[0] > 0
    n_chunks = min(n_sets, 64)
    for c in prange(n_chunks):
        mark = np.full(n_users, -1, np.int64)
        slot = np.zeros(n_users, np.int64)
        for s in range(c, n_sets, n_chunks):
            n = 0
            base = pair_indptr[s] if fill else 0
            for mm in range(set_movie_indptr[s], set_movie_indptr[s + 1]):
                i = set_movies[mm]
                for jj in range(movie_indptr[i], movie_indptr[i + 1]):
                    u = movie_users[jj]
                    if mark[u] != s:
                        mark[u] = s
                        slot[u] = n
                        n += 1
                        if fill:
                            out_users[base + slot[u]] = u
                            out_counts[base + slot[u]] = 0.0
                    if fill:
                        out_counts[base + slot[u]] += 1.0
            n_per_set[s] = n


def genre_index(genre_indptr, genre_indices, n_genres: int, movie_csr) -> GenreIndex:
    """The per-fit index of the genre step: genre sets, each movie's set, and the (user, set) pairs.

    ``genre_indptr``/``genre_indices``: each movie's genres (CSR over movies); ``movie_csr``:
    ``(indptr, users, ratings)`` of the training ratings by movie.
    """
    gp = np.ascontiguousarray(genre_indptr, np.int64)
    gi = np.ascontiguousarray(genre_indices, np.int32)
    mp = np.ascontiguousarray(movie_csr[0], np.int64)
    mu_ = np.ascontiguousarray(movie_csr[1], np.int32)
    n_movies = len(mp) - 1
    if len(gp) - 1 != n_movies:
        raise ValueError(f"the genre CSR has {len(gp) - 1} movies, the movie CSR {n_movies}")
    if len(gi) and (gi.min() < 0 or gi.max() >= n_genres):
        raise ValueError(f"genre indices must lie in 0..{n_genres - 1}")
    sets, set_movie_indptr, set_movies = genre_sets(gp, gi)
    n_sets = len(sets)
    set_indptr = np.zeros(n_sets + 1, np.int64)
    set_indptr[1:] = np.cumsum([len(s) for s in sets]) if sets else []
    set_genres = np.array([g for s in sets for g in s], np.int32)
    movie_set = np.full(n_movies, -1, np.int32)
    movie_set[set_movies] = np.repeat(np.arange(n_sets, dtype=np.int32), np.diff(set_movie_indptr))
    n_users = int(mu_.max()) + 1 if len(mu_) else 0
    n_per_set = np.zeros(n_sets, np.int64)
    pair_indptr = np.zeros(n_sets + 1, np.int64)
    if n_sets:
        _set_users(mp, mu_, set_movie_indptr, set_movies, n_users, pair_indptr, np.zeros(0, np.int32),
                   np.zeros(0, np.float32), n_per_set)
        pair_indptr[1:] = np.cumsum(n_per_set)
    pair_users = np.empty(int(pair_indptr[-1]), np.int32)
    pair_counts = np.empty(int(pair_indptr[-1]), np.float32)
    if n_sets:
        _set_users(mp, mu_, set_movie_indptr, set_movies, n_users, pair_indptr, pair_users, pair_counts, n_per_set)
    counts = np.diff(mp).astype(np.float64)
    genre_ratings = np.zeros(n_genres, np.float64)
    np.add.at(genre_ratings, gi, np.repeat(counts, np.diff(gp)))
    return GenreIndex(int(n_genres), set_indptr, set_genres, movie_set, pair_indptr, pair_users, pair_counts,
                      genre_ratings)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _genre_rhs(indptr, indices, values, mu, user_bias, movie_bias, P, Q, movie_set, set_indptr, set_genres, out):
    """rhs_g = sum over ratings of movies with genre g of w_i e_ui p_u; one (n_genres, k) slice per chunk."""
    n_users = indptr.shape[0] - 1
    k = P.shape[1]
    n_sets = set_indptr.shape[0] - 1
    n_chunks = out.shape[0]
    n_genres = out.shape[1]
    for c in prange(n_chunks):
        E = np.zeros(n_sets, np.float64)
        seen = np.zeros(n_sets, np.bool_)
        touched = np.empty(n_sets, np.int64)
        b = np.zeros(n_genres, np.float64)
        acc = out[c]
        for u in range(c * n_users // n_chunks, (c + 1) * n_users // n_chunks):
            nt = 0
            for jj in range(indptr[u], indptr[u + 1]):
                i = indices[jj]
                s = movie_set[i]
                if s < 0:
                    continue
                d = np.float32(0.0)
                for a in range(k):
                    d += P[u, a] * Q[i, a]
                E[s] += np.float64(values[jj]) - mu - user_bias[u] - movie_bias[i] - d
                if not seen[s]:
                    seen[s] = True
                    touched[nt] = s
                    nt += 1
            if nt == 0:
                continue
            for t in range(nt):
                s = touched[t]
                w = E[s] / np.sqrt(np.float64(set_indptr[s + 1] - set_indptr[s]))
                for gg in range(set_indptr[s], set_indptr[s + 1]):
                    b[set_genres[gg]] += w
                E[s] = 0.0
                seen[s] = False
            for g in range(n_genres):
                if b[g] != 0.0:
                    bg = b[g]
                    for a in range(k):
                        acc[g, a] += bg * P[u, a]
                    b[g] = 0.0


@njit(cache=True)
def _gather_weighted(P, users, counts, start, end, out):
    for j in range(end - start):
        w = np.float32(np.sqrt(counts[start + j]))
        u = users[start + j]
        for a in range(P.shape[1]):
            out[j, a] = w * P[u, a]


def solve_genre_factors(index: GenreIndex, user_csr, mu: float, user_bias, movie_bias, user_factors, movie_factors,
                        *, reg: float, weighted: bool = True, reg_exponent: float = 1.0) -> np.ndarray:
    """The genre factors y (n_genres, k) with everything else fixed: an exact ridge solve of size n_genres*k.

    ``user_csr`` is ``(indptr, movies, ratings)`` of the training ratings by user; ``index`` comes
    from ``genre_index`` on the same ratings. With weighted-lambda, y_g's penalty is ``reg`` times
    (the number of ratings of movies with genre g) ** ``reg_exponent``; else ``reg``.
    """
    import scipy.linalg

    P = np.ascontiguousarray(user_factors, np.float32)
    Q = np.ascontiguousarray(movie_factors, np.float32)
    k = P.shape[1]
    n_g = index.n_genres
    indptr = np.ascontiguousarray(user_csr[0], np.int64)
    if len(indptr) - 1 != len(P) or len(index.movie_set) != len(Q):
        raise ValueError(f"the user CSR has {len(indptr) - 1} users for {len(P)} user factors and the index "
                         f"{len(index.movie_set)} movies for {len(Q)} movie factors")
    n_sets = len(index.set_indptr) - 1
    # right-hand side: one pass over the ratings, in fixed chunks
    n_chunks = max(1, min(_N_CHUNKS, len(P)))
    parts = np.zeros((n_chunks, n_g, k), np.float64)
    if n_sets and len(P):
        _genre_rhs(indptr, np.ascontiguousarray(user_csr[1], np.int32), np.ascontiguousarray(user_csr[2], np.float32),
                   float(mu), np.ascontiguousarray(user_bias, np.float32), np.ascontiguousarray(movie_bias, np.float32),
                   P, Q, index.movie_set, index.set_indptr, index.set_genres, parts)
    rhs = parts.sum(axis=0).reshape(-1)
    # S_s from the weighted (user, set) rows by BLAS, assembled straight into M
    M = np.zeros((n_g * k, n_g * k), np.float64)
    buf = np.empty((min(_BLOCK, max(1, len(index.pair_users))), k), np.float32)
    for s in range(n_sets):
        gs = index.set_genres[index.set_indptr[s]:index.set_indptr[s + 1]]
        p0, p1 = int(index.pair_indptr[s]), int(index.pair_indptr[s + 1])
        if p1 == p0:
            continue
        S = np.zeros((k, k), np.float64)
        for c0 in range(p0, p1, len(buf)):
            c1 = min(c0 + len(buf), p1)
            X = buf[:c1 - c0]
            _gather_weighted(P, index.pair_users, index.pair_counts, c0, c1, X)
            S += X.T @ X  # float32 BLAS within a block, float64 across blocks
        S /= len(gs)
        for g in gs:
            for g2 in gs:
                M[g * k:(g + 1) * k, g2 * k:(g2 + 1) * k] += S
    lam = reg * np.maximum(index.genre_ratings, 1.0) ** reg_exponent if weighted else np.full(n_g, reg)
    M[np.diag_indices_from(M)] += np.repeat(lam, k)
    try:
        y = scipy.linalg.solve(M, rhs, assume_a="pos")
    except (np.linalg.LinAlgError, ValueError) as e:
        raise SolveError(f"the genre-factor system could not be solved ({e}); raise --reg") from None
    if not np.all(np.isfinite(y)):
        raise SolveError("the genre-factor solve gave NaN or inf; raise --reg")
    return y.reshape(n_g, k).astype(np.float32)
