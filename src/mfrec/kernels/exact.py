"""The exact per-row solve: gather, Gram, diagonal, Cholesky factor, two triangular solves.

Every exact user of a row's normal equations stands on these pieces: the explicit ALS half-step
(``mfrec.kernels.als``, solver ``cholesky``), the fold-in of a new user (the same half-step on a
one-row CSR), the implicit half-step (``mfrec.kernels.ials``) and the Gibbs draw, which factors the
same matrix and draws instead of solving.

Row r (a user, say) with entries (c_j, v_j) against the fixed side (factors ``Y``, biases ``c``,
global mean ``mu``, optional per-row ``shift``) has the targets ``t_j = v_j - mu - c[c_j] -
Y[c_j] . shift[r]`` and, for z = [b, x] (m = k + 1 unknowns), the unpenalised normal equations

    A = sum_j [1, y_j][1, y_j]^T,   rhs = sum_j t_j [1, y_j].

``row_normal_equations`` gathers the row's augmented rows [1, y_j, t_j] as the *columns* of a
float64 buffer ``Xt`` (``CHUNK`` entries at a time) and adds ``Xt Xt^T`` to ``G`` by ``gram_tiles``:
the Gram of the augmented rows holds A in ``G[:m, :m]`` and rhs in column ``m``. ``gram_tiles``
computes 4 x 2 tiles of the upper triangle whose inner loop runs along the contiguous entries, so
LLVM vectorises it with 8 independent accumulators (6 loads per 8 fused multiply-adds; at k = 64
about 16-18 G multiply-adds per second per core on this machine, 8x the previous rank-4 update's
2.0-2.4). ``factor_row`` scales and adds the diagonal (ridge penalty or prior precision) and
factors in place (``cholesky_upper``: A = R^T R, R in the upper triangle, row-oriented with four
updates per pass over a row); ``solve_factored`` does R^T w = rhs, R z = w. Work per row:
n (k + 2)^2 / 2 multiply-adds for the Gram, m^3 / 6 for the factor, m^2 for the solves.

No BLAS: a BLAS call per row inside the Numba threads either oversubscribes the cores (OpenBLAS
threads per call) or, pinned to one thread, forms the full square (twice the work of the upper
triangle) at a lower rate for these thin matrices; the numbers are in benchmarks/README.md
(cholesky_speed.py).

Determinism: every buffer a row reads is written by that row first (``G`` is zeroed per row, only
the gathered columns of ``Xt`` are read), the entries are summed in a fixed order, and the work
buffers of all threads share one alignment (their strides are multiples of 4 doubles), so a row's
result does not depend on the thread or the block it runs in.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mfrec.kernels._config import FASTMATH

OK, NOT_POSITIVE_DEFINITE, NOT_FINITE = 0, 1, 2
CHUNK = 256  # entries gathered per Gram update: Xt is (padded rows) x (CHUNK + 4) float64 per thread


def gram_rows(k: int, extra: int = 2) -> int:
    """Rows of the gathered buffer (and of ``G``) for k factors and ``extra`` more rows (the explicit
    row has two: the bias column of ones and the targets), rounded up to the 4 of ``gram_tiles``."""
    return -(-(k + extra) // 4) * 4


def exact_buffers(n_threads: int, k: int, extra: int = 2, copies: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed per-thread work buffers of the exact solve: ``G`` (n_threads, p, p) and ``Xt``
    (n_threads, copies, p, CHUNK + 4), p = ``gram_rows(k, extra)``; ``copies=2`` for a weighted
    Gram (two gathered sides). Every stride is a multiple of 4 doubles (one alignment for all threads)."""
    p = gram_rows(k, extra)
    return np.zeros((n_threads, p, p), np.float64), np.zeros((n_threads, copies, p, CHUNK + 4), np.float64)


@njit(cache=True, fastmath=FASTMATH)
def row_target(values, indices, jj, mu, fixed, fixed_bias, row_shift, r, has_shift):
    """(column, target) of entry jj of row r: ``t = v - mu - c[col] - fixed[col] . row_shift[r]``."""
    c = indices[jj]
    t = values[jj] - mu - fixed_bias[c]
    if has_shift:
        s = np.float32(0.0)
        for a in range(fixed.shape[1]):
            s += fixed[c, a] * row_shift[r, a]
        t -= s
    return c, t


@njit(cache=True, fastmath=FASTMATH)
def gram_tiles(Xa, Xb, n, G):
    """``G[a, b] += sum_{j < n} Xa[a, j] Xb[b, j]`` for every b >= a (rounded out to whole tiles:
    the diagonal tiles also write a few entries below the diagonal, which nobody reads).

    ``Xa`` and ``Xb`` are (p, >= n) with p a multiple of 4 (the same array for a plain Gram);
    4 x 2 tiles, each a loop along j with 8 accumulators."""
    p = Xa.shape[0]
    for a0 in range(0, p, 4):
        x0 = Xa[a0]
        x1 = Xa[a0 + 1]
        x2 = Xa[a0 + 2]
        x3 = Xa[a0 + 3]
        for b0 in range(a0, p, 2):
            y0 = Xb[b0]
            y1 = Xb[b0 + 1]
            s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = 0.0
            for j in range(n):
                u0 = x0[j]
                u1 = x1[j]
                u2 = x2[j]
                u3 = x3[j]
                v0 = y0[j]
                v1 = y1[j]
                s00 += u0 * v0
                s01 += u0 * v1
                s10 += u1 * v0
                s11 += u1 * v1
                s20 += u2 * v0
                s21 += u2 * v1
                s30 += u3 * v0
                s31 += u3 * v1
            G[a0, b0] += s00
            G[a0, b0 + 1] += s01
            G[a0 + 1, b0] += s10
            G[a0 + 1, b0 + 1] += s11
            G[a0 + 2, b0] += s20
            G[a0 + 2, b0 + 1] += s21
            G[a0 + 3, b0] += s30
            G[a0 + 3, b0 + 1] += s31


@njit(cache=True, fastmath=FASTMATH)
def row_normal_equations(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, G, Xt):
    """The unpenalised normal equations of row r (entries ``start:end``), float64: ``G[:m, :m]``
    (upper triangle) = sum_j [1, y_j][1, y_j]^T and ``G[:m, m]`` = sum_j t_j [1, y_j], m = k + 1.

    ``G`` is (p, p) and ``Xt`` (p, >= chunk), p = ``gram_rows(k)``; both are overwritten (``G``
    zeroed first). The row is gathered ``Xt.shape[1] - 4`` entries at a time."""
    k = fixed.shape[1]
    m = k + 1
    chunk = Xt.shape[1] - 4
    G[:, :] = 0.0
    for c0 in range(start, end, chunk):
        c1 = min(c0 + chunk, end)
        for jj in range(c0, c1):
            c, t = row_target(values, indices, jj, mu, fixed, fixed_bias, row_shift, r, has_shift)
            j = jj - c0
            y = fixed[c]
            Xt[0, j] = 1.0
            for a in range(k):
                Xt[a + 1, j] = y[a]
            Xt[m, j] = t
        gram_tiles(Xt, Xt, c1 - c0, G)


@njit(cache=True, fastmath=FASTMATH)
def cholesky_upper(A, m):
    """In-place upper Cholesky of A[:m, :m] = R^T R (R in the upper triangle; only it is read).

    Row j is updated by the rows above it four at a time (one load and store of row j per four
    multiply-adds), each inner loop along a contiguous row. Returns OK or NOT_POSITIVE_DEFINITE."""
    for j in range(m):
        Aj = A[j]
        p = 0
        while p + 4 <= j:
            f0 = A[p, j]
            f1 = A[p + 1, j]
            f2 = A[p + 2, j]
            f3 = A[p + 3, j]
            A0 = A[p]
            A1 = A[p + 1]
            A2 = A[p + 2]
            A3 = A[p + 3]
            for i in range(j, m):
                Aj[i] -= f0 * A0[i] + f1 * A1[i] + f2 * A2[i] + f3 * A3[i]
            p += 4
        while p < j:
            f = A[p, j]
            Ap = A[p]
            for i in range(j, m):
                Aj[i] -= f * Ap[i]
            p += 1
        s = Aj[j]
        if not (s > 0.0) or not np.isfinite(s):
            return NOT_POSITIVE_DEFINITE
        d = np.sqrt(s)
        Aj[j] = d
        inv = 1.0 / d
        for i in range(j + 1, m):
            Aj[i] *= inv
    return OK


@njit(cache=True, fastmath=FASTMATH)
def solve_lower_t(R, v, m):
    """v <- R^-T v for the upper-triangular R[:m, :m] (forward substitution along R's rows)."""
    for p in range(m):
        v[p] /= R[p, p]
        vp = v[p]
        Rp = R[p]
        for i in range(p + 1, m):
            v[i] -= Rp[i] * vp


@njit(cache=True, fastmath=FASTMATH)
def solve_upper(R, v, m):
    """v <- R^-1 v for the upper-triangular R[:m, :m] (back substitution)."""
    for i in range(m - 1, -1, -1):
        s = v[i]
        Ri = R[i]
        for p in range(i + 1, m):
            s -= Ri[p] * v[p]
        v[i] = s / Ri[i]


@njit(cache=True, fastmath=FASTMATH)
def factor_row(G, m, scale, diag, prior_rhs, rhs):
    """From a row's normal equations in ``G`` (``row_normal_equations``): A = scale * G[:m, :m] +
    diag(``diag``) is factored in place (R in ``G``'s upper triangle) and ``rhs[:m]`` = scale *
    G[:m, m] + ``prior_rhs``. Returns OK or NOT_POSITIVE_DEFINITE.

    The ALS solve: scale 1, diag [reg_bias, lam, ..., lam], prior_rhs 0. The Gibbs draw: scale =
    the noise precision, diag = the prior precisions, prior_rhs = precision * prior mean."""
    for a in range(m):
        rhs[a] = scale * G[a, m] + prior_rhs[a]
        Ga = G[a]
        for b in range(a, m):
            Ga[b] *= scale
        Ga[a] += diag[a]
    return cholesky_upper(G, m)


@njit(cache=True, fastmath=FASTMATH)
def solve_factored(R, rhs, m):
    """rhs <- A^-1 rhs with A = R^T R factored by ``factor_row`` / ``cholesky_upper``; returns OK,
    or NOT_FINITE when the solution holds NaN or inf."""
    solve_lower_t(R, rhs, m)
    solve_upper(R, rhs, m)
    for i in range(m):
        if not np.isfinite(rhs[i]):
            return NOT_FINITE
    return OK


@njit(cache=True, fastmath=FASTMATH)
def exact_row_solve(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, scale, diag,
                    prior_rhs, G, Xt, rhs):
    """Gather, Gram, diagonal, factor and solve one row: ``rhs[:m]`` receives z = [b, x] solving
    (scale * A + diag(diag)) z = scale * rhs + prior_rhs (see ``factor_row``). Returns OK,
    NOT_POSITIVE_DEFINITE or NOT_FINITE."""
    m = fixed.shape[1] + 1
    row_normal_equations(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, G, Xt)
    if factor_row(G, m, scale, diag, prior_rhs, rhs) != OK:
        return NOT_POSITIVE_DEFINITE
    return solve_factored(G, rhs, m)


@njit(cache=True, fastmath=FASTMATH)
def cholesky_solve(A, rhs, m):
    """Solve ``A z = rhs`` for the symmetric positive definite ``A[:m, :m]`` (only its upper triangle
    is read; it is overwritten by R) in place: ``z`` replaces ``rhs[:m]``. Returns OK,
    NOT_POSITIVE_DEFINITE or NOT_FINITE."""
    if cholesky_upper(A, m) != OK:
        return NOT_POSITIVE_DEFINITE
    return solve_factored(A, rhs, m)
