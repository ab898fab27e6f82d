"""The ALS kernels against the NumPy references in tests/naive.py, on tiny problems with edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from naive import naive_genre_factors, naive_normal_equations, naive_predict, naive_solve_rows

from mfrec.kernels.als import SolveError, genre_part, solve_rows
from mfrec.kernels.genre import genre_index, genre_sets, pcg, solve_genre_factors
from mfrec.kernels.predict import error_sums, error_sums_csr, predict

pytestmark = pytest.mark.nojit


def tiny_problem(seed=0, n_rows=7, n_cols=9, k=4):
    """A CSR with an empty row (1), a one-rating row (2), an all-equal row (3) and random rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_rows):
        if r == 1:
            cols = np.array([], np.int32)
        elif r == 2:
            cols = np.array([4], np.int32)
        else:
            cols = np.sort(rng.choice(n_cols, rng.integers(2, n_cols), replace=False)).astype(np.int32)
        vals = np.full(len(cols), 4.0, np.float32) if r == 3 else rng.integers(1, 6, len(cols)).astype(np.float32)
        rows.append((cols, vals))
    indptr = np.zeros(n_rows + 1, np.int64)
    indptr[1:] = np.cumsum([len(c) for c, _ in rows])
    indices = np.concatenate([c for c, _ in rows]).astype(np.int32)
    values = np.concatenate([v for _, v in rows]).astype(np.float32)
    fixed = rng.normal(0, 0.5, (n_cols, k)).astype(np.float32)
    fbias = rng.normal(0, 0.3, n_cols).astype(np.float32)
    return indptr, indices, values, fixed, fbias


@pytest.mark.parametrize("weighted,exponent", [(True, 1.0), (True, 0.75), (False, 1.0)])
@pytest.mark.parametrize("shift", [False, True])
def test_cholesky_matches_naive(weighted, exponent, shift):
    indptr, indices, values, fixed, fbias = tiny_problem()
    row_shift = np.random.default_rng(1).normal(0, 0.2, (len(indptr) - 1, fixed.shape[1])).astype(np.float32) if shift else None
    f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.5, reg=0.1, reg_bias=2.0, weighted=weighted,
                      reg_exponent=exponent, solver="cholesky", row_shift=row_shift)
    nf, nb = naive_solve_rows(indptr, indices, values, fixed, fbias, np.float32(3.5), 0.1, 2.0, weighted, row_shift,
                              reg_exponent=exponent)
    np.testing.assert_allclose(f, nf, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b, nb, rtol=1e-4, atol=1e-5)
    assert f.dtype == np.float32 and b.dtype == np.float32
    # the empty row gets zeros; the one-rating row is a finite, shrunk solution
    assert b[1] == 0 and not f[1].any()
    assert np.all(np.isfinite(f[2])) and abs(b[2]) < abs(values[indptr[2]] - 3.5 - fbias[4]) + 1e-6


def test_all_equal_ratings_and_bias_only():
    """k = 0 is the bias model: b = sum(t) / (n + reg_bias); all-equal ratings give one shared bias."""
    indptr, indices, values, _, fbias = tiny_problem()
    fixed = np.zeros((len(fbias), 0), np.float32)
    for solver in ("cholesky", "cg"):
        f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.0, reg=0.1, reg_bias=1.5, solver=solver)
        assert f.shape == (len(indptr) - 1, 0)
        for r in range(len(indptr) - 1):
            cols = indices[indptr[r]:indptr[r + 1]]
            t = values[indptr[r]:indptr[r + 1]].astype(np.float64) - 3.0 - fbias[cols]
            expect = t.sum() / (len(t) + 1.5) if len(t) else 0.0
            assert b[r] == pytest.approx(expect, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("warm", [False, True])
def test_cg_converges_to_naive(warm):
    indptr, indices, values, fixed, fbias = tiny_problem(seed=3)
    n_rows, k = len(indptr) - 1, fixed.shape[1]
    rng = np.random.default_rng(5)
    out_f = rng.normal(0, 1, (n_rows, k)).astype(np.float32) if warm else np.zeros((n_rows, k), np.float32)
    out_b = rng.normal(0, 1, n_rows).astype(np.float32) if warm else np.zeros(n_rows, np.float32)
    f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.5, reg=0.1, reg_bias=2.0, solver="cg",
                      cg_steps=3 * (k + 1), out_factors=out_f, out_bias=out_b)
    assert f is out_f and b is out_b  # written in place
    nf, nb = naive_solve_rows(indptr, indices, values, fixed, fbias, np.float32(3.5), 0.1, 2.0, True)
    np.testing.assert_allclose(f, nf, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(b, nb, rtol=1e-3, atol=1e-4)


def test_cg_error_in_the_a_norm_never_grows_and_k_plus_1_steps_solve():
    """What conjugate gradient guarantees, per row, from the row's normal equations A z = rhs.

    The error's A-norm sqrt(e' A e) never grows with more steps (other norms of it may), and in exact
    arithmetic k + 1 steps solve the (k + 1)-dimensional system. The kernel works in float32, whose
    rounding can delay that by a step or two (up to 0.4% of the starting error left after k + 1 steps
    over 90 random problems), so k + 1 steps must leave under 1% of it, and 2 (k + 1) steps must
    agree with the direct solve to float32 rounding.
    """
    indptr, indices, values, fixed, fbias = tiny_problem(seed=4, n_rows=20, n_cols=30, k=8)
    k = fixed.shape[1]
    rows, systems, exact = [], [], []
    for r in range(len(indptr) - 1):
        system = naive_normal_equations(indptr, indices, values, fixed, fbias, np.float32(3.5), 0.05, 1.0, True, r)
        if system is not None:
            rows.append(r)
            systems.append(system[0])
            exact.append(np.linalg.solve(*system))

    def a_norm_errors(steps):
        f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.5, reg=0.05, reg_bias=1.0, solver="cg",
                          cg_steps=steps)
        errors = [np.concatenate([[b[r]], f[r]]) - z for r, z in zip(rows, exact)]
        return np.array([np.sqrt(e @ A @ e) for e, A in zip(errors, systems)])

    start = np.array([np.sqrt(z @ A @ z) for z, A in zip(exact, systems)])  # the cold start is z = 0
    errs = np.array([start] + [a_norm_errors(steps) for steps in range(1, k + 2)])
    assert np.all(np.diff(errs, axis=0) <= 1e-6 * start)  # non-increasing, up to float32 rounding
    assert np.all(errs[-1] <= 1e-2 * start)
    assert np.all(a_norm_errors(2 * (k + 1)) <= 1e-5 * start)
    # warm-started from the exact answer, one step keeps it
    nf, nb = naive_solve_rows(indptr, indices, values, fixed, fbias, np.float32(3.5), 0.05, 1.0, True)
    f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.5, reg=0.05, reg_bias=1.0, solver="cg", cg_steps=1,
                      out_factors=nf.astype(np.float32), out_bias=nb.astype(np.float32))
    np.testing.assert_allclose(f, nf, atol=1e-4)


def test_single_row_fold_in_equals_full_half_step():
    indptr, indices, values, fixed, fbias = tiny_problem(seed=6)
    f, b = solve_rows(indptr, indices, values, fixed, fbias, 3.5, reg=0.1, reg_bias=2.0)
    r = 4
    sl = slice(indptr[r], indptr[r + 1])
    f1, b1 = solve_rows(np.array([0, sl.stop - sl.start]), indices[sl], values[sl], fixed, fbias, 3.5, reg=0.1, reg_bias=2.0)
    np.testing.assert_array_equal(f1[0], f[r])
    assert b1[0] == b[r]


def test_bad_inputs_raise():
    indptr, indices, values, fixed, fbias = tiny_problem()
    with pytest.raises(ValueError, match="solver"):
        solve_rows(indptr, indices, values, fixed, fbias, 3.0, reg=0.1, reg_bias=1.0, solver="lu")
    with pytest.raises(ValueError, match="column indices"):
        solve_rows(indptr, indices + 100, values, fixed, fbias, 3.0, reg=0.1, reg_bias=1.0)
    with pytest.raises(ValueError, match="reg"):
        solve_rows(indptr, indices, values, fixed, fbias, 3.0, reg=0.0, reg_bias=1.0)
    with pytest.raises(ValueError, match="malformed CSR"):
        solve_rows(indptr[:-1], indices, values, fixed, fbias, 3.0, reg=0.1, reg_bias=1.0)
    bad = values.copy()
    bad[0] = np.nan
    for solver in ("cholesky", "cg"):
        with pytest.raises(SolveError, match="user 0"):
            solve_rows(indptr, indices, bad, fixed, fbias, 3.0, reg=0.1, reg_bias=1.0, solver=solver, what="user")


def test_both_genre_solves_raise_the_one_nan_error():
    """The single-machine and the Dask genre step both run kernels.genre.pcg, whose one check turns
    a NaN or inf solution into SolveError (an infinite residual; a NaN warm start)."""
    from mfrec.models.dask_als import solve_genre_system

    y = np.zeros(4)
    r = np.array([np.inf, 0.0, 0.0, 0.0])
    with pytest.raises(SolveError, match="^the genre-factor solve gave NaN or inf; raise --reg$"), \
            np.errstate(invalid="ignore"):  # inf / inf on the way, as it would be in a fit
        pcg(lambda v: v, np.ones(4), y, r, 1e-9, 4)
    S = np.stack([np.eye(2), np.eye(2)])
    h = np.array([[2.0, 0.0], [1.0, 1.0]])
    y0 = np.array([[np.nan, 0.0], [0.0, 0.0]])
    with pytest.raises(SolveError, match="^the genre-factor solve gave NaN or inf; raise --reg$"):
        solve_genre_system([(0,), (0, 1)], S, h, np.array([3.0, 2.0]), 2, 0.1, True, 1.0, y0=y0, max_iter=3)
    y = solve_genre_system([(0,), (0, 1)], S, h, np.array([3.0, 2.0]), 2, 0.1, True, 1.0, y0=np.zeros((2, 2)),
                           max_iter=4)  # a finite start still solves
    assert np.all(np.isfinite(y)) and np.any(y != 0)


def test_genre_factors_match_naive():
    rng = np.random.default_rng(8)
    n_users, n_movies, n_genres, k = 12, 10, 4, 3
    genre_lists = [sorted(rng.choice(n_genres, rng.integers(1, 3), replace=False).tolist()) for _ in range(n_movies)]
    genre_lists[3] = []  # a movie without genres takes no part
    gp = np.zeros(n_movies + 1, np.int64)
    gp[1:] = np.cumsum([len(g) for g in genre_lists])
    gi = np.array([g for gs in genre_lists for g in gs], np.int32)
    movie_rows = []
    for i in range(n_movies):
        users = np.sort(rng.choice(n_users, rng.integers(0, 6), replace=False)).astype(np.int32)
        movie_rows.append((i, users, rng.integers(1, 6, len(users)).astype(np.float32)))
    mp = np.zeros(n_movies + 1, np.int64)
    mp[1:] = np.cumsum([len(u) for _, u, _ in movie_rows])
    mu_ = np.concatenate([u for _, u, _ in movie_rows]).astype(np.int32)
    mr = np.concatenate([r for _, _, r in movie_rows]).astype(np.float32)
    P = rng.normal(0, 0.5, (n_users, k)).astype(np.float32)
    Q = rng.normal(0, 0.5, (n_movies, k)).astype(np.float32)
    bu = rng.normal(0, 0.2, n_users).astype(np.float32)
    bi = rng.normal(0, 0.2, n_movies).astype(np.float32)
    sets, sp, sm = genre_sets(gp, gi)
    assert sorted(int(i) for i in sm) == [i for i in range(n_movies) if genre_lists[i]]
    # the same ratings by user (the genre step's right-hand side walks them user by user)
    order = np.argsort(mu_, kind="stable")
    up = np.zeros(n_users + 1, np.int64)
    up[1:] = np.cumsum(np.bincount(mu_, minlength=n_users))
    um = np.repeat(np.arange(n_movies, dtype=np.int32), np.diff(mp))[order]
    index = genre_index(gp, gi, n_genres, (up, um, mr[order]))
    # every (user, set) pair once, weighted by how many of the set's movies the user rated
    pairs = {}
    for i, users, _ in movie_rows:
        if genre_lists[i]:
            for u in users:
                key = (int(u), tuple(genre_lists[i]))
                pairs[key] = pairs.get(key, 0) + 1
    got = {}
    for u in range(n_users):
        for j in range(index.pair_indptr[u], index.pair_indptr[u + 1]):
            s = index.pair_sets[j]
            got[(u, tuple(index.set_genres[index.set_indptr[s]:index.set_indptr[s + 1]].tolist()))] = \
                float(index.pair_counts[j])
    assert got == pairs
    for weighted, exponent in ((True, 1.0), (True, 0.75), (False, 1.0)):
        stats = {}
        y = solve_genre_factors(index, (up, um, mr[order]), 3.5, bu, bi, P, Q, reg=0.3, weighted=weighted,
                                reg_exponent=exponent, stats=stats)
        ny = naive_genre_factors(movie_rows, n_genres, genre_lists, 3.5, bu.astype(np.float64), bi.astype(np.float64),
                                 P, Q, 0.3, weighted, exponent)
        np.testing.assert_allclose(y, ny, rtol=1e-4, atol=1e-5)
        assert 0 < stats["cg_iterations"] <= n_genres * k and stats["relative_residual"] <= 1e-7
        # warm-started from the answer, CG has nothing left to do; from a poor start it still converges
        warm = {}
        y2 = solve_genre_factors(index, (up, um, mr[order]), 3.5, bu, bi, P, Q, reg=0.3, weighted=weighted,
                                 reg_exponent=exponent, y0=ny, stats=warm)
        np.testing.assert_allclose(y2, ny, rtol=1e-4, atol=1e-5)
        assert warm["cg_iterations"] <= 1
        y3 = solve_genre_factors(index, (up, um, mr[order]), 3.5, bu, bi, P, Q, reg=0.3, weighted=weighted,
                                 reg_exponent=exponent, y0=-5 * ny)
        np.testing.assert_allclose(y3, ny, rtol=1e-4, atol=1e-5)
    # the movie half-step's residual sums stand in for the pass over the ratings
    y_old = rng.normal(0, 0.3, (n_genres, k)).astype(np.float32)
    G = genre_part(gp, gi, y_old)
    R = np.empty((n_movies, k), np.float32)
    Q2, bi2 = Q.copy(), bi.copy()
    solve_rows(mp, mu_, mr, P, bu, 3.5, reg=0.3, reg_bias=1.0, solver="cg", row_shift=G, out_factors=Q2,
               out_bias=bi2, out_residual=R)
    for i in range(n_movies):
        users, ratings = movie_rows[i][1], movie_rows[i][2]
        e = ratings - 3.5 - bu[users] - bi2[i] - P[users] @ (Q2[i] + G[i])
        np.testing.assert_allclose(R[i], P[users].T @ e, rtol=1e-4, atol=1e-5)
    y = solve_genre_factors(index, (up, um, mr[order]), 3.5, bu, bi2, P, Q2, reg=0.3, y0=y_old, movie_residual=R)
    ny = naive_genre_factors(movie_rows, n_genres, genre_lists, 3.5, bu.astype(np.float64), bi2.astype(np.float64),
                             P, Q2, 0.3, True, 1.0)
    np.testing.assert_allclose(y, ny, rtol=1e-4, atol=1e-5)
    # --solver cg's inexact step: at most max_iter iterations per call, each warm-started from the last,
    # and the calls still reach the exact solution (the fixed point the epochs converge to)
    y_cap = y_old.copy()
    errors = []
    for _ in range(40):
        capped = {}
        y_cap = solve_genre_factors(index, (up, um, mr[order]), 3.5, bu, bi2, P, Q2, reg=0.3, y0=y_cap, max_iter=2,
                                    stats=capped)
        assert capped["cg_iterations"] <= 2
        errors.append(float(np.abs(y_cap - ny).max()))
    assert errors[0] > 1e-3 and errors[-1] < 1e-4 and errors[-1] < errors[0] / 100
    part = genre_part(gp, gi, y)
    for i, gs in enumerate(genre_lists):
        expect = y[gs].sum(axis=0) / np.sqrt(len(gs)) if gs else np.zeros(k)
        np.testing.assert_allclose(part[i], expect, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("k", [0, 5])
def test_predict_and_error_sums_match_naive(k):
    rng = np.random.default_rng(9)
    nu, nm, n = 6, 8, 40
    P = rng.normal(0, 1, (nu, k)).astype(np.float32)
    Q = rng.normal(0, 1, (nm, k)).astype(np.float32)
    bu = rng.normal(0, 1, nu).astype(np.float32)
    bi = rng.normal(0, 1, nm).astype(np.float32)
    users = rng.integers(0, nu, n).astype(np.int32)
    movies = rng.integers(0, nm, n).astype(np.int32)
    ratings = rng.integers(1, 6, n).astype(np.float32)
    for scale in (None, (1.0, 5.0)):
        p = predict(users, movies, 3.2, bu, bi, P, Q, scale)
        np.testing.assert_allclose(p, naive_predict(users, movies, np.float32(3.2), bu, bi, P, Q, scale), rtol=1e-5, atol=1e-5)
        sq, ab = error_sums(users, movies, ratings, 3.2, bu, bi, P, Q, scale)
        e = naive_predict(users, movies, np.float32(3.2), bu, bi, P, Q, scale) - ratings
        assert sq == pytest.approx(np.sum(e * e), rel=1e-5)
        assert ab == pytest.approx(np.sum(np.abs(e)), rel=1e-5)
        # the same ratings as a user-CSR (users 1 and 4 rated nothing)
        keep = (users != 1) & (users != 4)
        order = np.argsort(users[keep], kind="stable")
        indptr = np.zeros(nu + 1, np.int64)
        indptr[1:] = np.cumsum(np.bincount(users[keep], minlength=nu))
        sq_c, ab_c = error_sums_csr(indptr, movies[keep][order], ratings[keep][order], 3.2, bu, bi, P, Q, scale)
        assert sq_c == pytest.approx(np.sum(e[keep] ** 2), rel=1e-5)
        assert ab_c == pytest.approx(np.sum(np.abs(e[keep])), rel=1e-5)
    assert error_sums(users[:0], movies[:0], ratings[:0], 3.2, bu, bi, P, Q) == (0.0, 0.0)
    with pytest.raises(ValueError, match="user indices"):
        predict(users + nu, movies, 3.2, bu, bi, P, Q)
