"""A row's solve does not depend on where its arrays lie in memory (the last-bit determinism bug).

The kernels re-associate sums (``kernels/_config.py``) so that LLVM vectorises them. A loop that
both stores into one array and sums over others gets a runtime check that the arrays do not overlap
within a vector's reach, and falls back to a scalar copy of the loop when they might; the scalar copy
adds in another order. Whether that happens depended on the arrays' addresses, i.e. on what the
process had allocated before: an mf-genre retrain after other models' tests differed from the first
fit in the last bit of a few dozen values. The CG rows now keep stores and re-associated sums in
separate loops; these tests place the scratch buffers right after (and before) the arrays the solve
reads, at every 4-byte gap up to 128 bytes (two AVX2 vectors unrolled twice), and demand the same bits.
"""

from __future__ import annotations

import numpy as np
import pytest

GAPS = range(0, 132, 4)  # bytes between two carved arrays


class Arena:
    """Arrays carved one after the other out of one allocation, ``gap`` bytes apart."""

    def __init__(self, nbytes: int):
        self.raw = np.zeros(nbytes + 4096, np.uint8)
        self.at = (-self.raw.ctypes.data) % 64  # start on a cache line

    def take(self, shape, dtype, gap: int = 0):
        dtype = np.dtype(dtype)
        self.at += gap + (-(self.at + gap)) % dtype.itemsize
        n = int(np.prod(shape)) * dtype.itemsize
        out = np.ndarray(shape, dtype, buffer=self.raw, offset=self.at)
        self.at += n
        return out


def _problem(k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_cols, lengths = 40, [1, 7, 23, 40, 12]
    indptr = np.zeros(len(lengths) + 1, np.int64)
    indptr[1:] = np.cumsum(lengths)
    # every row reads the last fixed row too (the one that sits right before a buffer placed after it)
    indices = np.concatenate([np.sort(rng.choice(n_cols - 1, n - 1, replace=False)).tolist() + [n_cols - 1]
                              for n in lengths]).astype(np.int32)
    values = rng.integers(1, 6, len(indices)).astype(np.float32)
    fixed = rng.standard_normal((n_cols, k)).astype(np.float32)
    bias = (rng.standard_normal(n_cols) * 0.2).astype(np.float32)
    start = (rng.standard_normal((len(lengths), k)) * 0.1).astype(np.float32)
    return indptr, indices, values, fixed, bias, start


def _explicit(problem, order: str, gap: int, solver: int = 1):
    """The explicit half-step with its float32 arrays carved in ``order`` ("fixed,bufs", ...) ``gap`` apart."""
    from mfrec.kernels.als import _half_step
    from mfrec.kernels.exact import exact_buffers

    indptr, indices, values, fixed0, bias, start = problem
    n_rows, k = start.shape
    max_row = int(np.max(np.diff(indptr)))
    shapes = {"fixed": fixed0.shape, "bufs": (1, max_row, k), "work32": (1, 5, k), "wts": (1, 2, max_row),
              "out": start.shape}
    arena = Arena(sum(4 * int(np.prod(s)) for s in shapes.values()) + 8 * gap)
    names = order.split(",") + [n for n in shapes if n not in order.split(",")]
    a = {n: arena.take(shapes[n], np.float32, gap) for n in names}
    a["fixed"][:] = fixed0
    a["out"][:] = start
    out_bias = np.zeros(n_rows, np.float32)
    status = np.zeros(n_rows, np.int8)
    if solver:  # cg: the Cholesky buffers are empty
        G, Xt, vec64 = np.zeros((1, 0, 0)), np.zeros((1, 1, 0, 0), np.float32), np.zeros((1, 2, 0))
    else:
        (G, Xt), vec64 = exact_buffers(1, k), np.zeros((1, 2, k + 1))
    _half_step(indptr, indices, values, a["fixed"], bias, 3.5, np.zeros((0, k), np.float32), 0.1, 0.5, True, 0.75,
               solver, 3, 1, G, vec64, Xt, a["work32"], a["bufs"], a["wts"], a["out"], out_bias,
               np.zeros((0, k), np.float32), status)
    assert not status.any()
    return a["out"].copy(), out_bias


def _implicit(problem, order: str, gap: int):
    from mfrec.kernels.ials import _ials_half_step

    indptr, indices, values, fixed0, _, start = problem
    n_rows, k = start.shape
    max_row = int(np.max(np.diff(indptr)))
    shapes = {"fixed": fixed0.shape, "bufs": (1, max_row, k), "work32": (1, 5, k), "wts": (1, 2, max_row),
              "out": start.shape}
    arena = Arena(sum(4 * int(np.prod(s)) for s in shapes.values()) + 8 * gap)
    names = order.split(",") + [n for n in shapes if n not in order.split(",")]
    a = {n: arena.take(shapes[n], np.float32, gap) for n in names}
    a["fixed"][:] = fixed0
    a["out"][:] = start
    g64 = (fixed0.T.astype(np.float64) @ fixed0) * 0.5
    status = np.zeros(n_rows, np.int8)
    conf = 1.0 + values / 5.0
    _ials_half_step(indptr, indices, conf.astype(np.float32), a["fixed"], g64, g64.astype(np.float32), 0.5, 0.01, 1.0,
                    1, 3, np.zeros((1, 0, 0)), np.zeros((1, 2, 0, 0)), np.zeros((1, 2, 0)), a["work32"], a["bufs"],
                    a["wts"], a["out"], status)
    assert not status.any()
    return a["out"].copy()


ORDERS = ("fixed,bufs", "bufs,fixed", "work32,bufs", "bufs,work32", "out,work32", "work32,out", "fixed,work32")


@pytest.mark.parametrize("k", [3, 8, 13, 16, 32])
def test_explicit_cg_rows_give_the_same_bits_wherever_their_arrays_lie(k):
    problem = _problem(k)
    want = _explicit(problem, "bufs,fixed,work32,wts,out", 4096 // 8)  # far apart
    for order in ORDERS:
        for gap in GAPS:
            got = _explicit(problem, order, gap)
            assert got[0].tobytes() == want[0].tobytes() and got[1].tobytes() == want[1].tobytes(), (order, gap)


@pytest.mark.parametrize("k", [3, 8, 16, 32])
def test_implicit_cg_rows_give_the_same_bits_wherever_their_arrays_lie(k):
    problem = _problem(k, seed=1)
    want = _implicit(problem, "bufs,fixed,work32,wts,out", 4096 // 8)
    for order in ORDERS[:-1] + ("fixed,wts",):
        for gap in GAPS:
            assert _implicit(problem, order, gap).tobytes() == want.tobytes(), (order, gap)


@pytest.mark.parametrize("k", [3, 8, 16])
def test_explicit_cholesky_rows_give_the_same_bits_wherever_their_arrays_lie(k):
    problem = _problem(k, seed=2)
    want = _explicit(problem, "fixed,out", 4096 // 8, solver=0)
    for order in ("fixed,out", "out,fixed"):
        for gap in GAPS:
            got = _explicit(problem, order, gap, solver=0)
            assert got[0].tobytes() == want[0].tobytes() and got[1].tobytes() == want[1].tobytes(), (order, gap)
