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

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from mfrec.kernels._config import FASTMATH

OK, NOT_POSITIVE_DEFINITE, NOT_FINITE = 0, 1, 2
CHUNK = 256  # entries gathered per Gram update
PAD = 16  # Xt's row stride is CHUNK + PAD items: an odd number of cache lines (float32), so rows spread over L1's sets
PREFETCH = 8  # the gather asks for the fixed row of the entry this many ahead


@intrinsic
def _prefetch_line(typingctx, arr, i, a):
    """Ask the CPU to fetch the cache line holding ``arr[i, a]`` (2-D array) for reading; no effect on results."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and isinstance(i, types.Integer)
            and isinstance(a, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        inds = [context.cast(builder, args[1], sig.args[1], types.intp),
                context.cast(builder, args[2], sig.args[2], types.intp)]
        ptr = cgutils.get_item_pointer2(context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
                                        strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
                                        inds=inds, wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            "llvm.prefetch.p0i8")
        # read (0), keep in all cache levels (3), data (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, i, a), codegen


if numba.config.DISABLE_JIT:
    def prefetch_row(arr, i):
        """(NUMBA_DISABLE_JIT: nothing to prefetch.)"""
else:
    @njit(cache=True)
    def prefetch_row(arr, i):
        """Ask for every cache line of the row ``arr[i]`` (C-contiguous 2-D, 4-byte items) ahead of its use.

        The gathers read rows of the fixed factors in rating order, i.e. at random; without the
        hint each row's cache misses stall the loop (the gathered stores fill the store queue), with
        it the misses of the next few rows overlap: on ML-25M's shape the gather went from 113 / 145
        to 62 / 46 ns per rating (users / movies), the rest of the solve being unchanged."""
        n = arr.shape[1]
        for a in range(0, n, 16):
            _prefetch_line(arr, i, a)
        if n:
            _prefetch_line(arr, i, n - 1)


def gram_rows(k: int, extra: int = 2) -> int:
    """Rows of the gathered buffer (and of ``G``) for k factors and ``extra`` more rows (the explicit
    row has two: the bias column of ones and the targets), rounded up to the 4 of ``gram_tiles``."""
    return -(-(k + extra) // 4) * 4


def exact_buffers(n_threads: int, k: int, extra: int = 2, copies: int = 1,
                  dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed per-thread work buffers of the exact solve: ``G`` (n_threads, p, p) float64 and ``Xt``
    (n_threads, copies, p, CHUNK + PAD) of ``dtype``, p = ``gram_rows(k, extra)``; ``copies=2`` for a
    weighted Gram (two gathered sides). float32 holds the explicit row's [1, y_j, t_j] exactly (they
    are float32 numbers), and the Gram converts them to float64 as it loads them."""
    p = gram_rows(k, extra)
    return np.zeros((n_threads, p, p), np.float64), np.zeros((n_threads, copies, p, CHUNK + PAD), dtype)


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
def gram_tiles(Xa, Xb, rows, n, G):
    """``G[a, b] += sum_{j < n} Xa[a, j] Xb[b, j]`` for every rows > b >= a (rounded out to whole
    tiles: they also write a few entries below the diagonal and beyond ``rows``, which nobody reads).

    ``Xa`` and ``Xb`` are (p, >= n), p a multiple of 4 and > ``rows`` when ``rows`` is odd (the same
    array for a plain Gram), float32 or float64; the products and sums are float64. 4 x 2 tiles,
    each a loop along j with 8 accumulators."""
    for a0 in range(0, rows, 4):
        x0 = Xa[a0]
        x1 = Xa[a0 + 1]
        x2 = Xa[a0 + 2]
        x3 = Xa[a0 + 3]
        for b0 in range(a0, rows, 2):
            y0 = Xb[b0]
            y1 = Xb[b0 + 1]
            s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = 0.0
            for j in range(n):
                u0 = np.float64(x0[j])
                u1 = np.float64(x1[j])
                u2 = np.float64(x2[j])
                u3 = np.float64(x3[j])
                v0 = np.float64(y0[j])
                v1 = np.float64(y1[j])
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


@njit(cache=True)
def pad_columns(Xt, rows, n):
    """Zero columns n.. of ``Xt[:rows]`` up to a multiple of 4 and return that multiple: the Gram
    tiles' vector loop then covers every column (a scalar remainder per tile costs more than the
    zeros, which add nothing)."""
    n4 = -(-n // 4) * 4
    for a in range(rows):
        for j in range(n, n4):
            Xt[a, j] = 0.0
    return n4


@njit(cache=True, fastmath=FASTMATH)
def row_normal_equations(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, G, Xt):
    """The unpenalised normal equations of row r (entries ``start:end``), float64: ``G[:m, :m]``
    (upper triangle) = sum_j [1, y_j][1, y_j]^T and ``G[:m, m]`` = sum_j t_j [1, y_j], m = k + 1.

    ``G`` is (p, p) float64 and ``Xt`` (p, chunk + PAD) float32 or float64, p = ``gram_rows(k)``;
    both are overwritten (``G`` zeroed first). The row is gathered ``chunk`` entries at a time."""
    k = fixed.shape[1]
    m = k + 1
    chunk = Xt.shape[1] - PAD
    G[:, :] = 0.0
    for c0 in range(start, end, chunk):
        c1 = min(c0 + chunk, end)
        for jj in range(c0, c1):
            if jj + PREFETCH < end:
                prefetch_row(fixed, indices[jj + PREFETCH])
            c, t = row_target(values, indices, jj, mu, fixed, fixed_bias, row_shift, r, has_shift)
            j = jj - c0
            y = fixed[c]
            Xt[0, j] = 1.0
            for a in range(k):
                Xt[a + 1, j] = y[a]
            Xt[m, j] = t
        gram_tiles(Xt, Xt, m + 1, pad_columns(Xt, m + 1, c1 - c0), G)


@njit(cache=True, fastmath=FASTMATH)
def _cholesky_rows(A, m, cols):
    """In-place upper Cholesky of A[:m, :m] = R^T R (R in the upper triangle; only it is read), the
    row operations carried on to columns m..cols-1 of the first m rows, which thereby become
    R^-T A[:m, m:cols] (with cols = m + 1 and the right-hand side in column m: the forward solve).

    Row j is updated by the rows above it four at a time (one load and store of row j per four
    multiply-adds). Every loop runs over a slice from 0: Numba's index wraparound for a loop
    ``range(lo, hi)`` with a variable ``lo`` keeps LLVM from vectorising it. Returns OK or
    NOT_POSITIVE_DEFINITE."""
    for j in range(m):
        Aj = A[j, j:cols]
        n = cols - j
        p = 0
        while p + 4 <= j:
            f0 = A[p, j]
            f1 = A[p + 1, j]
            f2 = A[p + 2, j]
            f3 = A[p + 3, j]
            A0 = A[p, j:cols]
            A1 = A[p + 1, j:cols]
            A2 = A[p + 2, j:cols]
            A3 = A[p + 3, j:cols]
            for i in range(n):
                Aj[i] -= f0 * A0[i] + f1 * A1[i] + f2 * A2[i] + f3 * A3[i]
            p += 4
        while p < j:
            f = A[p, j]
            Ap = A[p, j:cols]
            for i in range(n):
                Aj[i] -= f * Ap[i]
            p += 1
        s = Aj[0]
        if not (s > 0.0) or not np.isfinite(s):
            return NOT_POSITIVE_DEFINITE
        d = np.sqrt(s)
        inv = 1.0 / d
        for i in range(1, n):
            Aj[i] *= inv
        Aj[0] = d
    return OK


@njit(cache=True, fastmath=FASTMATH)
def cholesky_upper(A, m):
    """In-place upper Cholesky of A[:m, :m] = R^T R (R in the upper triangle; only it is read).
    Returns OK or NOT_POSITIVE_DEFINITE."""
    return _cholesky_rows(A, m, m)


@njit(cache=True, fastmath=FASTMATH)
def solve_lower_t(R, v, m):
    """v <- R^-T v for the upper-triangular R[:m, :m] (forward substitution along R's rows)."""
    for p in range(m):
        v[p] /= R[p, p]
        vp = v[p]
        Rp = R[p, p + 1:m]
        vs = v[p + 1:m]
        for i in range(m - p - 1):
            vs[i] -= Rp[i] * vp


@njit(cache=True, fastmath=FASTMATH)
def solve_upper(R, v, m):
    """v <- R^-1 v for the upper-triangular R[:m, :m] (back substitution)."""
    for i in range(m - 1, -1, -1):
        Ri = R[i, i + 1:m]
        vs = v[i + 1:m]
        s = v[i]
        for p in range(m - i - 1):
            s -= Ri[p] * vs[p]
        v[i] = s / R[i, i]


@njit(cache=True, fastmath=FASTMATH)
def factor_row(G, m, scale, diag, prior_rhs):
    """Factor a row's system in place, from its normal equations in ``G`` (``row_normal_equations``;
    ``G`` must have a column m): A = scale * G[:m, :m] + diag(``diag``) becomes R (A = R^T R, upper
    triangle) and the right-hand side scale * G[:m, m] + ``prior_rhs`` (empty: none) becomes
    w = R^-T rhs, in column m. Returns OK or NOT_POSITIVE_DEFINITE; ``solve_factored`` finishes the
    solve (or the draw).

    The ALS solve: scale 1, diag [reg_bias, lam, ..., lam], no prior_rhs. The Gibbs draw: scale =
    the noise precision, diag = the prior precisions, prior_rhs = precision * prior mean."""
    with_prior = prior_rhs.shape[0] > 0
    for a in range(m):
        Ga = G[a, a:m + 1]
        for b in range(m + 1 - a):
            Ga[b] *= scale
        Ga[0] += diag[a]
        if with_prior:
            G[a, m] += prior_rhs[a]
    return _cholesky_rows(G, m, m + 1)


@njit(cache=True, fastmath=FASTMATH)
def solve_factored(G, m, noise, out):
    """``out[:m]`` = R^-1 (w + ``noise``) from ``factor_row``'s R and w: the solution A^-1 rhs when
    ``noise`` is empty (or zero), a draw from N(A^-1 rhs, A^-1) when it holds m standard normals.
    Returns OK, or NOT_FINITE when the result holds NaN or inf."""
    for a in range(m):
        out[a] = G[a, m]
    if noise.shape[0]:
        for a in range(m):
            out[a] += noise[a]
    solve_upper(G, out, m)
    for i in range(m):
        if not np.isfinite(out[i]):
            return NOT_FINITE
    return OK


@njit(cache=True, fastmath=FASTMATH)
def exact_row_solve(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, scale, diag,
                    prior_rhs, G, Xt, out):
    """Gather, Gram, diagonal, factor and solve one row: ``out[:m]`` receives z = [b, x] solving
    (scale * A + diag(diag)) z = scale * rhs + prior_rhs (see ``factor_row``). Returns OK,
    NOT_POSITIVE_DEFINITE or NOT_FINITE."""
    m = fixed.shape[1] + 1
    row_normal_equations(r, start, end, indices, values, fixed, fixed_bias, mu, row_shift, has_shift, G, Xt)
    if factor_row(G, m, scale, diag, prior_rhs) != OK:
        return NOT_POSITIVE_DEFINITE
    return solve_factored(G, m, diag[:0], out)
