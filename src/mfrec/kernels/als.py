"""The ALS half-step: one ridge regression per row of a CSR matrix, for [bias, factors] together.

For row r (a user, say) with entries (c_j, v_j) — the column index (a movie) and the rating — the
other side is fixed: its factors ``Y`` (n_cols, k), its biases ``c`` and the global mean ``mu``.
With ``t_j = v_j - mu - c[c_j] - Y[c_j] . shift[r]`` the kernel solves

    min_{b, x}  sum_j (t_j - b - Y[c_j] . x)^2  +  reg_bias * b^2  +  lam_r * |x|^2

where ``lam_r = reg * n_r ** reg_exponent`` with weighted-lambda regularisation (n_r = the row's
entry count; exponent 1 is classic ALS-WR) and ``lam_r = reg`` without. The bias is the "constant-one column" of a (k+1)-dim system
``A z = rhs`` with ``A = sum_j [1, y_j][1, y_j]^T + diag(reg_bias, lam_r, ...)``.

The same kernel serves

- users:   user-CSR, Y = the movies' effective factors (q_i + |G_i|^-1/2 sum_g y_g), c = movie biases;
- movies:  movie-CSR, Y = user factors, c = user biases, and for mf-genre ``shift`` = each movie's
           genre part |G_i|^-1/2 sum_g y_g, so the genre term moves into the offset;
- fold-in: a one-row CSR of a new user's ratings against the trained movies.

Solvers: ``cholesky`` (exact, float64 normal equations) and ``cg`` (Jacobi-preconditioned
conjugate gradient warm-started from the current row, ``cg_steps`` iterations, float32, never
forming A: each step streams the row's ``Y`` rows once, O(n_r k) instead of O(n_r k^2)).
An empty row gets bias 0 and zero factors.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from mfrec.errors import ModelError
from mfrec.kernels._config import FASTMATH
from mfrec.kernels.csr import csr_rows

SOLVERS = {"cholesky": 0, "cg": 1}
OK, NOT_POSITIVE_DEFINITE, NOT_FINITE = 0, 1, 2
_BLOCKS_PER_THREAD = 4
_GENRE_BLOCK = 1 << 17  # rows per BLAS block in the genre normal equations


class SolveError(ModelError):
    """A per-row ridge solve failed (matrix not positive definite, or NaN/inf in the result)."""


@njit(cache=True, fastmath=FASTMATH)
def _row_target(values, indices, jj, mu, fixed, fixed_bias, row_shift, r, has_shift):
    c = indices[jj]
    t = values[jj] - mu - fixed_bias[c]
    if has_shift:
        s = np.float32(0.0)
        for a in range(fixed.shape[1]):
            s += fixed[c, a] * row_shift[r, a]
        t -= s
    return c, t


@njit(cache=True, fastmath=FASTMATH)
def _assemble_row(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, A, rhs):
    """The row's unpenalised normal equations: A = sum_j [1, y_j][1, y_j]^T (upper triangle) and
    rhs = sum_j t_j [1, y_j], in float64 (shared by the ALS solve and the Gibbs draw)."""
    k = fixed.shape[1]
    A[:, :] = 0.0
    rhs[:] = 0.0
    for jj in range(start, end):
        c, t = _row_target(values, indices, jj, mu, fixed, fixed_bias, row_shift, r, has_shift)
        A[0, 0] += 1.0
        rhs[0] += t
        for a in range(k):
            ya = np.float64(fixed[c, a])
            A[0, a + 1] += ya
            rhs[a + 1] += t * ya
            for b in range(a, k):
                A[a + 1, b + 1] += ya * fixed[c, b]


@njit(cache=True, fastmath=FASTMATH)
def _cholesky_upper(A, m):
    """In-place upper Cholesky of A[:m, :m] = R^T R (R in the upper triangle); returns a status."""
    for j in range(m):
        s = A[j, j]
        for p in range(j):
            s -= A[p, j] * A[p, j]
        if not (s > 0.0) or not np.isfinite(s):
            return NOT_POSITIVE_DEFINITE
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, m):
            s = A[j, i]
            for p in range(j):
                s -= A[p, j] * A[p, i]
            A[j, i] = s / d
    return OK


@njit(cache=True, fastmath=FASTMATH)
def _solve_lower_t(R, v, m):
    """v <- R^-T v for the upper-triangular R (forward substitution)."""
    for i in range(m):
        s = v[i]
        for p in range(i):
            s -= R[p, i] * v[p]
        v[i] = s / R[i, i]


@njit(cache=True, fastmath=FASTMATH)
def _solve_upper(R, v, m):
    """v <- R^-1 v for the upper-triangular R (back substitution)."""
    for i in range(m - 1, -1, -1):
        s = v[i]
        for p in range(i + 1, m):
            s -= R[i, p] * v[p]
        v[i] = s / R[i, i]


@njit(cache=True, fastmath=FASTMATH)
def cholesky_solve(A, rhs, m):
    """Solve ``A z = rhs`` for the symmetric positive definite ``A[:m, :m]`` (only its upper triangle is
    read; it is overwritten by the Cholesky factor) in place: ``z`` replaces ``rhs[:m]``. Returns OK,
    NOT_POSITIVE_DEFINITE or NOT_FINITE. Shared by the explicit and the implicit (``mfrec.kernels.ials``)
    half-steps; the Gibbs draw uses its pieces."""
    if _cholesky_upper(A, m) != OK:
        return NOT_POSITIVE_DEFINITE
    # R^T y = rhs, then R z = y
    _solve_lower_t(A, rhs, m)
    _solve_upper(A, rhs, m)
    for i in range(m):
        if not np.isfinite(rhs[i]):
            return NOT_FINITE
    return OK


@njit(cache=True, fastmath=FASTMATH)
def _solve_row_cholesky(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift,
                        lam, lam_b, out_factors, out_bias, A, rhs):
    k = fixed.shape[1]
    m = k + 1
    _assemble_row(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, A, rhs)
    A[0, 0] += lam_b
    for a in range(1, m):
        A[a, a] += lam
    status = cholesky_solve(A, rhs, m)
    if status != OK:
        return status
    out_bias[r] = rhs[0]
    for a in range(k):
        out_factors[r, a] = rhs[a + 1]
    return OK


@njit(cache=True, fastmath=FASTMATH)
def _solve_row_cg(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift,
                  lam, lam_b, cg_steps, out_factors, out_bias, x, res, diag, p, ap, buf):
    k = fixed.shape[1]
    n = end - start
    xb = out_bias[r]
    for a in range(k):
        x[a] = out_factors[r, a]
        res[a] = 0.0
        diag[a] = lam
    # one pass over the row: gather its Y rows into the contiguous buffer (every CG step then
    # streams the buffer instead of gathering from Y again), the residual of the warm start
    # res = rhs - A x, and the Jacobi preconditioner diag(A)
    resb = np.float32(0.0)
    for j in range(n):
        c, t = _row_target(values, indices, start + j, mu, fixed, fixed_bias, row_shift, r, has_shift)
        d = xb
        for a in range(k):
            ya = fixed[c, a]
            buf[j, a] = ya
            d += ya * x[a]
        e = t - d
        resb += e
        for a in range(k):
            ya = buf[j, a]
            res[a] += e * ya
            diag[a] += ya * ya
    resb -= lam_b * xb
    diagb = np.float32(n) + lam_b
    for a in range(k):
        res[a] -= lam * x[a]
    # preconditioned CG; the bias is coordinate "b" of every vector
    pb = resb / diagb
    rz = resb * pb
    for a in range(k):
        p[a] = res[a] / diag[a]
        rz += res[a] * p[a]
    if not np.isfinite(rz):
        return NOT_FINITE
    for _ in range(cg_steps):
        if not (rz > 1e-30):
            break
        apb = np.float32(0.0)
        for a in range(k):
            ap[a] = 0.0
        for j in range(n):
            d = pb
            for a in range(k):
                d += buf[j, a] * p[a]
            apb += d
            for a in range(k):
                ap[a] += d * buf[j, a]
        apb += lam_b * pb
        pap = pb * apb
        for a in range(k):
            ap[a] += lam * p[a]
            pap += p[a] * ap[a]
        if not (pap > 0.0):
            if not np.isfinite(pap):
                return NOT_FINITE
            break
        alpha = rz / pap
        xb += alpha * pb
        resb -= alpha * apb
        rz_new = resb * resb / diagb
        for a in range(k):
            x[a] += alpha * p[a]
            res[a] -= alpha * ap[a]
            rz_new += res[a] * res[a] / diag[a]
        beta = rz_new / rz
        rz = rz_new
        pb = resb / diagb + beta * pb
        for a in range(k):
            p[a] = res[a] / diag[a] + beta * p[a]
    if not np.isfinite(xb):
        return NOT_FINITE
    for a in range(k):
        if not np.isfinite(x[a]):
            return NOT_FINITE
    out_bias[r] = xb
    for a in range(k):
        out_factors[r, a] = x[a]
    return OK


@njit(cache=True, parallel=True, nogil=True)  # nogil: a Dask worker keeps talking while it solves
def _half_step(indptr, indices, values, fixed, fixed_bias, mu, row_shift, reg, reg_bias, weighted,
               reg_exponent, solver, cg_steps, work64, work32, bufs, out_factors, out_bias, status):
    n_rows = indptr.shape[0] - 1
    k = fixed.shape[1]
    n_blocks = work64.shape[0]
    has_shift = row_shift.shape[0] > 0
    mu32 = np.float32(mu)
    for blk in prange(n_blocks):
        # per-block work buffers, allocated (zeroed) by the caller: each block owns the rows
        # blk, blk + n_blocks, ... and its slice of the buffers
        A = work64[blk, :k + 1, :]
        rhs = work64[blk, k + 1, :]
        x = work32[blk, 0]
        res = work32[blk, 1]
        diag = work32[blk, 2]
        p = work32[blk, 3]
        ap = work32[blk, 4]
        buf = bufs[blk]
        for r in range(blk, n_rows, n_blocks):
            start = indptr[r]
            end = indptr[r + 1]
            if end == start:
                out_bias[r] = 0.0
                for a in range(k):
                    out_factors[r, a] = 0.0
                status[r] = OK
                continue
            lam = reg * np.float64(end - start) ** reg_exponent if weighted else reg
            if solver == 0:
                status[r] = _solve_row_cholesky(r, start, end, indices, values, fixed, fixed_bias, mu32,
                                                row_shift, has_shift, np.float64(lam), np.float64(reg_bias),
                                                out_factors, out_bias, A, rhs)
            else:
                status[r] = _solve_row_cg(r, start, end, indices, values, fixed, fixed_bias, mu32, row_shift,
                                          has_shift, np.float32(lam), np.float32(reg_bias), cg_steps,
                                          out_factors, out_bias, x, res, diag, p, ap, buf)


def _as(a, dtype, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


def solve_rows(
    indptr,
    indices,
    values,
    fixed_factors,
    fixed_bias,
    mu: float,
    *,
    reg: float,
    reg_bias: float,
    weighted: bool = True,
    reg_exponent: float = 1.0,
    solver: str = "cholesky",
    cg_steps: int = 3,
    row_shift=None,
    out_factors=None,
    out_bias=None,
    what: str = "row",
) -> tuple[np.ndarray, np.ndarray]:
    """One ALS half-step: solve every row of a CSR for [bias, factors] with the other side fixed.

    ``indptr`` (n_rows+1), ``indices`` (nnz, columns of ``fixed_factors``), ``values`` (nnz ratings);
    ``fixed_factors`` (n_cols, k) and ``fixed_bias`` (n_cols,) are the fixed side, ``mu`` the
    global mean; the factor penalty is ``reg * n_r ** reg_exponent`` when ``weighted``, else ``reg``; ``row_shift`` (n_rows, k), optional, adds ``fixed_factors[c] . row_shift[r]`` to
    every prediction of row r (the genre part when solving movies). ``out_factors`` (n_rows, k)
    float32 and ``out_bias`` (n_rows,) float32 are overwritten in place when given (and are the CG
    warm start); new zero arrays otherwise. Returns ``(out_factors, out_bias)``.

    Raises ``SolveError`` naming the first ``what`` (e.g. "user") whose solve failed.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
    if cg_steps < 1:
        raise ValueError(f"cg_steps must be at least 1, got {cg_steps}")
    if not (0 <= reg_exponent <= 2):
        raise ValueError(f"reg_exponent must lie in 0..2, got {reg_exponent}")
    if not (reg > 0) or not (reg_bias >= 0):
        raise ValueError(f"reg must be > 0 and reg_bias >= 0, got reg={reg}, reg_bias={reg_bias}")
    fixed = _as(fixed_factors, np.float32, "fixed_factors", 2)
    fbias = _as(fixed_bias, np.float32, "fixed_bias", 1)
    n_cols, k = fixed.shape
    indptr, indices, values = half_step_csr(indptr, indices, values, n_cols)
    n_rows = len(indptr) - 1
    if len(fbias) != n_cols:
        raise ValueError(f"fixed_bias has {len(fbias)} entries for {n_cols} fixed rows")
    if row_shift is None:
        shift = np.zeros((0, k), np.float32)
    else:
        shift = _as(row_shift, np.float32, "row_shift", 2)
        if shift.shape != (n_rows, k):
            raise ValueError(f"row_shift must have shape {(n_rows, k)}, got {shift.shape}")
    if out_factors is None:
        out_factors = np.zeros((n_rows, k), np.float32)
    if out_bias is None:
        out_bias = np.zeros(n_rows, np.float32)
    for name, arr, shape in (("out_factors", out_factors, (n_rows, k)), ("out_bias", out_bias, (n_rows,))):
        if arr.shape != shape or arr.dtype != np.float32 or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous float32 array of shape {shape}")
    status = np.zeros(n_rows, np.int8)
    if n_rows == 0:
        return out_factors, out_bias
    # rows are dealt round-robin to a few blocks per thread (balances power-law row lengths); with
    # cg each block owns one (longest row x k) float32 gather buffer
    n_blocks = n_blocks_for(n_rows)
    max_row = int(np.max(np.diff(indptr))) if SOLVERS[solver] == 1 else 0
    work64 = np.zeros((n_blocks, k + 2, k + 1), np.float64)  # A (k+1 x k+1) and rhs per block
    work32 = np.zeros((n_blocks, 5, k), np.float32)  # x, res, diag, p, ap per block
    bufs = np.zeros((n_blocks, max_row, k), np.float32)  # cg: the row's gathered fixed factors
    _half_step(indptr, indices, values, fixed, fbias, float(mu), shift, float(reg), float(reg_bias),
               bool(weighted), float(reg_exponent), SOLVERS[solver], int(cg_steps), work64, work32, bufs,
               out_factors, out_bias, status)
    raise_on_status(status, solver, what)
    return out_factors, out_bias


# -- shared by the explicit and the implicit half-steps ------------------------------------------
def half_step_csr(indptr, indices, values, n_cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr int64, indices int32, values float32)`` of a half-step's CSR, checked against ``n_cols``
    fixed rows; ``ValueError`` when malformed."""
    indptr = _as(indptr, np.int64, "indptr", 1)
    indices = _as(indices, np.int32, "indices", 1)
    values = _as(values, np.float32, "values", 1)
    nnz = len(indices)
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != nnz or len(values) != nnz or np.any(np.diff(indptr) < 0):
        raise ValueError(f"malformed CSR: indptr must rise from 0 to nnz={nnz} and values must have nnz entries")
    if nnz and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(f"CSR column indices must lie in 0..{n_cols - 1}")
    return indptr, indices, values


def n_blocks_for(n_rows: int) -> int:
    """How many row blocks a half-step deals its rows to, round-robin (a few per thread balances
    power-law row lengths); each block owns its scratch buffers."""
    return max(1, min(n_rows, _BLOCKS_PER_THREAD * numba.get_num_threads()))


def raise_on_status(status: np.ndarray, solver: str, what: str) -> None:
    """``SolveError`` naming the first row whose solve failed, if any did."""
    bad = np.flatnonzero(status)
    if len(bad):
        why = "is not positive definite" if status[bad[0]] == NOT_POSITIVE_DEFINITE else "gave NaN or inf"
        raise SolveError(
            f"the {solver} solve for {what} {bad[0]} {why} ({len(bad)} {what}s failed); "
            "check the ratings for NaN/inf or raise --reg"
        )


# -- genre factors -------------------------------------------------------------------------------
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


def solve_genre_factors(
    sets, set_indptr, set_movies, n_genres: int, movie_csr, mu: float, user_bias, movie_bias, user_factors,
    movie_factors, *, reg: float, weighted: bool = True, reg_exponent: float = 1.0,
) -> np.ndarray:
    """The genre factors y (n_genres, k) as one joint ridge regression of size n_genres*k.

    With everything else fixed, the residual e_ui = r_ui - mu - b_u - b_i - p_u.q_i is fitted by
    p_u . |G_i|^-1/2 sum_{g in G_i} y_g. Its normal equations are summed per genre set
    (S = sum p_u p_u^T, h = sum e_ui p_u over the set's ratings) and assembled into one
    (n_genres*k)^2 system. With weighted-lambda, y_g's penalty is ``reg`` times (the number of
    ratings of movies with genre g) ** ``reg_exponent``.
    """
    import scipy.linalg

    from mfrec.kernels.predict import predict

    P = np.ascontiguousarray(user_factors, dtype=np.float32)
    k = P.shape[1]
    n_sets = len(sets)
    S = np.zeros((n_sets, k, k), np.float64)
    h = np.zeros((n_sets, k), np.float64)
    indptr, users, ratings = movie_csr
    indptr = np.asarray(indptr, np.int64)
    if n_sets:
        # positions of the movie-CSR entries, grouped by genre set
        set_movies = np.asarray(set_movies, np.int64)
        offsets, pos = csr_rows(indptr, set_movies)
        bounds = offsets[np.asarray(set_indptr, np.int64)]
        u = np.asarray(users, np.int32)[pos]
        m = np.repeat(set_movies.astype(np.int32), np.diff(offsets))
        e = np.asarray(ratings, np.float32)[pos] - predict(u, m, mu, np.ascontiguousarray(user_bias, np.float32),
                                                            np.ascontiguousarray(movie_bias, np.float32), P,
                                                            np.ascontiguousarray(movie_factors, np.float32))
        # S = sum p_u p_u^T and h = sum e p_u per set, by BLAS on blocks of gathered rows
        for g in range(n_sets):
            for c0 in range(int(bounds[g]), int(bounds[g + 1]), _GENRE_BLOCK):
                c1 = min(c0 + _GENRE_BLOCK, int(bounds[g + 1]))
                X = P[u[c0:c1]]  # float32 BLAS within a block, float64 across blocks
                S[g] += X.T @ X
                h[g] += X.T @ e[c0:c1]
    counts = np.diff(np.asarray(indptr))
    M = np.zeros((n_genres * k, n_genres * k), np.float64)
    rhs = np.zeros(n_genres * k, np.float64)
    n_g = np.zeros(n_genres, np.float64)
    for s, gs in enumerate(sets):
        w2 = 1.0 / len(gs)
        w = np.sqrt(w2)
        n_s = counts[set_movies[set_indptr[s]:set_indptr[s + 1]]].sum()
        for g in gs:
            rhs[g * k:(g + 1) * k] += w * h[s]
            n_g[g] += n_s
            for g2 in gs:
                M[g * k:(g + 1) * k, g2 * k:(g2 + 1) * k] += w2 * S[s]
    lam = reg * np.maximum(n_g, 1.0) ** reg_exponent if weighted else np.full(n_genres, reg)
    M[np.diag_indices_from(M)] += np.repeat(lam, k)
    try:
        y = scipy.linalg.solve(M, rhs, assume_a="pos")
    except (np.linalg.LinAlgError, ValueError) as e:
        raise SolveError(f"the genre-factor system could not be solved ({e}); raise --reg") from None
    if not np.all(np.isfinite(y)):
        raise SolveError("the genre-factor solve gave NaN or inf; raise --reg")
    return y.reshape(n_genres, k).astype(np.float32)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _genre_part(genre_indptr, genre_indices, genre_factors, out):
    n = genre_indptr.shape[0] - 1
    k = genre_factors.shape[1]
    for i in prange(n):
        for a in range(k):
            out[i, a] = 0.0
        m = genre_indptr[i + 1] - genre_indptr[i]
        if m == 0:
            continue
        w = np.float32(1.0 / np.sqrt(m))
        for jj in range(genre_indptr[i], genre_indptr[i + 1]):
            g = genre_indices[jj]
            for a in range(k):
                out[i, a] += w * genre_factors[g, a]


def genre_part(genre_indptr, genre_indices, genre_factors, out=None) -> np.ndarray:
    """|G_i|^-1/2 sum_{g in G_i} y_g for every movie i: (n_movies, k) float32."""
    gp = _as(genre_indptr, np.int64, "genre_indptr", 1)
    gi = _as(genre_indices, np.int32, "genre_indices", 1)
    y = _as(genre_factors, np.float32, "genre_factors", 2)
    if len(gi) and (gi.min() < 0 or gi.max() >= len(y)):
        raise ValueError(f"genre indices must lie in 0..{len(y) - 1}")
    if out is None:
        out = np.empty((len(gp) - 1, y.shape[1]), np.float32)
    _genre_part(gp, gi, y, out)
    return out
