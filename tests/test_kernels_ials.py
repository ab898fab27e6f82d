"""The implicit ALS half-step (mfrec.kernels.ials) against the dense NumPy reference in tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest

from naive import naive_implicit_rows

from mfrec.kernels.als import SolveError
from mfrec.kernels.ials import gramian, solve_implicit_rows

pytestmark = pytest.mark.nojit


def tiny_implicit(seed=0, n_rows=8, n_cols=11, k=4):
    """Positives with confidences: an empty row (1), a one-positive row (2), equal confidences (3)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_rows):
        cols = (np.array([], np.int32) if r == 1 else np.array([5], np.int32) if r == 2
                else np.sort(rng.choice(n_cols, rng.integers(2, n_cols), replace=False)).astype(np.int32))
        conf = np.full(len(cols), 3.0) if r == 3 else 1.0 + 4.0 * rng.random(len(cols))
        rows.append((cols, conf.astype(np.float32)))
    indptr = np.zeros(n_rows + 1, np.int64)
    indptr[1:] = np.cumsum([len(c) for c, _ in rows])
    indices = np.concatenate([c for c, _ in rows]).astype(np.int32)
    conf = np.concatenate([v for _, v in rows]).astype(np.float32)
    return indptr, indices, conf, rng.normal(0, 0.5, (n_cols, k)).astype(np.float32)


@pytest.mark.parametrize("alpha0,nu", [(1.0, 0.0), (0.3, 1.0), (0.05, 0.5)])
def test_cholesky_matches_dense_reference(alpha0, nu):
    indptr, indices, conf, Y = tiny_implicit()
    got = solve_implicit_rows(indptr, indices, conf, Y, reg=0.05, alpha0=alpha0, nu=nu, solver="cholesky")
    want = naive_implicit_rows(indptr, indices, conf, Y, 0.05, alpha0, nu)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert got.dtype == np.float32 and not got[1].any()  # the empty row: zero factors


def test_cg_converges_to_the_exact_solution():
    indptr, indices, conf, Y = tiny_implicit(seed=3, n_rows=20, n_cols=30, k=6)
    exact = solve_implicit_rows(indptr, indices, conf, Y, reg=0.02, alpha0=0.5, nu=1.0, solver="cholesky")
    X = np.zeros_like(exact)
    errors = []
    for _ in range(10):  # warm-started: each call continues from the last
        solve_implicit_rows(indptr, indices, conf, Y, reg=0.02, alpha0=0.5, nu=1.0, solver="cg", cg_steps=2,
                            out_factors=X)
        errors.append(float(np.abs(X - exact).max()))
    assert errors[-1] < 1e-3 * max(1.0, float(np.abs(exact).max()))
    assert errors[-1] < errors[0]
    # k steps of CG from any start solve a k-dimensional system (up to rounding)
    X2 = np.zeros_like(exact)
    solve_implicit_rows(indptr, indices, conf, Y, reg=0.02, alpha0=0.5, nu=1.0, solver="cg", cg_steps=12, out_factors=X2)
    np.testing.assert_allclose(X2, exact, rtol=1e-3, atol=1e-4)


def test_given_gramian_is_used_and_checked():
    indptr, indices, conf, Y = tiny_implicit()
    a = solve_implicit_rows(indptr, indices, conf, Y, reg=0.05, alpha0=0.3, nu=1.0, gram=gramian(Y, 0.3))
    b = solve_implicit_rows(indptr, indices, conf, Y, reg=0.05, alpha0=0.3, nu=1.0)
    np.testing.assert_array_equal(a, b)
    c = solve_implicit_rows(indptr, indices, conf, Y, reg=0.05, alpha0=0.3, nu=1.0, gram=gramian(Y, 0.6))
    assert not np.allclose(a, c)  # the Gramian enters the solve
    with pytest.raises(ValueError, match="gram must be"):
        solve_implicit_rows(indptr, indices, conf, Y, reg=0.05, gram=np.eye(2))


def test_bad_inputs_are_refused():
    indptr, indices, conf, Y = tiny_implicit()
    with pytest.raises(ValueError, match="confidence"):
        solve_implicit_rows(indptr, indices, np.where(conf > 2, -1.0, conf), Y, reg=0.1)
    with pytest.raises(ValueError, match="column indices"):
        solve_implicit_rows(indptr, indices + 100, conf, Y, reg=0.1)
    with pytest.raises(ValueError, match="unknown solver"):
        solve_implicit_rows(indptr, indices, conf, Y, reg=0.1, solver="lu")


def test_singular_system_names_the_row():
    # no penalty, no zero weight and one positive in k = 4 dimensions: y y^T is singular
    indptr, indices, conf, Y = tiny_implicit()
    with pytest.raises(SolveError, match="user 2"):
        solve_implicit_rows(indptr, indices, conf, Y, reg=0.0, alpha0=0.0, nu=0.0, solver="cholesky", what="user")
