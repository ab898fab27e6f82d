"""The genre-factor step of mf-genre: one joint ridge regression for the genre factors y (n_genres, k).

With everything else fixed, the residual e_ui = r_ui - mu - b_u - b_i - p_u . q_i is fitted by
p_u . w_s sum_{g in s} y_g, where s = G_i is the movie's genre set and w_s = |s|^-1/2. The normal
equations are

    M = sum_s w_s^2 (1_s 1_s^T) (x) S_s,   S_s = sum_u n_us p_u p_u^T,   rhs_g = sum_{(u,i): g in G_i} w_i e_ui p_u

where n_us is how many of user u's ratings fall on movies of set s. So the per-rating work of
S is compressed to one weighted row per distinct (user, genre set) pair: the pairs are found once
per fit (``genre_index``). M is never formed: ``solve_genre_factors`` runs Jacobi-preconditioned
CG in float64, each matrix-vector product one parallel pass over the pairs in fixed chunks (so the
sums do not depend on the thread count), warm-started from the previous epoch's y; under
``--solver cg`` it takes ``cg_steps`` iterations per epoch, like the factor half-steps. No array as
large as the ratings is allocated per epoch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from mfrec.kernels._config import FASTMATH
from mfrec.kernels.als import SolveError, genre_sets

_N_CHUNKS = 256  # fixed work split of the right-hand-side pass: the sum order never depends on threads


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
    pair_sets: np.ndarray
    pair_counts: np.ndarray
    genre_ratings: np.ndarray


@njit(cache=True, parallel=True)
def _user_sets(indptr, indices, movie_set, n_sets, n_chunks, pair_indptr, out_sets, out_counts, n_per_user):
    """Each user's distinct genre sets (first-touch order) and how many of the set's movies they rated.

    Counting pass when ``out_sets`` is empty (fills ``n_per_user``), else the filling pass."""
    n_users = indptr.shape[0] - 1
    fill = out_sets.shape[0] > 0
    for c in prange(n_chunks):
        slot = np.full(n_sets, -1, np.int64)
        touched = np.empty(n_sets, np.int64)
        for u in range(c * n_users // n_chunks, (c + 1) * n_users // n_chunks):
            n = 0
            base = pair_indptr[u] if fill else 0
            for jj in range(indptr[u], indptr[u + 1]):
                s = movie_set[indices[jj]]
                if s < 0:
                    continue
                if slot[s] < 0:
                    slot[s] = n
                    touched[n] = s
                    if fill:
                        out_sets[base + n] = s
                        out_counts[base + n] = 0.0
                    n += 1
                if fill:
                    out_counts[base + slot[s]] += 1.0
            for t in range(n):
                slot[touched[t]] = -1
            n_per_user[u] = n


def genre_index(genre_indptr, genre_indices, n_genres: int, user_csr) -> GenreIndex:
    """The per-fit index of the genre step: genre sets, each movie's set, and the (user, set) pairs.

    ``genre_indptr``/``genre_indices``: each movie's genres (CSR over movies); ``user_csr``:
    ``(indptr, movies, ratings)`` of the training ratings by user.
    """
    gp = np.ascontiguousarray(genre_indptr, np.int64)
    gi = np.ascontiguousarray(genre_indices, np.int32)
    up = np.ascontiguousarray(user_csr[0], np.int64)
    um = np.ascontiguousarray(user_csr[1], np.int32)
    n_movies, n_users = len(gp) - 1, len(up) - 1
    if len(gi) and (gi.min() < 0 or gi.max() >= n_genres):
        raise ValueError(f"genre indices must lie in 0..{n_genres - 1}")
    if len(um) and (um.min() < 0 or um.max() >= n_movies):
        raise ValueError(f"the user CSR's movie indices must lie in 0..{n_movies - 1} (the genre CSR's movies)")
    sets, set_movie_indptr, set_movies = genre_sets(gp, gi)
    n_sets = len(sets)
    set_indptr = np.zeros(n_sets + 1, np.int64)
    set_indptr[1:] = np.cumsum([len(s) for s in sets]) if sets else []
    set_genres = np.array([g for s in sets for g in s], np.int32)
    movie_set = np.full(n_movies, -1, np.int32)
    movie_set[set_movies] = np.repeat(np.arange(n_sets, dtype=np.int32), np.diff(set_movie_indptr))
    n_chunks = max(1, min(_N_CHUNKS, n_users))
    n_per_user = np.zeros(n_users, np.int64)
    pair_indptr = np.zeros(n_users + 1, np.int64)
    _user_sets(up, um, movie_set, n_sets, n_chunks, pair_indptr, np.zeros(0, np.int32), np.zeros(0, np.float32),
               n_per_user)
    pair_indptr[1:] = np.cumsum(n_per_user)
    pair_sets = np.empty(int(pair_indptr[-1]), np.int32)
    pair_counts = np.empty(int(pair_indptr[-1]), np.float32)
    _user_sets(up, um, movie_set, n_sets, n_chunks, pair_indptr, pair_sets, pair_counts, n_per_user)
    per_set = np.bincount(pair_sets, weights=pair_counts, minlength=n_sets)
    genre_ratings = np.zeros(n_genres, np.float64)
    np.add.at(genre_ratings, set_genres, np.repeat(per_set, np.diff(set_indptr)))
    return GenreIndex(int(n_genres), set_indptr, set_genres, movie_set, pair_indptr, pair_sets, pair_counts,
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


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _genre_matvec(P, pair_indptr, pair_sets, pair_counts, set_indptr, set_genres, V, out):
    """out[c] = chunk c's share of (sum_s w_s^2 (1_s 1_s^T) (x) S_s) vec(V), one user at a time:
    a_g = p_u . v_g, b_g = sum_{s ni g} n_us / |s| sum_{g' in s} a_g', then out_g += b_g p_u.

    Each chunk sums into its own local (n_genres, k) array with p_u widened to float64 once per
    user (in the inner loops every operand is then a contiguous float64 row: twice as fast as
    converting and writing through ``out`` element by element, and the same sums in the same order)."""
    n_users = pair_indptr.shape[0] - 1
    k = P.shape[1]
    n_chunks = out.shape[0]
    n_genres = out.shape[1]
    for c in prange(n_chunks):
        acc = np.zeros((n_genres, k), np.float64)
        av = np.empty(n_genres, np.float64)
        b = np.zeros(n_genres, np.float64)
        pu = np.empty(k, np.float64)
        for u in range(c * n_users // n_chunks, (c + 1) * n_users // n_chunks):
            if pair_indptr[u + 1] == pair_indptr[u]:
                continue
            for a in range(k):
                pu[a] = P[u, a]
            for g in range(n_genres):
                vg = V[g]
                d = 0.0
                for a in range(k):
                    d += pu[a] * vg[a]
                av[g] = d
            for pp in range(pair_indptr[u], pair_indptr[u + 1]):
                s = pair_sets[pp]
                s0 = set_indptr[s]
                s1 = set_indptr[s + 1]
                d = 0.0
                for gg in range(s0, s1):
                    d += av[set_genres[gg]]
                d *= pair_counts[pp] / np.float64(s1 - s0)
                for gg in range(s0, s1):
                    b[set_genres[gg]] += d
            _add_outer(b, pu, acc)
        out[c] = acc


@njit(cache=True, fastmath=FASTMATH)
def _add_outer(b, pu, acc):
    """acc[g] += b[g] * pu for every genre g with b[g] != 0, and b back to zeros."""
    for g in range(b.shape[0]):
        bg = b[g]
        if bg != 0.0:
            ag = acc[g]
            for a in range(pu.shape[0]):
                ag[a] += bg * pu[a]
            b[g] = 0.0


@njit(cache=True, parallel=True)
def _genre_diag(P, pair_indptr, pair_sets, pair_counts, set_indptr, set_genres, out):
    """out[c] = chunk c's share of diag(M): sum_u c_ug p_u^2 with c_ug = sum_{s ni g} n_us / |s|."""
    n_users = pair_indptr.shape[0] - 1
    k = P.shape[1]
    n_chunks = out.shape[0]
    n_genres = out.shape[1]
    for c in prange(n_chunks):
        acc = np.zeros((n_genres, k), np.float64)
        b = np.zeros(n_genres, np.float64)
        pu = np.empty(k, np.float64)
        for u in range(c * n_users // n_chunks, (c + 1) * n_users // n_chunks):
            for pp in range(pair_indptr[u], pair_indptr[u + 1]):
                s = pair_sets[pp]
                d = pair_counts[pp] / np.float64(set_indptr[s + 1] - set_indptr[s])
                for gg in range(set_indptr[s], set_indptr[s + 1]):
                    b[set_genres[gg]] += d
            for a in range(k):
                pu[a] = np.float64(P[u, a]) * P[u, a]
            _add_outer(b, pu, acc)
        out[c] = acc


def pcg(matvec, diag, y: np.ndarray, r: np.ndarray, goal: float, cap: int) -> int:
    """Jacobi-preconditioned conjugate gradient on the genre system, in place: ``y`` the start,
    ``r`` its residual (rhs - M y), ``diag`` M's diagonal, ``matvec(v)`` = M v; stops when the
    residual's norm is at most ``goal`` or after ``cap`` iterations, and returns how many ran.
    Shared by ``solve_genre_factors`` and the Dask engine's genre step (which forms M); raises
    ``SolveError`` when M is not positive definite along a search direction or ``y`` ends with NaN
    or inf (both callers' one check)."""
    z = r / diag
    p = z.copy()
    rz = r @ z
    it = 0
    while np.linalg.norm(r) > goal and it < cap:
        ap = matvec(p)
        pap = p @ ap
        if not (pap > 0):
            raise SolveError("the genre-factor system is not positive definite or gave NaN/inf; raise --reg")
        alpha = rz / pap
        y += alpha * p
        r -= alpha * ap
        z = r / diag
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
        it += 1
    if not np.all(np.isfinite(y)):
        raise SolveError("the genre-factor solve gave NaN or inf; raise --reg")
    return it


def solve_genre_factors(index: GenreIndex, user_csr, mu: float, user_bias, movie_bias, user_factors, movie_factors,
                        *, reg: float, weighted: bool = True, reg_exponent: float = 1.0, y0=None, tol: float = 1e-7,
                        movie_residual=None, max_iter: int | None = None, stats: dict | None = None) -> np.ndarray:
    """The genre factors y (n_genres, k) with everything else fixed: the ridge solve of size n_genres*k.

    ``user_csr`` is ``(indptr, movies, ratings)`` of the training ratings by user; ``index`` comes
    from ``genre_index`` on the same ratings. With weighted-lambda, y_g's penalty is ``reg`` times
    (the number of ratings of movies with genre g) ** ``reg_exponent``; else ``reg``.

    Solved by Jacobi-preconditioned conjugate gradient in float64, warm-started from ``y0`` (the
    previous epoch's y; zeros without it), to a residual below ``tol`` times the right-hand side's
    (at most n_genres*k iterations, where CG is exact in exact arithmetic). Each iteration is one
    pass over the (user, genre set) pairs, O(n_users n_genres k), never forming the system.
    ``movie_residual`` (n_movies, k), optional: each movie's ``sum_u e_ui p_u`` with the residuals
    of the full model whose genre factors are ``y0`` (``solve_rows(..., out_residual=)`` of the
    movie half-step computes it from the rows it already gathered); then the initial residual of
    the system is assembled from it and the pass over the ratings is skipped.
    ``max_iter``, when given, caps the iterations: the inexact, warm-started inner solve of an ALS
    epoch under ``--solver cg``, which takes ``cg_steps`` iterations here as the factor half-steps do
    (the epochs converge to the same fixed point; solving the genre block exactly every epoch is
    wasted work). With ``movie_residual`` the stopping rule is then ``tol`` times the starting
    residual's norm, so the right-hand side (only the rule's scale) costs no extra pass.
    ``stats``, when given, receives ``cg_iterations`` and ``relative_residual`` (the residual's norm
    over the right-hand side's), or ``residual_reduction`` (over the starting residual's) when the
    right-hand side was not formed.
    """
    P = np.ascontiguousarray(user_factors, np.float32)
    Q = np.ascontiguousarray(movie_factors, np.float32)
    k = P.shape[1]
    n_g = index.n_genres
    indptr = np.ascontiguousarray(user_csr[0], np.int64)
    if len(indptr) - 1 != len(P) or len(index.pair_indptr) != len(indptr) or len(index.movie_set) != len(Q):
        raise ValueError(f"the user CSR has {len(indptr) - 1} users for {len(P)} user factors (index: "
                         f"{len(index.pair_indptr) - 1}) and the index {len(index.movie_set)} movies for {len(Q)} "
                         "movie factors")
    n_sets = len(index.set_indptr) - 1
    n_chunks = max(1, min(_N_CHUNKS, len(P)))
    parts = np.zeros((n_chunks, n_g, k), np.float64)
    if movie_residual is None:  # right-hand side by one pass over the ratings, in fixed chunks
        if n_sets and len(P):
            _genre_rhs(indptr, np.ascontiguousarray(user_csr[1], np.int32),
                       np.ascontiguousarray(user_csr[2], np.float32), float(mu),
                       np.ascontiguousarray(user_bias, np.float32), np.ascontiguousarray(movie_bias, np.float32),
                       P, Q, index.movie_set, index.set_indptr, index.set_genres, parts)
        rhs = parts.sum(axis=0).reshape(-1)
    else:  # the residual at y0, from the movies' residual sums
        R = np.asarray(movie_residual, np.float64)
        if R.shape != Q.shape:
            raise ValueError(f"movie_residual must have shape {Q.shape}, got {R.shape}")
        if y0 is None:
            raise ValueError("movie_residual is the residual at y0: pass y0 too")
        has = index.movie_set >= 0
        per_set = np.zeros((n_sets, k), np.float64)
        np.add.at(per_set, index.movie_set[has], R[has])
        r_start = np.zeros((n_g, k), np.float64)
        for s in range(n_sets):
            gs = index.set_genres[index.set_indptr[s]:index.set_indptr[s + 1]]
            r_start[gs] += per_set[s] / np.sqrt(len(gs))
        r_start = r_start.reshape(-1)
    lam = reg * np.maximum(index.genre_ratings, 1.0) ** reg_exponent if weighted else np.full(n_g, reg)
    lam = np.repeat(lam, k)
    args = (P, index.pair_indptr, index.pair_sets, index.pair_counts, index.set_indptr, index.set_genres)

    def matvec(v: np.ndarray) -> np.ndarray:
        _genre_matvec(*args, v.reshape(n_g, k), parts)
        return parts.sum(axis=0).reshape(-1) + lam * v

    _genre_diag(*args, parts)
    diag = parts.sum(axis=0).reshape(-1) + lam
    y = np.zeros(n_g * k) if y0 is None else np.asarray(y0, np.float64).reshape(-1).copy()
    if len(y) != n_g * k:
        raise ValueError(f"y0 must have shape {(n_g, k)}")
    if movie_residual is None:
        r = rhs - matvec(y) if np.any(y) else rhs.copy()
    else:  # h - M y0 from the residual sums, less the penalty's share
        r = r_start - lam * y
        if max_iter is None:
            rhs = r + matvec(y) if np.any(y) else r.copy()  # only for the stopping rule's scale
        else:
            rhs = None
    r0 = float(np.linalg.norm(r))
    goal = tol * max(np.linalg.norm(rhs) if rhs is not None else r0, 1e-300)
    cap = n_g * k if max_iter is None else max(1, min(int(max_iter), n_g * k))
    it = pcg(matvec, diag, y, r, goal, cap)
    if stats is not None:
        if rhs is not None:
            stats.update(cg_iterations=it, relative_residual=float(np.linalg.norm(r) / max(np.linalg.norm(rhs), 1e-300)))
        else:
            stats.update(cg_iterations=it, residual_reduction=float(np.linalg.norm(r) / max(r0, 1e-300)))
    return y.reshape(n_g, k).astype(np.float32)
