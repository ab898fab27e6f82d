"""The top-k kernel (parallel and serial entry points) and one-user scoring against tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest

from naive import naive_topk_filtered

from mfrec.errors import MfrecError
from mfrec.kernels.topk import SERIAL_ROWS, score_one, topk_rows

pytestmark = pytest.mark.nojit


def _problem(seed, n_rows=13, n_cols=40, ties=False):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_rows, n_cols)).astype(np.float32)
    if ties:
        scores = np.round(scores, 0)  # many equal scores: ties go to the lower index
    row_bias = rng.normal(size=n_rows).astype(np.float32)
    col_bias = (np.zeros(n_cols) if ties else rng.normal(size=n_cols)).astype(np.float32)
    allowed = rng.random(n_cols) < 0.8
    lengths = rng.integers(0, n_cols // 2, n_rows)
    lengths[0] = 0  # an empty exclusion row
    excluded = [rng.choice(n_cols, size=n, replace=False) for n in lengths]
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    indices = np.concatenate(excluded).astype(np.int32)
    return scores, row_bias, col_bias, allowed, excluded, indptr, indices


@pytest.mark.parametrize("seed,ties,k,n_rows", [(0, False, 5, 13), (1, True, 7, 13), (2, False, 1, 13), (3, True, 40, 13),
                                                (4, False, 5, 3), (5, True, 3, 1), (6, True, 4, SERIAL_ROWS),
                                                (7, True, 4, SERIAL_ROWS + 1)])
def test_topk_rows_matches_naive(seed, ties, k, n_rows):
    """Many rows take the parallel entry point, a few the serial one: both must agree with the reference."""
    scores, rb, cb, allowed, excluded, indptr, indices = _problem(seed, n_rows=n_rows, ties=ties)
    got_i, got_s = topk_rows(scores, k, row_bias=rb, col_bias=cb, allowed=allowed, exclude_indptr=indptr, exclude_indices=indices)
    ref_i, ref_s = naive_topk_filtered(scores, rb, cb, allowed, excluded, k)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_allclose(got_s, ref_s, rtol=1e-6, equal_nan=True)


def test_topk_of_no_rows():
    idx, sc = topk_rows(np.zeros((0, 5), np.float32), 3)
    assert idx.shape == (0, 3) and sc.shape == (0, 3)


def test_topk_pads_when_few_columns_are_eligible_and_skips_nan():
    scores = np.array([[1.0, np.nan, 3.0, 2.0]], np.float32)
    idx, sc = topk_rows(scores, 4, allowed=np.array([True, True, True, False]))
    assert idx.tolist() == [[2, 0, -1, -1]]
    assert np.isnan(sc[0, 2:]).all()


def test_topk_row_offset_reads_the_right_exclusion_row():
    scores = np.tile(np.arange(6, dtype=np.float32)[::-1], (2, 1))  # column 0 best
    indptr = np.array([0, 1, 2, 3], np.int64)
    indices = np.array([0, 1, 2], np.int32)  # row u excludes column u
    idx, _ = topk_rows(scores, 2, exclude_indptr=indptr, exclude_indices=indices, row_offset=1)
    assert idx.tolist() == [[0, 2], [0, 1]]


def test_topk_rejects_bad_input():
    with pytest.raises(MfrecError, match="k >= 1"):
        topk_rows(np.zeros((1, 3)), 0)
    with pytest.raises(MfrecError, match="shapes disagree"):
        topk_rows(np.zeros((2, 3)), 1, col_bias=np.zeros(4))
    with pytest.raises(MfrecError, match="outside"):
        topk_rows(np.zeros((1, 3)), 1, exclude_indptr=np.array([0, 1]), exclude_indices=np.array([5]))


def test_score_one_matches_numpy():
    rng = np.random.default_rng(9)
    Q = rng.normal(size=(57, 6)).astype(np.float32)
    v = rng.normal(size=6).astype(np.float32)
    b = rng.normal(size=57).astype(np.float32)
    np.testing.assert_allclose(score_one(Q, v, b, 3.25), Q.astype(np.float64) @ v + b + 3.25, rtol=1e-5, atol=1e-5)
    with pytest.raises(MfrecError, match="shapes disagree"):
        score_one(Q, v[:3], b, 0.0)
