"""The implicit-feedback ALS half-step (Hu, Koren & Volinsky 2008; Rendle et al. 2021).

Row r (a user, say) has positives j with confidences ``c_j`` (the CSR values); every other column is
a zero with weight ``alpha0`` (the "unobserved weight"). With the other side fixed (``Y``, n_cols x k)
the row's factors solve

    min_x  sum_{j in pos} c_j (1 - y_j . x)^2  +  alpha0 sum_{j not in pos} (y_j . x)^2  +  lam_r |x|^2

whose normal equations are

    (alpha0 G + sum_{j in pos} (c_j - alpha0) y_j y_j^T + lam_r I) x = sum_{j in pos} c_j y_j,   G = Y^T Y.

``G`` is computed once per half-step (BLAS), so a half-step is O(nnz k^2) with Cholesky and
O(nnz k + n k^2) per CG step, and never visits the zeros. ``lam_r = reg * (n_r + alpha0 * n_cols) ** nu``
is Rendle et al.'s frequency-scaled regularisation (n_r = the row's positives; nu = 0 is a plain
penalty ``reg``).

Solvers: ``cholesky`` (exact; the positives gathered in chunks, their weighted Gram by the explicit
half-step's tiles, factored and solved by ``factor_row``/``solve_factored``, all ``mfrec.kernels.exact``) and ``cg``
(Jacobi-preconditioned conjugate gradient warm-started from the current row, ``cg_steps``
iterations, never forming the matrix: the product is
``alpha0 G p + lam p + sum_j (c_j - alpha0)(y_j . p) y_j``). The CG loop is the explicit
half-step's ``mfrec.kernels.als.cg_solve``, written once: there the Gramian term is absent and the
bias column present, here the reverse. The CSR checks, the solve-status errors and the per-thread
CG scratch are the explicit half-step's too. An empty row gets zero factors (its optimum).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from mfrec.kernels._config import FASTMATH
from mfrec.kernels.als import (
    NOT_POSITIVE_DEFINITE,
    OK,
    SOLVERS,
    _as,
    cg_scratch,
    cg_solve,
    half_step_csr,
    raise_on_status,
)
from mfrec.kernels.exact import (
    PAD,
    PREFETCH,
    exact_buffers,
    factor_row,
    gram_tiles,
    pad_columns,
    prefetch_row,
    solve_factored,
)


@njit(cache=True, fastmath=FASTMATH)
def _ials_row_cholesky(r, start, end, indices, conf, fixed, gram64, alpha0, lam, out, G, Xt, z, ridge):
    """Exact solve of one row: its positives' y_j (``Xt[0]``) and (c_j - alpha0) y_j with c_j in
    row k (``Xt[1]``) are gathered in chunks, ``exact.gram_tiles`` forms sum_j (c_j - alpha0) y_j y_j^T
    and, in column k, rhs = sum_j c_j y_j; alpha0 G is added, and ``exact.factor_row`` (diagonal
    lam) and ``exact.solve_factored`` solve."""
    k = fixed.shape[1]
    Xa = Xt[0]
    Xb = Xt[1]
    chunk = Xa.shape[1] - PAD
    G[:, :] = 0.0
    for c0 in range(start, end, chunk):
        c1 = min(c0 + chunk, end)
        for jj in range(c0, c1):
            if jj + PREFETCH < end:
                prefetch_row(fixed, indices[jj + PREFETCH])
            j = jj - c0
            w = np.float64(conf[jj])
            extra = w - alpha0
            y = fixed[indices[jj]]
            for a in range(k):
                ya = np.float64(y[a])
                Xa[a, j] = ya
                Xb[a, j] = extra * ya
            Xb[k, j] = w
        pad_columns(Xa, k, c1 - c0)
        gram_tiles(Xa, Xb, k + 1, pad_columns(Xb, k + 1, c1 - c0), G)
    for a in range(k):
        Ga = G[a, a:k]
        ga = gram64[a, a:k]
        for b in range(k - a):
            Ga[b] += ga[b]
        ridge[a] = lam
    if factor_row(G, k, 1.0, ridge, ridge[:0]) != OK:
        return NOT_POSITIVE_DEFINITE
    status = solve_factored(G, k, ridge[:0], z)
    if status != OK:
        return status
    for a in range(k):
        out[r, a] = z[a]
    return OK


@njit(cache=True, fastmath=FASTMATH)
def _ials_row_cg(r, start, end, indices, conf, fixed, gram32, alpha0, lam, cg_steps, out, work, buf, wt):
    k = fixed.shape[1]
    n = end - start
    x = work[0]
    wts = wt[0]
    tgt = wt[1]
    # gather the positives' y_j (weights c_j - alpha0, targets c_j) into the contiguous buffer once:
    # every CG step streams it; the loop itself is the explicit half-step's (als.cg_solve) with the
    # Gramian term
    for j in range(n):
        c = indices[start + j]
        bj = buf[j]
        for a in range(k):
            bj[a] = fixed[c, a]
        w = conf[start + j]
        tgt[j] = w
        wts[j] = w - alpha0
    for a in range(k):
        x[a] = out[r, a]
    status, _ = cg_solve(n, buf, wts, tgt, gram32, lam, np.float32(0.0), False, cg_steps, np.float32(0.0), x,
                         work[1], work[2], work[3], work[4])
    if status != OK:
        return status
    for a in range(k):
        out[r, a] = x[a]
    return OK


@njit(cache=True, parallel=True)
def _ials_half_step(indptr, indices, conf, fixed, gram64, gram32, alpha0, reg, nu, solver, cg_steps,
                    work64, gather64, vec64, work32, bufs, wts, out, status):
    n_rows = indptr.shape[0] - 1
    n_cols, k = fixed.shape
    n_blocks = work32.shape[0]
    for blk in prange(n_blocks):
        # one block per thread: it owns the rows blk, blk + n_blocks, ... (round robin balances
        # power-law row lengths) and its slice of the scratch buffers
        G = work64[blk]  # cholesky: the Gram, then the factor
        Xt = gather64[blk]  # cholesky: the gathered positives, both sides
        z = vec64[blk, 0]
        ridge = vec64[blk, 1]
        for r in range(blk, n_rows, n_blocks):
            start = indptr[r]
            end = indptr[r + 1]
            if end == start:  # no positives: zero factors are the optimum
                for a in range(k):
                    out[r, a] = 0.0
                status[r] = OK
                continue
            lam = reg * (np.float64(end - start) + alpha0 * n_cols) ** nu
            if solver == 0:
                status[r] = _ials_row_cholesky(r, start, end, indices, conf, fixed, gram64, alpha0, lam, out, G, Xt,
                                               z, ridge)
            else:
                status[r] = _ials_row_cg(r, start, end, indices, conf, fixed, gram32, np.float32(alpha0),
                                         np.float32(lam), cg_steps, out, work32[blk], bufs[blk], wts[blk])


def gramian(fixed_factors, alpha0: float) -> np.ndarray:
    """``alpha0 * Y^T Y`` (k x k, float64), by BLAS on the float32 factors."""
    Y = np.ascontiguousarray(fixed_factors, dtype=np.float32)
    return alpha0 * (Y.T @ Y).astype(np.float64)


def implicit_lambda(reg: float, n_positives, alpha0: float, n_cols: int, nu: float):
    """The frequency-scaled penalty of rows with ``n_positives``: ``reg * (n + alpha0 * n_cols) ** nu``."""
    return reg * (np.asarray(n_positives, np.float64) + alpha0 * n_cols) ** nu


def solve_implicit_rows(
    indptr,
    indices,
    confidence,
    fixed_factors,
    *,
    reg: float,
    alpha0: float = 1.0,
    nu: float = 1.0,
    solver: str = "cholesky",
    cg_steps: int = 3,
    gram=None,
    out_factors=None,
    what: str = "row",
) -> np.ndarray:
    """One implicit ALS half-step: every row of a CSR of positives (column, confidence) against the fixed side.

    ``confidence`` (nnz) are the positives' weights ``c_j`` (each must be > 0); ``alpha0`` the weight
    of every zero; the penalty is ``reg * (n_r + alpha0 * n_cols) ** nu``. ``gram`` is
    ``gramian(fixed_factors, alpha0)`` when the caller already has it (computed here otherwise).
    ``out_factors`` (n_rows, k) float32 is overwritten in place when given (and is the CG warm
    start). Returns the factors; ``SolveError`` names the first ``what`` whose solve failed.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
    if cg_steps < 1:
        raise ValueError(f"cg_steps must be at least 1, got {cg_steps}")
    if not (reg >= 0) or not (alpha0 >= 0) or not (0 <= nu <= 2):
        raise ValueError(f"need reg >= 0, alpha0 >= 0 and nu in 0..2, got reg={reg}, alpha0={alpha0}, nu={nu}")
    fixed = _as(fixed_factors, np.float32, "fixed_factors", 2)
    n_cols, k = fixed.shape
    indptr, indices, conf = half_step_csr(indptr, indices, confidence, n_cols)
    if len(conf) and not (np.all(np.isfinite(conf)) and conf.min() > 0):
        raise ValueError("every confidence must be a positive finite number")
    n_rows = len(indptr) - 1
    g64 = gramian(fixed, alpha0) if gram is None else np.ascontiguousarray(gram, dtype=np.float64)
    if g64.shape != (k, k):
        raise ValueError(f"gram must be {k} x {k}, got {g64.shape}")
    if out_factors is None:
        out_factors = np.zeros((n_rows, k), np.float32)
    if out_factors.shape != (n_rows, k) or out_factors.dtype != np.float32 or not out_factors.flags.c_contiguous:
        raise ValueError(f"out_factors must be a C-contiguous float32 array of shape {(n_rows, k)}")
    if n_rows == 0 or k == 0:
        return out_factors
    status = np.zeros(n_rows, np.int8)
    n_blocks = max(1, min(n_rows, numba.get_num_threads()))  # one row block, and one set of scratch, per thread
    cholesky = SOLVERS[solver] == 0
    # cholesky: the Gram (then the factor), the gathered positives (two sides), solution and diagonal per block
    if cholesky:
        # float64: the weighted side (c_j - alpha0) y_j is a product that float32 would round
        work64, gather64 = exact_buffers(n_blocks, k, extra=1, copies=2, dtype=np.float64)
    else:
        work64, gather64 = np.zeros((n_blocks, 0, 0)), np.zeros((n_blocks, 2, 0, 0))
    vec64 = np.zeros((n_blocks, 2, k if cholesky else 0), np.float64)  # cholesky: solution, diagonal
    # cg: each thread gathers its row's fixed factors (and weights, targets) into one longest-row buffer
    max_row = int(np.max(np.diff(indptr))) if SOLVERS[solver] == 1 else 0
    work32, bufs, wts = cg_scratch(n_blocks, max_row, k)
    _ials_half_step(indptr, indices, conf, fixed, g64, g64.astype(np.float32), float(alpha0), float(reg), float(nu),
                    SOLVERS[solver], int(cg_steps), work64, gather64, vec64, work32, bufs, wts, out_factors, status)
    raise_on_status(status, solver, what)
    return out_factors
