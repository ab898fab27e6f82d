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

Solvers: ``cholesky`` (exact, float64 normal equations: ``mfrec.kernels.exact``) and ``cg`` (Jacobi-preconditioned
conjugate gradient warm-started from the current row, ``cg_steps`` iterations, float32, never
forming A: each step streams the row's ``Y`` rows once, O(n_r k) instead of O(n_r k^2)). The CG
loop, ``cg_solve``, is shared with the implicit half-step (``mfrec.kernels.ials``), which adds a
Gramian term and has no bias column.
An empty row gets bias 0 and zero factors.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from mfrec.errors import ModelError
from mfrec.kernels._config import FASTMATH
from mfrec.kernels.exact import NOT_FINITE, NOT_POSITIVE_DEFINITE, OK, exact_buffers, exact_row_solve, row_target

SOLVERS = {"cholesky": 0, "cg": 1}


class SolveError(ModelError):
    """A per-row ridge solve failed (matrix not positive definite, or NaN/inf in the result)."""


@njit(cache=True, fastmath=FASTMATH)
def _solve_row_cholesky(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift,
                        lam, lam_b, out_factors, out_bias, G, Xt, z, ridge):
    """Exact solve of one row by ``mfrec.kernels.exact.exact_row_solve`` (gathered chunks, tiled
    Gram, Cholesky factor, triangular solves) with the ridge diag(lam_b, lam, ..., lam)."""
    k = fixed.shape[1]
    ridge[0] = lam_b
    for a in range(1, k + 1):
        ridge[a] = lam
    status = exact_row_solve(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, 1.0,
                             ridge, ridge[:0], G, Xt, z)
    if status != OK:
        return status
    out_bias[r] = z[0]
    for a in range(k):
        out_factors[r, a] = z[a + 1]
    return OK


@njit(cache=True, fastmath=FASTMATH)
def _sweep(n, buf, wts, tgt, tsign, vb, v, out, diag, want_diag):
    """One pass over a row's gathered fixed rows y_j = buf[j] (j < n): out += sum_j s_j y_j with
    s_j = w_j (vb + y_j . v) - tsign t_j; returns sum_j s_j (the bias coordinate's share). With
    ``want_diag`` it also adds sum_j w_j y_j^2 to ``diag`` (the Jacobi preconditioner).

    The CG matvec (tsign 0) and the residual of the warm start (tsign 1) are both this pass. Four
    rows at a time: four independent dot products in flight, and each load and store of ``out``
    carries four multiply-adds (one row at a time, the out[a] += ... chain through memory was
    the step's bottleneck)."""
    k = v.shape[0]
    sb = np.float32(0.0)
    j = 0
    while j + 4 <= n:
        y0 = buf[j]
        y1 = buf[j + 1]
        y2 = buf[j + 2]
        y3 = buf[j + 3]
        d0 = vb
        d1 = vb
        d2 = vb
        d3 = vb
        for a in range(k):
            va = v[a]
            d0 += y0[a] * va
            d1 += y1[a] * va
            d2 += y2[a] * va
            d3 += y3[a] * va
        w0 = wts[j]
        w1 = wts[j + 1]
        w2 = wts[j + 2]
        w3 = wts[j + 3]
        s0 = w0 * d0 - tsign * tgt[j]
        s1 = w1 * d1 - tsign * tgt[j + 1]
        s2 = w2 * d2 - tsign * tgt[j + 2]
        s3 = w3 * d3 - tsign * tgt[j + 3]
        for a in range(k):
            out[a] += s0 * y0[a] + s1 * y1[a] + s2 * y2[a] + s3 * y3[a]
        if want_diag:
            for a in range(k):
                diag[a] += w0 * y0[a] * y0[a] + w1 * y1[a] * y1[a] + w2 * y2[a] * y2[a] + w3 * y3[a] * y3[a]
        sb += (s0 + s1) + (s2 + s3)
        j += 4
    while j < n:
        y0 = buf[j]
        d0 = vb
        for a in range(k):
            d0 += y0[a] * v[a]
        w0 = wts[j]
        s0 = w0 * d0 - tsign * tgt[j]
        for a in range(k):
            out[a] += s0 * y0[a]
        if want_diag:
            for a in range(k):
                diag[a] += w0 * y0[a] * y0[a]
        sb += s0
        j += 1
    return sb


@njit(cache=True, fastmath=FASTMATH)
def _add_gram(gram, v, out, sign):
    """out += sign * G v for the symmetric k x k ``gram`` (nothing when it is 0 x 0): as a sum of
    G's rows (G = G^T), four at a time, so the inner loop is a vectorised multiply-add along
    contiguous rows with no horizontal reductions."""
    m = gram.shape[0]
    b = 0
    while b + 4 <= m:
        g0 = gram[b]
        g1 = gram[b + 1]
        g2 = gram[b + 2]
        g3 = gram[b + 3]
        v0 = sign * v[b]
        v1 = sign * v[b + 1]
        v2 = sign * v[b + 2]
        v3 = sign * v[b + 3]
        for a in range(m):
            out[a] += v0 * g0[a] + v1 * g1[a] + v2 * g2[a] + v3 * g3[a]
        b += 4
    while b < m:
        g0 = gram[b]
        v0 = sign * v[b]
        for a in range(m):
            out[a] += v0 * g0[a]
        b += 1


@njit(cache=True, fastmath=FASTMATH)
def cg_solve(n, buf, wts, tgt, gram, lam, lam_b, has_bias, cg_steps, xb, x, res, diag, p, ap):
    """Warm-started, Jacobi-preconditioned CG on one row's normal equations: the loop both the
    explicit and the implicit half-step run.

    The system, with y_j = buf[j] (j < n) the row's gathered fixed rows, z_j = [1, y_j] when
    ``has_bias`` (the explicit model's bias column) and y_j otherwise:

        (G + sum_j w_j z_j z_j^T + diag(lam_b, lam I)) z = sum_j t_j z_j

    ``G`` is ``gram`` (the implicit model's alpha0 Y^T Y; 0 x 0 for none), ``w_j`` = ``wts[j]``
    and ``t_j`` = ``tgt[j]`` (explicit: 1 and the rating's target; implicit: c_j - alpha0 and
    c_j). Starts from (``xb``, ``x``), runs at most ``cg_steps`` steps, never forms the matrix;
    ``res``, ``diag``, ``p``, ``ap`` (k) are scratch. ``x`` is updated in place; returns
    (status, the bias; 0 without one)."""
    k = x.shape[0]
    if not has_bias:
        xb = np.float32(0.0)
    for a in range(k):
        res[a] = 0.0
        diag[a] = lam
    # residual of the warm start: rhs - A x = -(sum_j (w_j d_j - t_j) z_j) - G x - lam x
    sb = _sweep(n, buf, wts, tgt, np.float32(1.0), xb, x, res, diag, True)
    for a in range(k):
        res[a] = -res[a] - lam * x[a]
    _add_gram(gram, x, res, np.float32(-1.0))
    for a in range(gram.shape[0]):
        diag[a] += gram[a, a]
    resb = np.float32(0.0)
    diagb = np.float32(1.0)
    if has_bias:
        resb = -sb - lam_b * xb
        diagb = lam_b
        for j in range(n):
            diagb += wts[j]
    pb = resb / diagb
    rz = resb * pb
    # (a loop never both stores and re-associates a sum, see _config.py)
    for a in range(k):
        p[a] = res[a] / diag[a]
    for a in range(k):
        rz += res[a] * p[a]
    if not np.isfinite(rz):
        return NOT_FINITE, xb
    for _ in range(cg_steps):
        if not (rz > 1e-30):
            break
        for a in range(k):
            ap[a] = lam * p[a]
        apb = _sweep(n, buf, wts, tgt, np.float32(0.0), pb, p, ap, diag, False) + lam_b * pb
        _add_gram(gram, p, ap, np.float32(1.0))
        pap = pb * apb if has_bias else np.float32(0.0)
        for a in range(k):
            pap += p[a] * ap[a]
        if not (pap > 0.0):
            if not np.isfinite(pap):
                return NOT_FINITE, xb
            break
        alpha = rz / pap
        rz_new = np.float32(0.0)
        if has_bias:
            xb += alpha * pb
            resb -= alpha * apb
            rz_new = resb * resb / diagb
        for a in range(k):
            x[a] += alpha * p[a]
            res[a] -= alpha * ap[a]
        for a in range(k):
            rz_new += res[a] * res[a] / diag[a]
        beta = rz_new / rz
        rz = rz_new
        pb = resb / diagb + beta * pb
        for a in range(k):
            p[a] = res[a] / diag[a] + beta * p[a]
    if not np.isfinite(xb):
        return NOT_FINITE, xb
    for a in range(k):
        if not np.isfinite(x[a]):
            return NOT_FINITE, xb
    return OK, xb


def cg_scratch(n_threads: int, max_row: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CG half-steps' per-thread scratch: work (threads, 5, k): x, res, diag, p, ap; bufs
    (threads, longest row, k): the row's gathered fixed rows; wt (threads, 2, longest row): their
    weights and targets."""
    return (np.empty((n_threads, 5, k), np.float32), np.empty((n_threads, max_row, k), np.float32),
            np.empty((n_threads, 2, max_row), np.float32))


@njit(cache=True, fastmath=FASTMATH)
def _solve_row_cg(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift,
                  lam, lam_b, cg_steps, out_factors, out_bias, work, buf, wt, no_gram, out_residual):
    k = fixed.shape[1]
    n = end - start
    x = work[0]
    wts = wt[0]
    tgt = wt[1]
    # gather the row's Y rows into the contiguous buffer once: every CG step streams it
    for j in range(n):
        c, t = row_target(values, indices, start + j, mu, fixed, fixed_bias, row_shift, r, has_shift)
        bj = buf[j]
        for a in range(k):
            bj[a] = fixed[c, a]
        tgt[j] = t
        wts[j] = 1.0
    for a in range(k):
        x[a] = out_factors[r, a]
    status, xb = cg_solve(n, buf, wts, tgt, no_gram, lam, lam_b, True, cg_steps, out_bias[r], x,
                          work[1], work[2], work[3], work[4])
    if status != OK:
        return status
    out_bias[r] = xb
    for a in range(k):
        out_factors[r, a] = x[a]
    if out_residual.shape[0] > 0:
        # sum_j e_j y_j with the solved row's residuals e_j = t_j - b - y_j . x (the genre step's
        # input): minus the warm-start residual's pass, at the solution
        racc = out_residual[r]
        for a in range(k):
            racc[a] = 0.0
        _sweep(n, buf, wts, tgt, np.float32(1.0), xb, x, racc, racc, False)
        for a in range(k):
            racc[a] = -racc[a]
    return OK


@njit(cache=True, parallel=True, nogil=True)  # nogil: a Dask worker keeps talking while it solves
def _half_step(indptr, indices, values, fixed, fixed_bias, mu, row_shift, reg, reg_bias, weighted,
               reg_exponent, solver, cg_steps, n_blocks, work64, vec64, gather64, work32, bufs, wts, out_factors,
               out_bias, out_residual, status):
    n_rows = indptr.shape[0] - 1
    k = fixed.shape[1]
    has_shift = row_shift.shape[0] > 0
    mu32 = np.float32(mu)
    for blk in prange(n_blocks):
        # rows blk, blk + n_blocks, ... (round robin balances power-law row lengths); one block per
        # thread, each owning its slice of the work buffers, and every row initialises what it
        # reads, so a row's result never depends on the thread count or on the rows before it
        t = blk
        G = work64[t]  # cholesky: the Gram, then the factor (integer indices keep the slices C-contiguous)
        z = vec64[t, 0]
        ridge = vec64[t, 1]
        Xt = gather64[t, 0]
        work = work32[t]
        buf = bufs[t]
        wt = wts[t]
        no_gram = np.zeros((0, 0), np.float32)
        for r in range(blk, n_rows, n_blocks):
            start = indptr[r]
            end = indptr[r + 1]
            if end == start:
                out_bias[r] = 0.0
                for a in range(k):
                    out_factors[r, a] = 0.0
                    if out_residual.shape[0] > 0:
                        out_residual[r, a] = 0.0
                status[r] = OK
                continue
            lam = reg * np.float64(end - start) ** reg_exponent if weighted else reg
            if solver == 0:
                status[r] = _solve_row_cholesky(r, start, end, indices, values, fixed, fixed_bias, mu32,
                                                row_shift, has_shift, np.float64(lam), np.float64(reg_bias),
                                                out_factors, out_bias, G, Xt, z, ridge)
            else:
                status[r] = _solve_row_cg(r, start, end, indices, values, fixed, fixed_bias, mu32, row_shift,
                                          has_shift, np.float32(lam), np.float32(reg_bias), cg_steps,
                                          out_factors, out_bias, work, buf, wt, no_gram, out_residual)


def _as(a, dtype, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


def check_ratings_csr(indptr, indices, n_cols: int) -> None:
    """Raise ValueError unless ``indptr`` never falls and every column index lies in 0..n_cols-1."""
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    if len(indptr) and np.any(indptr[1:] < indptr[:-1]):
        raise ValueError(f"malformed CSR: indptr must rise from 0 to nnz={len(indices)}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(f"CSR column indices must lie in 0..{n_cols - 1}")


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
    validate: bool = True,
    out_residual=None,
) -> tuple[np.ndarray, np.ndarray]:
    """One ALS half-step: solve every row of a CSR for [bias, factors] with the other side fixed.

    ``indptr`` (n_rows+1), ``indices`` (nnz, columns of ``fixed_factors``), ``values`` (nnz ratings);
    ``fixed_factors`` (n_cols, k) and ``fixed_bias`` (n_cols,) are the fixed side, ``mu`` the
    global mean; the factor penalty is ``reg * n_r ** reg_exponent`` when ``weighted``, else ``reg``; ``row_shift`` (n_rows, k), optional, adds ``fixed_factors[c] . row_shift[r]`` to
    every prediction of row r (the genre part when solving movies). ``out_factors`` (n_rows, k)
    float32 and ``out_bias`` (n_rows,) float32 are overwritten in place when given (and are the CG
    warm start); new zero arrays otherwise. Returns ``(out_factors, out_bias)``.

    ``out_residual`` (n_rows, k) float32, cg only: receives each row's ``sum_j e_j fixed[c_j]``
    with the solved row's residuals ``e_j`` (target - bias - fixed[c_j] . factors), from the
    gathered buffer the solve already holds: the genre step's right-hand side without another
    pass over the ratings.

    ``validate=False`` skips the O(nnz) checks of the CSR (rising ``indptr``, column indices in
    range): for a fit loop that validated the same matrix once with ``check_ratings_csr``.

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
    indptr, indices, values = half_step_csr(indptr, indices, values, n_cols, validate=validate)
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
    # rows are dealt round-robin to one block per thread (balances power-law row lengths); the
    # work buffers are per block, so per thread: cholesky gathers a row in chunks of exact.CHUNK entries, cg
    # gathers the whole row once (one longest-row x k float32 buffer per thread)
    n_blocks = max(1, min(n_rows, numba.get_num_threads()))
    n_threads = n_blocks  # one block, and one set of work buffers, per thread
    cg = SOLVERS[solver] == 1
    max_row = int(np.max(indptr[1:] - indptr[:-1])) if cg else 0
    if cg:  # cholesky's buffers, empty
        work64, gather64 = np.zeros((n_threads, 0, 0)), np.zeros((n_threads, 1, 0, 0))
    else:  # the Gram (then the factor) and the gathered rows
        work64, gather64 = exact_buffers(n_threads, k)
    vec64 = np.zeros((n_threads, 2, 0 if cg else k + 1), np.float64)  # cholesky: solution, diagonal
    work32, bufs, wts = cg_scratch(n_threads, max_row, k)
    if out_residual is None:
        out_residual = np.zeros((0, k), np.float32)
    elif not cg or out_residual.shape != (n_rows, k) or out_residual.dtype != np.float32 \
            or not out_residual.flags.c_contiguous:
        raise ValueError(f"out_residual needs solver='cg' and a C-contiguous float32 array of shape {(n_rows, k)}")
    _half_step(indptr, indices, values, fixed, fbias, float(mu), shift, float(reg), float(reg_bias),
               bool(weighted), float(reg_exponent), SOLVERS[solver], int(cg_steps), n_blocks, work64, vec64,
               gather64, work32, bufs, wts, out_factors, out_bias, out_residual, status)
    raise_on_status(status, solver, what)
    return out_factors, out_bias


# -- shared by the explicit and the implicit half-steps ------------------------------------------
def half_step_csr(indptr, indices, values, n_cols: int, *,
                  validate: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(indptr int64, indices int32, values float32)`` of a half-step's CSR, checked against ``n_cols``
    fixed rows; ``ValueError`` when malformed. ``validate=False`` checks only the ends of ``indptr``
    and the lengths (O(1)), not the O(nnz) ``check_ratings_csr``."""
    indptr = _as(indptr, np.int64, "indptr", 1)
    indices = _as(indices, np.int32, "indices", 1)
    values = _as(values, np.float32, "values", 1)
    nnz = len(indices)
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != nnz or len(values) != nnz:
        raise ValueError(f"malformed CSR: indptr must rise from 0 to nnz={nnz} and values must have nnz entries")
    if validate:
        check_ratings_csr(indptr, indices, n_cols)
    return indptr, indices, values


def raise_on_status(status: np.ndarray, solver: str, what: str) -> None:
    """``SolveError`` naming the first row whose solve failed, if any did."""
    bad = np.flatnonzero(status)
    if len(bad):
        why = "is not positive definite" if status[bad[0]] == NOT_POSITIVE_DEFINITE else "gave NaN or inf"
        raise SolveError(
            f"the {solver} solve for {what} {bad[0]} {why} ({len(bad)} {what}s failed); "
            "check the ratings for NaN/inf or raise --reg"
        )


# -- genre sets and the genre part -----------------------------------------------------------------
# (the genre-factor solve itself is mfrec.kernels.genre)
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
