"""Gibbs draws for Bayesian matrix factorization: the ALS half-step with a prior and a draw.

Row r (a user, say) with entries (c_j, v_j) and the other side fixed (its factors ``Y``, biases
``c``, the global mean ``mu`` and an optional per-row ``shift``) has, for z = [b, x], the Gaussian
conditional

    precision  A   = alpha * sum_j [1, y_j][1, y_j]^T + diag(prec)
    mean       A^-1 (alpha * sum_j t_j [1, y_j] + prec * mean)

with ``t_j = v_j - mu - c[c_j] - Y[c_j] . shift[r]`` (the ALS half-step's normal equations,
``mfrec.kernels.exact.row_normal_equations``), the noise precision ``alpha`` and the per-dimension
prior ``N(mean, 1/prec)``. With A = R^T R (``exact.factor_row``, which also forms w = R^-T rhs), the
draw is z = R^-1 (w + eps) (``exact.solve_factored``), eps standard normal: mean R^-1 R^-T rhs =
A^-1 rhs, covariance R^-1 R^-T = A^-1.

The implicit ("SVD++") factors are drawn one coordinate at a time, as libFM and myFM draw every
parameter: movie j's implicit factor z_j enters every prediction of every user u who rated j
through ``c_u z_j . Q_i`` (c_u = |N_u|^-1/2); with each user's Gram G_u = sum_i Q_i Q_i^T and
residual product h_u = sum_i e_ui Q_i (both left behind by the user draw), z_jf's conditional is

    precision  alpha * sum_u c_u^2 G_u[f, f] + prec_f
    mean-rhs   alpha * sum_u c_u (h_uf + c_u G_u[f, f] z_jf) + prec_f * mean_f

Dimension by dimension, every z_jf in turn: within dimension f's pass only h_uf is read, and it
moves by -c_u G_u[f, f] delta, so a (j, owner) pair costs O(1) instead of the block draw's O(k^2)
(the other dimensions catch up once per pass, O(k) per owner). The draws depend on the ones before
them, so the passes are sequential; the normals, the Gram diagonals and the final residual
products are prepared in parallel. The same kernel, with the CSRs swapped, draws the "flipped"
implicit factors of users (Rendle 2019).

Random numbers: every row's normals come from a SplitMix64 stream seeded by (seed, sweep, stream,
row), so the chain depends on the seed alone, never on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from mfrec.kernels._config import FASTMATH
from mfrec.kernels.als import SolveError, _as
from mfrec.kernels.predict import _one
from mfrec.kernels.exact import (
    NOT_FINITE,
    NOT_POSITIVE_DEFINITE,
    OK,
    exact_buffers,
    factor_row,
    row_normal_equations,
    solve_factored,
)

_BLOCKS_PER_THREAD = 4
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_PI = 2.0 * np.pi


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _stream_state(seed, sweep, stream, row):
    """The SplitMix64 state of one row's stream: a hash of (seed, sweep, stream, row)."""
    s = _mix(np.uint64(seed) + _GOLDEN)
    s = _mix(s ^ (np.uint64(sweep) * _GOLDEN + np.uint64(stream)))
    return _mix(s ^ (np.uint64(row) + _GOLDEN))


@njit(cache=True)
def _uniform(state):
    """(new state, a uniform double in (0, 1))."""
    state = state + _GOLDEN
    x = _mix(state)
    return state, (np.float64(x >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _normals(state, out, m):
    """Fill out[:m] with standard normals (Box-Muller); returns the new state."""
    i = 0
    while i < m:
        state, u1 = _uniform(state)
        state, u2 = _uniform(state)
        rad = np.sqrt(-2.0 * np.log(u1))
        out[i] = rad * np.cos(_TWO_PI * u2)
        if i + 1 < m:
            out[i + 1] = rad * np.sin(_TWO_PI * u2)
        i += 2
    return state


@njit(cache=True)
def _row_normals(seed, sweep, stream, row, out, m):
    _normals(_stream_state(seed, sweep, stream, row), out, m)


def standard_normals(seed: int, sweep: int, stream: int, row: int, m: int) -> np.ndarray:
    """The m standard normals the draw of row ``row`` uses (for tests and references)."""
    out = np.empty(m + (m % 2), np.float64)
    with np.errstate(over="ignore"):  # SplitMix64 wraps around on purpose (NUMBA_DISABLE_JIT runs)
        _row_normals(np.uint64(seed), np.uint64(sweep), np.uint64(stream), np.uint64(row), out, m)
    return out[:m]


@njit(cache=True, fastmath=FASTMATH)
def _sample_row(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, alpha, prec, prior_rhs,
                eps, out_factors, out_bias, want_gram, gram, resid, G, Xt, z):
    """Draw row r's [b, x]: its normal equations (``row_normal_equations``, into ``G``) scaled by
    the noise precision plus the prior's diagonal, factored (``factor_row``), then the mean solve
    with ``eps`` added between the two triangular solves (``solve_factored``)."""
    k = fixed.shape[1]
    m = k + 1
    row_normal_equations(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, G, Xt)
    if want_gram:
        # keep the unpenalised pieces before factor_row overwrites them: sum y y^T (G[1:m, 1:m],
        # upper triangle; both triangles in gram), sum t y (G[1:m, m]) and sum y (G[0, 1:m], kept
        # in z[m:])
        Gr = gram[r]
        for a in range(k):
            resid[r, a] = G[a + 1, m]
            for b in range(a, k):
                Gr[a, b] = G[a + 1, b + 1]
                Gr[b, a] = G[a + 1, b + 1]
        sum_y = z[m:]
        for a in range(k):
            sum_y[a] = G[0, a + 1]
    if factor_row(G, m, alpha, prec, prior_rhs) != OK:
        return NOT_POSITIVE_DEFINITE
    status = solve_factored(G, m, eps, z)
    if status != OK:
        return status
    out_bias[r] = z[0]
    for a in range(k):
        out_factors[r, a] = z[a + 1]
    if want_gram:
        # h = sum_j e_j y_j with e_j = t_j - b - y_j . x: h = sum t y - b sum y - G x
        h = resid[r]
        sum_y = z[m:]
        for a in range(k):
            h[a] -= z[0] * sum_y[a]
        Gr = gram[r]
        for b in range(k):
            xb = z[b + 1]
            Gb = Gr[b]
            for a in range(k):
                h[a] -= Gb[a] * xb
    return OK


@njit(cache=True, parallel=True)
def _sample_rows(indptr, indices, values, fixed, fixed_bias, mu, row_shift, alpha, prec, prior_rhs, seed, sweep,
                 stream, work64, gather, vec64, eps_buf, out_factors, out_bias, gram, resid, status):
    n_rows = indptr.shape[0] - 1
    k = fixed.shape[1]
    n_blocks = work64.shape[0]
    has_shift = row_shift.shape[0] > 0
    want_gram = gram.shape[0] > 0
    mu32 = np.float32(mu)
    for blk in prange(n_blocks):
        # rows blk, blk + n_blocks, ...; each block owns its scratch and every row initialises what
        # it reads, so a row's draw depends on (seed, sweep, stream, row) only, never on the threads
        G = work64[blk]
        Xt = gather[blk, 0]
        z = vec64[blk]
        eps = eps_buf[blk]
        for r in range(blk, n_rows, n_blocks):
            _normals(_stream_state(seed, sweep, stream, np.uint64(r)), eps, k + 1)
            status[r] = _sample_row(r, indptr[r], indptr[r + 1], indices, values, fixed, fixed_bias, mu32, row_shift,
                                    has_shift, alpha, prec, prior_rhs, eps[:k + 1], out_factors, out_bias, want_gram,
                                    gram, resid, G, Xt, z)


def _raise_on(status, what: str) -> None:
    bad = np.flatnonzero(status)
    if len(bad):
        why = "is not positive definite" if status[bad[0]] == NOT_POSITIVE_DEFINITE else "gave NaN or inf"
        raise SolveError(f"the Gibbs draw for {what} {bad[0]} {why} ({len(bad)} {what}s failed); "
                         "check the ratings for NaN/inf")


def _check_gram(gram, resid, n_rows: int, k: int) -> None:
    if (gram.shape != (n_rows, k, k) or resid.shape != (n_rows, k) or gram.dtype != np.float32
            or resid.dtype != np.float64 or not gram.flags.c_contiguous or not resid.flags.c_contiguous):
        raise ValueError(f"gram and resid must be C-contiguous arrays of shapes {(n_rows, k, k)} (float32) and "
                         f"{(n_rows, k)} (float64)")


def _prior(prec, mean, m: int) -> tuple[np.ndarray, np.ndarray]:
    prec = _as(prec, np.float64, "prec", 1)
    mean = _as(mean, np.float64, "mean", 1)
    if prec.shape != (m,) or mean.shape != (m,):
        raise ValueError(f"prec and mean must have {m} entries, got {prec.shape} and {mean.shape}")
    if not np.all(prec > 0) or not np.all(np.isfinite(prec)) or not np.all(np.isfinite(mean)):
        raise ValueError("prior precisions must be positive and finite, prior means finite")
    return prec, mean


def sample_rows(indptr, indices, values, fixed_factors, fixed_bias, mu: float, *, alpha: float, prec, mean,
                seed: int, sweep: int, stream: int, row_shift=None, out_factors=None, out_bias=None,
                gram=None, resid=None, what: str = "row") -> tuple[np.ndarray, np.ndarray]:
    """One Gibbs half-sweep: draw every row's [bias, factors] from its Gaussian conditional.

    The arguments are those of ``mfrec.kernels.als.solve_rows`` with the ridge replaced by the noise
    precision ``alpha`` and the prior ``N(mean, 1/prec)`` of [bias, factor_1..k] (``prec`` and
    ``mean`` have k+1 entries); (``seed``, ``sweep``, ``stream``) pick the random numbers. With
    ``gram`` (n_rows, k, k) float32 and ``resid`` (n_rows, k) float64 given, each row's Gram sum y y^T and
    residual product sum e y (after the draw) are written there, for the implicit-factor draw.
    Returns ``(out_factors, out_bias)`` (overwritten in place when given).
    """
    indptr = _as(indptr, np.int64, "indptr", 1)
    indices = _as(indices, np.int32, "indices", 1)
    values = _as(values, np.float32, "values", 1)
    fixed = _as(fixed_factors, np.float32, "fixed_factors", 2)
    fbias = _as(fixed_bias, np.float32, "fixed_bias", 1)
    n_rows, (n_cols, k) = len(indptr) - 1, fixed.shape
    nnz = len(indices)
    if n_rows < 0 or indptr[0] != 0 or indptr[-1] != nnz or len(values) != nnz or np.any(np.diff(indptr) < 0):
        raise ValueError(f"malformed CSR: indptr must rise from 0 to nnz={nnz} and values must have nnz entries")
    if len(fbias) != n_cols:
        raise ValueError(f"fixed_bias has {len(fbias)} entries for {n_cols} fixed rows")
    if nnz and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(f"CSR column indices must lie in 0..{n_cols - 1}")
    if not (alpha > 0) or not np.isfinite(alpha):
        raise ValueError(f"the noise precision alpha must be positive and finite, got {alpha}")
    prec, mean = _prior(prec, mean, k + 1)
    shift = np.zeros((0, k), np.float32) if row_shift is None else _as(row_shift, np.float32, "row_shift", 2)
    if row_shift is not None and shift.shape != (n_rows, k):
        raise ValueError(f"row_shift must have shape {(n_rows, k)}, got {shift.shape}")
    if out_factors is None:
        out_factors = np.zeros((n_rows, k), np.float32)
    if out_bias is None:
        out_bias = np.zeros(n_rows, np.float32)
    for name, arr, shape in (("out_factors", out_factors, (n_rows, k)), ("out_bias", out_bias, (n_rows,))):
        if arr.shape != shape or arr.dtype != np.float32 or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous float32 array of shape {shape}")
    if (gram is None) != (resid is None):
        raise ValueError("give both gram and resid, or neither")
    if gram is None:
        gram, resid = np.zeros((0, k, k), np.float32), np.zeros((0, k), np.float64)
    else:
        _check_gram(gram, resid, n_rows, k)
    if n_rows == 0:
        return out_factors, out_bias
    status = np.zeros(n_rows, np.int8)
    n_blocks = max(1, min(n_rows, _BLOCKS_PER_THREAD * numba.get_num_threads()))
    work64, gather = exact_buffers(n_blocks, k)  # the Gram (then the factor), the gathered rows
    vec64 = np.zeros((n_blocks, 2 * k + 1), np.float64)  # the draw (k + 1), sum y (k)
    eps = np.zeros((n_blocks, k + 2), np.float64)  # _normals fills pairs
    with np.errstate(over="ignore"):  # SplitMix64 wraps around on purpose (NUMBA_DISABLE_JIT runs)
        _sample_rows(indptr, indices, values, fixed, fbias, float(mu), shift, float(alpha), prec, prec * mean,
                     np.uint64(seed), np.uint64(sweep), np.uint64(stream), work64, gather, vec64, eps, out_factors,
                     out_bias, gram, resid, status)
    _raise_on(status, what)
    return out_factors, out_bias


@njit(cache=True, parallel=True)
def _implicit_setup(seed, sweep, stream, eps, gram, resid, gdiag, H0):
    """The parallel part of the coordinate-wise implicit draws: every z_j's k normals (stream j), and
    every owner's Gram diagonal and residual product, transposed to one contiguous row per dimension."""
    k = eps.shape[1]
    for j in prange(eps.shape[0]):
        _normals(_stream_state(seed, sweep, stream, np.uint64(j)), eps[j], k)
    for u in prange(gram.shape[0]):
        for a in range(k):
            gdiag[a, u] = gram[u, a, a]
            H0[a, u] = resid[u, a]


@njit(cache=True, fastmath=FASTMATH)
def _implicit_passes(owner_indptr, owner_rows, coef, gram, gdiag, H0, Z, alpha, prec, mean, eps, moved, base, status):
    """Dimension by dimension, every z_jf in turn from its scalar conditional given everything else.

    h_u (owner u's residual product sum_i e_ui Q_i) is never updated in place: with ``moved[f', u]``
    the change of u's implicit part c_u sum_j z_j in dimension f' so far, h_uf = H0[f, u] - sum_f'
    G_u[f, f'] moved[f', u]. During dimension f's pass only moved[f] changes, so ``base`` = H0[f] -
    (the finished dimensions' terms) is formed once per pass, and each (j, owner) pair costs O(1)."""
    n = owner_indptr.shape[0] - 1
    k = Z.shape[1]
    n_owners = gram.shape[0]
    for f in range(k):
        for u in range(n_owners):
            s = H0[f, u]
            Gf = gram[u, f]
            for g in range(f):
                s -= Gf[g] * moved[g, u]
            base[u] = s
        gd = gdiag[f]
        mv = moved[f]
        for j in range(n):
            if status[j] != OK:
                continue
            old = np.float64(Z[j, f])
            s = 0.0
            d = 0.0
            for pp in range(owner_indptr[j], owner_indptr[j + 1]):
                u = owner_rows[pp]
                c = coef[u]
                cg = c * gd[u]
                # c_u (h_uf + c_u G_u[f, f] z_jf): the residuals without z_jf's own part
                s += c * (base[u] - gd[u] * mv[u]) + cg * c * old
                d += c * cg
            p = alpha * d + prec[f]
            if not (p > 0.0) or not np.isfinite(p):
                status[j] = NOT_POSITIVE_DEFINITE
                continue
            new = (alpha * s + prec[f] * mean[f]) / p + eps[j, f] / np.sqrt(p)
            if not np.isfinite(new):
                status[j] = NOT_FINITE
                continue
            Z[j, f] = new
            delta = np.float64(Z[j, f]) - old
            for pp in range(owner_indptr[j], owner_indptr[j + 1]):
                u = owner_rows[pp]
                mv[u] += coef[u] * delta


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _implicit_finish(gram, H0, moved, resid):
    """resid[u] = h_u after every draw: H0[:, u] - G_u moved[:, u] (each owner its own output)."""
    k = H0.shape[0]
    for u in prange(gram.shape[0]):
        G = gram[u]
        for a in range(k):
            s = H0[a, u]
            Ga = G[a]
            for b in range(k):
                s -= Ga[b] * moved[b, u]
            resid[u, a] = s


def sample_implicit(owner_indptr, owner_rows, coef, gram, resid, implicit_factors, *, alpha: float, prec, mean,
                    seed: int, sweep: int, stream: int, what: str = "implicit factor") -> np.ndarray:
    """Draw every implicit factor z_j in turn (in place in ``implicit_factors``, (n, k) float32).

    ``owner_indptr``/``owner_rows``: for each j, the rows (users, for SVD++ factors of movies) whose
    effective vector holds ``coef[row] * z_j``; ``gram`` (n_rows, k, k) and ``resid`` (n_rows, k)
    are those rows' Gram and residual products from ``sample_rows`` (``resid`` is updated as the
    z_j move). ``prec`` and ``mean`` (k entries) are the prior. Coordinate-wise Gibbs, dimension by
    dimension, each draw conditioning on the ones before it; z_j's k normals are those of stream
    (seed, sweep, stream, j).
    """
    Z = implicit_factors
    n, k = Z.shape
    ptr = _as(owner_indptr, np.int64, "owner_indptr", 1)
    rows = _as(owner_rows, np.int32, "owner_rows", 1)
    coef = _as(coef, np.float64, "coef", 1)
    if len(ptr) != n + 1 or ptr[0] != 0 or ptr[-1] != len(rows):
        raise ValueError(f"owner_indptr must have {n + 1} entries rising from 0 to {len(rows)}")
    _check_gram(gram, resid, len(coef), k)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(coef)):
        raise ValueError(f"owner rows must lie in 0..{len(coef) - 1}")
    if Z.dtype != np.float32 or not Z.flags.c_contiguous:
        raise ValueError("implicit_factors must be a C-contiguous float32 array")
    prec, mean = _prior(prec, mean, k)
    status = np.zeros(n, np.int8)
    with np.errstate(over="ignore"):  # SplitMix64 wraps around on purpose (NUMBA_DISABLE_JIT runs)
        n_owners = len(coef)
        eps = np.zeros((n, k), np.float64)
        gdiag, H0 = np.zeros((k, n_owners)), np.zeros((k, n_owners))
        moved, base = np.zeros((k, n_owners)), np.zeros(n_owners)
        _implicit_setup(np.uint64(seed), np.uint64(sweep), np.uint64(stream), eps, gram, resid, gdiag, H0)
        _implicit_passes(ptr, rows, coef, gram, gdiag, H0, Z, float(alpha), prec, mean, eps, moved, base, status)
        _implicit_finish(gram, H0, moved, resid)
    _raise_on(status, what)
    return Z


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _implicit_part(indptr, indices, coef, Z, out):
    n = indptr.shape[0] - 1
    k = Z.shape[1]
    for r in prange(n):
        for a in range(k):
            out[r, a] = 0.0
        c = np.float32(coef[r])
        for jj in range(indptr[r], indptr[r + 1]):
            j = indices[jj]
            for a in range(k):
                out[r, a] += c * Z[j, a]


def implicit_part(indptr, indices, coef, implicit_factors, out=None) -> np.ndarray:
    """coef[r] * sum_{j in row r} Z[j] for every row of a CSR: (n_rows, k) float32."""
    ptr = _as(indptr, np.int64, "indptr", 1)
    idx = _as(indices, np.int32, "indices", 1)
    c = _as(coef, np.float64, "coef", 1)
    Z = _as(implicit_factors, np.float32, "implicit_factors", 2)
    if len(idx) and (idx.min() < 0 or idx.max() >= len(Z)):
        raise ValueError(f"CSR column indices must lie in 0..{len(Z) - 1}")
    if out is None:
        out = np.empty((len(ptr) - 1, Z.shape[1]), np.float32)
    _implicit_part(ptr, idx, c, Z, out)
    return out


@njit(cache=True, parallel=True)
def _time_residuals(indptr, indices, values, mu, bu, bi, P, Q, out):
    """rating - (mu + b_u + b_i + p_u . q_i) of every rating of the user CSR, float64, in its order."""
    mu32 = np.float32(mu)
    for r in prange(indptr.shape[0] - 1):
        for p in range(indptr[r], indptr[r + 1]):
            out[p] = np.float64(values[p]) - np.float64(_one(r, indices[p], mu32, bu, bi, P, Q))


@njit(cache=True, parallel=True)
def _time_group_draw(indptr, pos, resid, own, own_ptr, other, other_bias, alpha, lam, mean, counts, eps, sums, out):
    """Every bias group owned by a row of the CSR (a user's days, a movie's time bins), drawn from its
    conditional: s_g = sum over the group's ratings of (residual - the other group's bias),
    p_g = alpha n_g + lam, b_g = (alpha s_g + lam mean) / p_g + eps_g / sqrt(p_g). A row's groups
    hold only that row's ratings, so each row owns its output; ``pos`` maps a CSR position to the
    position of ``resid``/``own``/``other`` (empty: the same)."""
    mapped = pos.shape[0] > 0
    for r in prange(indptr.shape[0] - 1):
        for g in range(own_ptr[r], own_ptr[r + 1]):
            sums[g] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            q = pos[p] if mapped else p
            sums[own[q]] += resid[q] - other_bias[other[q]]
        for g in range(own_ptr[r], own_ptr[r + 1]):
            prec = alpha * counts[g] + lam
            out[g] = (alpha * sums[g] + lam * mean) / prec + eps[g] / np.sqrt(prec)


@njit(cache=True, parallel=True)
def _time_offsets(indptr, values, pos, resid, ud, ib, b_ud, b_ib, want_sse, out_values, row_sse):
    """The CSR's ratings less their time biases (float32, into ``out_values``) and, with
    ``want_sse``, each row's sum of squared residuals of the full prediction."""
    mapped = pos.shape[0] > 0
    for r in prange(indptr.shape[0] - 1):
        s = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            q = pos[p] if mapped else p
            off = np.float32(b_ud[ud[q]] + b_ib[ib[q]])
            out_values[p] = values[p] - off
            if want_sse:
                e = resid[q] - np.float64(off)
                s += e * e
        row_sse[r] = s


def time_bias_draw(ucsr, mcsr, ud, ib, m2u, ud_ptr, ib_ptr, ud_counts, ib_counts, b_ud, b_ib, mu: float, user_bias,
                   movie_bias, user_factors, movie_factors, *, alpha: float, ud_prior, ib_prior, ud_eps, ib_eps,
                   user_values, movie_values, resid=None) -> float:
    """One Gibbs draw of the time-aware bias groups, then the ratings less them; returns the SSE.

    The (user, day) groups first (``b_ud`` in place: each user's days drawn given the current
    (movie, bin) biases), then the (movie, bin) groups (``b_ib``, given the new day biases), with
    the normals ``ud_eps`` / ``ib_eps`` (one per group) and the priors (mean, precision). ``ud`` and
    ``ib`` are each training rating's group in the user CSR's order, ``m2u`` maps a movie-CSR
    position to its user-CSR position, ``ud_ptr``/``ib_ptr`` (sorted groups) give a user's/movie's
    groups. ``user_values``/``movie_values`` (float32, each CSR's order) get the ratings less both
    biases, for the next sweep's row draws; the return value is the sum of squared residuals of
    the full prediction (the noise precision's statistic). ``resid``: an optional float64 scratch of
    one entry per rating. Parallel over users, then movies; the result does not depend on the
    number of threads.
    """
    empty = np.zeros(0, np.int32)
    if resid is None:
        resid = np.empty(len(ucsr.indices))
    _time_residuals(ucsr.indptr, ucsr.indices, ucsr.values, float(mu), user_bias, movie_bias, user_factors,
                    movie_factors, resid)
    _time_group_draw(ucsr.indptr, empty, resid, ud, ud_ptr, ib, b_ib, float(alpha), float(ud_prior[1]),
                     float(ud_prior[0]), ud_counts, ud_eps, np.zeros(len(b_ud)), b_ud)
    _time_group_draw(mcsr.indptr, m2u, resid, ib, ib_ptr, ud, b_ud, float(alpha), float(ib_prior[1]),
                     float(ib_prior[0]), ib_counts, ib_eps, np.zeros(len(b_ib)), b_ib)
    row_sse = np.zeros(len(ucsr.indptr) - 1)
    _time_offsets(ucsr.indptr, ucsr.values, empty, resid, ud, ib, b_ud, b_ib, True, user_values, row_sse)
    _time_offsets(mcsr.indptr, mcsr.values, m2u, resid, ud, ib, b_ud, b_ib, False, movie_values,
                  np.zeros(len(mcsr.indptr) - 1))
    return float(row_sse.sum())


def normal_gamma_draw(rng: np.random.Generator, theta: np.ndarray, *, mu0: float = 0.0, gamma0: float = 1.0,
                      alpha0: float = 1.0, beta0: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(mean, precision) per column of ``theta`` (n, d) from the Normal-Gamma posterior.

    Prior: lambda_d ~ Gamma(alpha0, rate beta0), mean_d ~ N(mu0, 1 / (gamma0 lambda_d)); the
    columns' n values are N(mean_d, 1 / lambda_d). Conjugate: draw lambda_d, then mean_d.
    """
    t = np.asarray(theta, np.float64)
    n = t.shape[0]
    xbar = t.mean(axis=0) if n else np.zeros(t.shape[1])
    centre = (n * xbar + gamma0 * mu0) / (n + gamma0)
    ss = ((t - xbar) ** 2).sum(axis=0) + gamma0 * n / (n + gamma0) * (xbar - mu0) ** 2
    shape = alpha0 + 0.5 * n  # the marginal posterior of lambda (mean integrated out), then the mean given it
    rate = beta0 + 0.5 * ss
    lam = rng.gamma(shape, 1.0 / rate)
    mean = rng.normal(centre, 1.0 / np.sqrt((n + gamma0) * lam))
    return mean, lam
