"""The Gibbs draws of mfrec.kernels.gibbs against the dense NumPy references in tests/naive.py:
the conditional's mean and Cholesky draw for a fixed normal vector, the moments of many draws, the
coordinate-wise implicit-factor draws, the Normal-Gamma hyperparameter draw, and seed determinism."""

from __future__ import annotations

import numpy as np
import pytest

from mfrec.kernels.csr import csr_from_pairs
from mfrec.kernels.gibbs import (
    implicit_part,
    normal_gamma_draw,
    sample_implicit,
    sample_rows,
    standard_normals,
    time_bias_draw,
)
from naive import naive_gibbs_row, naive_gram_resid, naive_implicit_draws, naive_time_bias_draw

pytestmark = pytest.mark.nojit


def _problem(seed=0, n_rows=12, n_cols=9, k=3, density=0.5):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_cols)) < density
    mask[0] = False  # an empty row
    mask[1] = False
    mask[1, 2] = True  # a row with one rating
    rows, cols = np.nonzero(mask)
    indptr, indices = csr_from_pairs(rows, cols, n_rows)
    values = rng.uniform(1, 5, len(indices)).astype(np.float32)
    fixed = rng.normal(0, 0.7, (n_cols, k)).astype(np.float32)
    fbias = rng.normal(0, 0.3, n_cols).astype(np.float32)
    shift = rng.normal(0, 0.2, (n_rows, k)).astype(np.float32)
    prec = rng.uniform(0.5, 3.0, k + 1)
    mean = rng.normal(0, 0.2, k + 1)
    return indptr, indices, values, fixed, fbias, shift, prec, mean


@pytest.mark.parametrize("with_shift", [False, True])
@pytest.mark.parametrize("k", [3, 17])
def test_each_row_is_the_conditional_mean_plus_the_cholesky_draw(with_shift, k):
    indptr, indices, values, fixed, fbias, shift, prec, mean = _problem(k=k)
    k = fixed.shape[1]
    shift = shift if with_shift else None
    n = len(indptr) - 1
    gram, resid = np.zeros((n, k, k), np.float32), np.zeros((n, k))
    f, b = sample_rows(indptr, indices, values, fixed, fbias, 3.5, alpha=1.7, prec=prec, mean=mean, seed=5, sweep=2,
                       stream=1, row_shift=shift, gram=gram, resid=resid)
    for r in range(n):
        eps = standard_normals(5, 2, 1, r, k + 1)
        _, _, draw = naive_gibbs_row(indptr, indices, values, fixed, fbias, np.float32(3.5), 1.7, prec, mean, eps, r,
                                     shift)
        np.testing.assert_allclose(b[r], draw[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(f[r], draw[1:], rtol=1e-4, atol=1e-4)
        G, h = naive_gram_resid(indptr, indices, values, fixed, fbias, np.float32(3.5), b, f, r, shift)
        np.testing.assert_allclose(gram[r], G, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(resid[r], h, rtol=1e-3, atol=1e-3)
    # the empty row is a draw from the prior alone
    eps = standard_normals(5, 2, 1, 0, k + 1)
    np.testing.assert_allclose(b[0], mean[0] + eps[0] / np.sqrt(prec[0]), rtol=1e-5)


def test_many_draws_have_the_conditional_mean_and_covariance():
    indptr, indices, values, fixed, fbias, _, prec, mean = _problem(seed=1, n_rows=3)
    k = fixed.shape[1]
    r = 2
    A, m, _ = naive_gibbs_row(indptr, indices, values, fixed, fbias, np.float32(3.0), 0.8, prec, mean, np.zeros(k + 1), r)
    draws = []
    for sweep in range(2000):
        f, b = sample_rows(indptr, indices, values, fixed, fbias, 3.0, alpha=0.8, prec=prec, mean=mean, seed=9,
                           sweep=sweep, stream=1)
        draws.append(np.concatenate([[b[r]], f[r]]))
    draws = np.array(draws)
    cov = np.linalg.inv(A)
    se = np.sqrt(np.diag(cov) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - m) < 5 * se)
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.15, atol=0.15 * np.abs(cov).max())


def test_standard_normals_look_standard_and_differ_by_stream():
    x = np.concatenate([standard_normals(1, s, 1, 3, 7) for s in range(3000)])
    assert abs(x.mean()) < 0.05 and abs(x.std() - 1) < 0.05
    assert not np.allclose(standard_normals(1, 1, 1, 3, 4), standard_normals(1, 1, 2, 3, 4))
    assert not np.allclose(standard_normals(1, 1, 1, 3, 4), standard_normals(2, 1, 1, 3, 4))
    np.testing.assert_array_equal(standard_normals(1, 1, 1, 3, 4), standard_normals(1, 1, 1, 3, 4))


def test_implicit_draws_match_the_coordinatewise_reference():
    rng = np.random.default_rng(4)
    n_rows, n_items, k = 7, 5, 3
    mask = rng.random((n_items, n_rows)) < 0.6
    owners = [np.flatnonzero(mask[j]) for j in range(n_items)]
    ptr = np.zeros(n_items + 1, np.int64)
    ptr[1:] = np.cumsum([len(o) for o in owners])
    rows = np.concatenate(owners).astype(np.int32)
    coef = rng.uniform(0.2, 1.0, n_rows)
    X = rng.normal(size=(n_rows, 6, k))
    gram = np.einsum("rna,rnb->rab", X, X).astype(np.float32)
    resid = rng.normal(size=(n_rows, k))
    Z = rng.normal(0, 0.1, (n_items, k)).astype(np.float32)
    prec, mean = rng.uniform(0.5, 2, k), rng.normal(0, 0.1, k)
    ref_Z, ref_h = naive_implicit_draws(ptr, rows, coef, gram, resid.copy(), Z, 1.3, prec, mean,
                                        lambda j: standard_normals(8, 3, 4, j, k))
    h = resid.copy()
    sample_implicit(ptr, rows, coef, gram, h, Z, alpha=1.3, prec=prec, mean=mean, seed=8, sweep=3, stream=4)
    np.testing.assert_allclose(Z, ref_Z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h, ref_h, rtol=1e-4, atol=1e-5)


def test_time_bias_draw_matches_the_whole_array_reference():
    from types import SimpleNamespace

    rng = np.random.default_rng(6)
    nu, nm, k, bins = 7, 6, 3, 3
    mask = rng.random((nu, nm)) < 0.6
    mask[2] = False  # a user without ratings
    user, movie = np.nonzero(mask)  # (user, movie) order: the user CSR's
    rating = rng.integers(1, 6, len(user)).astype(np.float32)
    day = rng.integers(0, 3, len(user))
    when = rng.integers(0, bins, len(user))
    ud_keys, ud = np.unique(user * 100 + day, return_inverse=True)
    ib_keys, ib = np.unique(movie * bins + when, return_inverse=True)
    ud, ib = ud.astype(np.int32), ib.astype(np.int32)
    by_movie = np.lexsort((user, movie)).astype(np.int32)
    ucsr = SimpleNamespace(indptr=np.searchsorted(user, np.arange(nu + 1)).astype(np.int64),
                           indices=movie.astype(np.int32), values=rating)
    mcsr = SimpleNamespace(indptr=np.searchsorted(movie[by_movie], np.arange(nm + 1)).astype(np.int64),
                           indices=user[by_movie].astype(np.int32), values=rating[by_movie])
    ud_ptr = np.searchsorted(ud_keys // 100, np.arange(nu + 1)).astype(np.int64)
    ib_ptr = np.searchsorted(ib_keys // bins, np.arange(nm + 1)).astype(np.int64)
    P, Q = rng.normal(0, 0.5, (nu, k)).astype(np.float32), rng.normal(0, 0.5, (nm, k)).astype(np.float32)
    bu, bi = rng.normal(0, 0.3, nu).astype(np.float32), rng.normal(0, 0.3, nm).astype(np.float32)
    b_ud, b_ib = rng.normal(0, 0.2, len(ud_keys)), rng.normal(0, 0.2, len(ib_keys))
    ud_eps, ib_eps = rng.standard_normal(len(ud_keys)), rng.standard_normal(len(ib_keys))
    ref = naive_time_bias_draw(user, movie, rating, ud, ib, b_ud, b_ib, 3.5, bu, bi, P, Q, 1.7, (0.1, 2.0),
                               (-0.1, 3.0), ud_eps, ib_eps)
    uvals, mvals = np.zeros(len(user), np.float32), np.zeros(len(user), np.float32)
    sse = time_bias_draw(ucsr, mcsr, ud, ib, by_movie, ud_ptr, ib_ptr, np.bincount(ud), np.bincount(ib), b_ud, b_ib,
                         3.5, bu, bi, P, Q, alpha=1.7, ud_prior=(0.1, 2.0), ib_prior=(-0.1, 3.0), ud_eps=ud_eps,
                         ib_eps=ib_eps, user_values=uvals, movie_values=mvals)
    np.testing.assert_allclose(b_ud, ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b_ib, ref[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(uvals, ref[2], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mvals, ref[2][by_movie], rtol=1e-6, atol=1e-6)
    assert sse == pytest.approx(ref[3], rel=1e-5)


def test_implicit_part_is_the_scaled_sum():
    indptr = np.array([0, 2, 2, 5], np.int64)
    indices = np.array([0, 3, 1, 2, 3], np.int32)
    coef = np.array([0.5, 1.0, 0.25])
    Z = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = implicit_part(indptr, indices, coef, Z)
    np.testing.assert_allclose(out, [0.5 * (Z[0] + Z[3]), np.zeros(3), 0.25 * (Z[1] + Z[2] + Z[3])])


def test_normal_gamma_draw_centres_on_the_data():
    rng = np.random.default_rng(0)
    theta = rng.normal([0.5, -1.0], [0.2, 2.0], size=(20_000, 2))
    draws = [normal_gamma_draw(np.random.default_rng(s), theta) for s in range(50)]
    means = np.mean([d[0] for d in draws], axis=0)
    precs = np.mean([d[1] for d in draws], axis=0)
    np.testing.assert_allclose(means, [0.5, -1.0], atol=0.03)
    np.testing.assert_allclose(precs, [1 / 0.04, 1 / 4.0], rtol=0.05)


def test_bad_arguments_are_one_sentence_errors():
    indptr, indices, values, fixed, fbias, _, prec, mean = _problem()
    with pytest.raises(ValueError, match="alpha"):
        sample_rows(indptr, indices, values, fixed, fbias, 3.0, alpha=0.0, prec=prec, mean=mean, seed=0, sweep=0,
                    stream=0)
    with pytest.raises(ValueError, match="precisions"):
        sample_rows(indptr, indices, values, fixed, fbias, 3.0, alpha=1.0, prec=-prec, mean=mean, seed=0, sweep=0,
                    stream=0)
