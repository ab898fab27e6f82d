"""recommend_all (BLAS-scored blocks through the top-k kernel) against the NumPy reference in tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest

from naive import naive_topk_filtered

from mfrec.inference.topk import recommend_all

pytestmark = pytest.mark.nojit


def test_recommend_all_matches_naive_in_blocks():
    rng = np.random.default_rng(5)
    n_users, n_movies, k = 23, 31, 4
    P = rng.normal(size=(n_users, k)).astype(np.float32)
    Q = rng.normal(size=(n_movies, k)).astype(np.float32)
    bu = rng.normal(size=n_users).astype(np.float32)
    bi = rng.normal(size=n_movies).astype(np.float32)
    excluded = [rng.choice(n_movies, size=rng.integers(0, 10), replace=False) for _ in range(n_users)]
    indptr = np.r_[0, np.cumsum([len(e) for e in excluded])].astype(np.int64)
    indices = np.concatenate(excluded).astype(np.int32)
    got_i, got_s = recommend_all(P, Q, bu, bi, 3.5, 6, exclude_indptr=indptr, exclude_indices=indices, block=5)
    scores = (P @ Q.T).astype(np.float32)
    ref_i, ref_s = naive_topk_filtered(scores, bu, bi + np.float32(3.5), np.ones(n_movies, bool), excluded, 6)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_allclose(got_s, ref_s, rtol=1e-5)
    users = np.array([7, 2, 19])
    sub_i, _ = recommend_all(P, Q, bu, bi, 3.5, 6, exclude_indptr=indptr, exclude_indices=indices, users=users, block=2)
    np.testing.assert_array_equal(sub_i, ref_i[users])
    none_i, none_s = recommend_all(P, Q, bu, bi, 3.5, 6, exclude_indptr=indptr, exclude_indices=indices, users=np.zeros(0, np.int64))
    assert none_i.shape == none_s.shape == (0, 6)
