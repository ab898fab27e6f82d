"""The exact per-row solve (mfrec.kernels.exact) against NumPy, piece by piece, and its determinism."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from naive import naive_normal_equations, naive_solve_rows

from mfrec.kernels.exact import (
    NOT_FINITE,
    NOT_POSITIVE_DEFINITE,
    OK,
    PAD,
    cholesky_upper,
    exact_buffers,
    exact_row_solve,
    factor_row,
    gram_rows,
    gram_tiles,
    row_normal_equations,
    solve_factored,
    solve_lower_t,
    solve_upper,
)


def ragged_csr(seed, n_rows, n_cols, k, max_len):
    """A CSR with an empty row (1), a one-rating row (2), all-equal ratings (3) and random rows up to max_len."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(2, max_len + 1, n_rows)
    lens[1], lens[2] = 0, 1
    indptr = np.zeros(n_rows + 1, np.int64)
    indptr[1:] = np.cumsum(lens)
    indices = np.concatenate([np.sort(rng.choice(n_cols, n, replace=False)) for n in lens]).astype(np.int32)
    values = rng.integers(1, 11, indptr[-1]).astype(np.float32) / 2
    values[indptr[3]:indptr[4]] = 4.0
    fixed = rng.normal(0, 0.5, (n_cols, k)).astype(np.float32)
    fbias = rng.normal(0, 0.3, n_cols).astype(np.float32)
    return indptr, indices, values, fixed, fbias


@pytest.mark.nojit
@pytest.mark.parametrize("p", [4, 8, 12])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 9])
def test_gram_tiles_add_the_upper_triangle(p, n):
    rng = np.random.default_rng(p * 100 + n)
    Xa = rng.standard_normal((p, 12))
    Xb = rng.standard_normal((p, 12))
    start = rng.standard_normal((p, p))
    X32 = Xa.astype(np.float32)
    for a, b in ((Xa, Xa), (Xa, Xb), (X32, X32)):  # a plain and a weighted Gram, float32 storage
        for rows in {p, p - 1}:  # all rows, and an odd count
            G = start.copy()
            gram_tiles(a, b, rows, n, G)
            want = start + a[:, :n].astype(np.float64) @ b[:, :n].T.astype(np.float64)
            iu = np.triu_indices(rows)
            np.testing.assert_allclose(G[:rows, :rows][iu], want[:rows, :rows][iu], rtol=1e-12, atol=1e-12)


@pytest.mark.nojit
@pytest.mark.parametrize("k", [3, 6])
@pytest.mark.parametrize("shift", [False, True])
def test_row_normal_equations_match_naive_over_several_chunks(k, shift):
    """Chunks of 8 entries (rows of up to 30), with the row shift; the work buffers start as NaN, so a
    row reads nothing it did not write."""
    indptr, indices, values, fixed, fbias = ragged_csr(1, 7, 40, k, 30)
    n_rows = len(indptr) - 1
    row_shift = np.random.default_rng(2).normal(0, 0.2, (n_rows, k)).astype(np.float32) if shift else np.zeros((0, k), np.float32)
    p = gram_rows(k)
    m = k + 1
    for r in range(n_rows):
        G = np.full((p, p), np.nan)
        Xt = np.full((p, 8 + PAD), np.nan, np.float32)
        row_normal_equations(r, indptr[r], indptr[r + 1], indices, values, fixed, fbias, np.float32(3.5),
                             row_shift, shift, G, Xt)
        system = naive_normal_equations(indptr, indices, values, fixed, fbias, np.float32(3.5), 0.0, 0.0, False, r,
                                        row_shift if shift else None)
        if system is None:  # the empty row: zeros
            assert not np.triu(G[:m, :m + 1]).any()
            continue
        A, rhs = system
        iu = np.triu_indices(m)
        np.testing.assert_allclose(G[:m, :m][iu], A[iu], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(G[:m, m], rhs, rtol=1e-5, atol=1e-5)


@pytest.mark.nojit
def test_cholesky_and_substitutions_on_a_leading_block():
    """cholesky_upper / solve_lower_t / solve_upper on the leading m x m block of a larger buffer read
    only the block's upper triangle; a matrix that is not positive definite, or NaN, is reported."""
    rng = np.random.default_rng(3)
    m = 7
    X = rng.standard_normal((20, m))
    A = X.T @ X + 0.1 * np.eye(m)
    big = np.full((m + 2, m + 3), np.nan)
    big[:m, :m] = np.triu(A)
    assert cholesky_upper(big, m) == OK
    R = np.triu(big[:m, :m])
    np.testing.assert_allclose(R, np.linalg.cholesky(A).T, rtol=1e-12, atol=1e-12)
    b = rng.standard_normal(m)
    v = np.concatenate([b, [np.nan]])
    solve_lower_t(big, v, m)
    np.testing.assert_allclose(v[:m], np.linalg.solve(R.T, b), rtol=1e-10)
    solve_upper(big, v, m)
    np.testing.assert_allclose(v[:m], np.linalg.solve(A, b), rtol=1e-10)
    assert cholesky_upper(-np.eye(m), m) == NOT_POSITIVE_DEFINITE
    bad = np.triu(A)
    bad[2, 2] = np.nan
    assert cholesky_upper(bad, m) == NOT_POSITIVE_DEFINITE


@pytest.mark.nojit
@pytest.mark.parametrize("with_prior", [False, True])
def test_factor_row_then_solve_or_draw(with_prior):
    """factor_row + solve_factored solve (scale A + D) z = scale rhs + prior; with noise eps they give
    R^-1 (R^-T rhs + eps), the Gibbs draw, whose covariance is (scale A + D)^-1."""
    rng = np.random.default_rng(4)
    m = 6
    X = np.hstack([np.ones((15, 1)), rng.standard_normal((15, m - 1)), rng.standard_normal((15, 1))])
    aug = X.T @ X  # [A, rhs; rhs^T, t.t]: the augmented Gram row_normal_equations leaves
    p = 8
    G0 = np.full((p, p), np.nan)
    G0[:m + 1, :m + 1] = np.triu(aug)
    scale = 2.5
    diag = rng.uniform(0.5, 2.0, m)
    prior = rng.standard_normal(m) if with_prior else np.zeros(0)
    A = scale * aug[:m, :m] + np.diag(diag)
    rhs = scale * aug[:m, m] + (prior if with_prior else 0.0)
    G = G0.copy()
    assert factor_row(G, m, scale, diag, prior) == OK
    z = np.full(m + 1, np.nan)
    assert solve_factored(G, m, np.zeros(0), z) == OK
    np.testing.assert_allclose(z[:m], np.linalg.solve(A, rhs), rtol=1e-10)
    eps = rng.standard_normal(m)
    assert solve_factored(G, m, eps, z) == OK
    R = np.linalg.cholesky(A).T
    np.testing.assert_allclose(z[:m], np.linalg.solve(R, np.linalg.solve(R.T, rhs) + eps), rtol=1e-10)
    G = G0.copy()
    G[m - 1, m] = np.inf  # a right-hand side that overflows
    assert factor_row(G, m, scale, diag, prior) == OK
    with np.errstate(invalid="ignore"):  # inf - inf on the way (NUMBA_DISABLE_JIT runs)
        assert solve_factored(G, m, np.zeros(0), z) == NOT_FINITE
    G = G0.copy()
    assert factor_row(G, m, scale, -10 * scale * np.abs(aug.diagonal()[:m]), prior) == NOT_POSITIVE_DEFINITE


@pytest.mark.nojit
def test_exact_row_solve_is_the_ridge_regression():
    k = 5
    indptr, indices, values, fixed, fbias = ragged_csr(5, 6, 30, k, 25)
    G, Xt = exact_buffers(1, k)
    G, Xt = G[0], Xt[0, 0]
    z = np.zeros(k + 1)
    want_f, want_b = naive_solve_rows(indptr, indices, values, fixed, fbias, np.float32(3.0), 0.2, 1.5, True,
                                      reg_exponent=0.75)
    shift = np.zeros((0, k), np.float32)
    for r in range(len(indptr) - 1):
        n = indptr[r + 1] - indptr[r]
        if n == 0:
            continue
        diag = np.array([1.5] + [0.2 * n ** 0.75] * k)
        assert exact_row_solve(r, indptr[r], indptr[r + 1], indices, values, fixed, fbias, np.float32(3.0), shift,
                               False, 1.0, diag, np.zeros(0), G, Xt, z) == OK
        np.testing.assert_allclose(z[0], want_b[r], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(z[1:], want_f[r], rtol=1e-5, atol=1e-6)


def test_half_step_bits_do_not_depend_on_threads_or_rows_around():
    """Rows long enough for several gather chunks (up to 700 entries), k = 24: the explicit and the
    implicit Cholesky half-steps give the same bits on 1 and 2 threads, and a row solved alone (the
    fold-in) equals the same row solved inside the half-step."""
    from mfrec.kernels.als import solve_rows
    from mfrec.kernels.ials import solve_implicit_rows

    k = 24
    indptr, indices, values, fixed, fbias = ragged_csr(6, 40, 900, k, 700)
    before = numba.get_num_threads()
    out = []
    try:
        for threads in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(threads)
            f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.0, reg=0.1, reg_bias=1.0, solver="cholesky")
            x = solve_implicit_rows(indptr, indices, values, fixed, reg=0.1, alpha0=0.5, solver="cholesky")
            out.append((f, b, x))
    finally:
        numba.set_num_threads(before)
    for f, b, x in out[1:]:
        np.testing.assert_array_equal(f, out[0][0])
        np.testing.assert_array_equal(b, out[0][1])
        np.testing.assert_array_equal(x, out[0][2])
    for r in (0, 5, 17):
        sl = slice(indptr[r], indptr[r + 1])
        f1, b1 = solve_rows(np.array([0, sl.stop - sl.start]), indices[sl], values[sl], fixed, fbias, 3.0, reg=0.1,
                            reg_bias=1.0, solver="cholesky")
        np.testing.assert_array_equal(f1[0], out[0][0][r])
        assert b1[0] == out[0][1][r]
    want_f, want_b = naive_solve_rows(indptr, indices, values, fixed, fbias, np.float32(3.0), 0.1, 1.0, True)
    np.testing.assert_allclose(out[0][0], want_f, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[0][1], want_b, rtol=1e-4, atol=1e-5)
