"""The per-user ranking-metric kernel against tests/naive.py and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mfrec.errors import MfrecError
from mfrec.kernels.ranking import user_metrics

from naive import naive_csr_of_lists as _csr
from naive import naive_user_metrics

pytestmark = pytest.mark.nojit

# movie -> genres for the hand-computed case (movie 4 has none)
GENRES = [[0], [1], [0, 1], [2], [], [3]]


def test_user_metrics_hand_computed():
    topk = np.array([[2, 3, 5], [3, 2, 1]], np.int32)
    targets = [[3, 4], [0]]
    history = [[0], [5, 4]]
    g = _csr(GENRES)
    out = user_metrics(topk, np.arange(2), *_csr(targets), *_csr(history), *g, n_genres=4)
    # user 0: target 3 at rank 1 -> DCG 1/log2(3), IDCG 1 + 1/log2(3); recall 1/2;
    # genres of history {0} vs of the list {0, 1, 2, 3} -> Jaccard 1/4
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert out[0].tolist() == pytest.approx([1.0, ndcg0, 0.5, 0.25, 2])
    # user 1: no hit; history genres {3} vs list {0, 1, 2} -> 0
    assert out[1].tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0, 1])
    np.testing.assert_allclose(out, naive_user_metrics(topk, targets, history, GENRES))


@pytest.mark.parametrize("seed", [3, 4])
def test_user_metrics_matches_naive(seed):
    rng = np.random.default_rng(seed)
    n, m, k, ng = 9, 25, 6, 5
    genres = [sorted(rng.choice(ng, size=rng.integers(0, 3), replace=False).tolist()) for _ in range(m)]
    history = [rng.choice(m, size=rng.integers(0, 6), replace=False).tolist() for _ in range(n)]
    targets = [rng.choice(m, size=rng.integers(1, 8), replace=False).tolist() for _ in range(n)]
    topk = np.stack([rng.choice(m, size=k, replace=False) for _ in range(n)]).astype(np.int32)
    topk[0, 4:] = -1
    out = user_metrics(topk, np.arange(n), *_csr(targets), *_csr(history), *_csr(genres), n_genres=ng)
    np.testing.assert_allclose(out, naive_user_metrics(topk, targets, history, genres))


def test_user_metrics_of_a_subset_of_rows_and_of_no_rows():
    targets, history = [[1], [2, 3], []], [[0], [], [4]]
    topk = np.array([[3, 2], [1, 0]], np.int32)
    rows = np.array([1, 0])  # top-k row i belongs to CSR row rows[i]
    out = user_metrics(topk, rows, *_csr(targets), *_csr(history), *_csr(GENRES), n_genres=4)
    want = naive_user_metrics(topk, [targets[r] for r in rows], [history[r] for r in rows], GENRES)
    np.testing.assert_allclose(out, want)
    none = user_metrics(np.zeros((0, 2), np.int32), np.zeros(0), *_csr(targets), *_csr(history), *_csr(GENRES), n_genres=4)
    assert none.shape == (0, 5)


def test_user_metrics_rejects_bad_input():
    t, h, g = _csr([[1]]), _csr([[0]]), _csr(GENRES)
    with pytest.raises(MfrecError, match="outside"):
        user_metrics(np.array([[6]], np.int32), np.array([0]), *t, *h, *g, n_genres=4)
    with pytest.raises(MfrecError, match="rows must index"):
        user_metrics(np.array([[1]], np.int32), np.array([1]), *t, *h, *g, n_genres=4)
    with pytest.raises(MfrecError, match="targets"):
        user_metrics(np.array([[1]], np.int32), np.array([0]), np.array([0, 2]), np.array([1], np.int32), *h, *g, n_genres=4)
