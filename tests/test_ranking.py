"""Full-ranking metrics: the Numba kernels against tests/naive.py and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mfrec.errors import MfrecError, ModelError
from mfrec.evaluation.ranking import Popularity, csr_from_pairs, evaluate_ranking, top_k, user_metrics

from naive import naive_top_k, naive_user_metrics

# movie -> genres for the hand-computed case (movie 4 has none)
GENRES = [[0], [1], [0, 1], [2], [], [3]]


def _csr(lists):
    indptr = np.zeros(len(lists) + 1, np.int64)
    indptr[1:] = np.cumsum([len(x) for x in lists])
    return indptr, np.array([m for x in lists for m in x], dtype=np.int32)


@pytest.mark.nojit
def test_top_k_hand_computed():
    scores = np.array([[0.9, 0.1, 0.8, 0.8, 0.3, 0.5], [1, 2, 3, 4, 5, 6]], np.float32)
    excl = _csr([[0], [5, 4]])
    items, best = top_k(scores, *excl, k=3)
    # ties (movies 2 and 3 both 0.8) go to the lower index; excluded movies never appear
    assert items.tolist() == [[2, 3, 5], [3, 2, 1]]
    np.testing.assert_allclose(best, [[0.8, 0.8, 0.5], [4, 3, 2]], rtol=1e-6)


@pytest.mark.nojit
def test_top_k_pads_rows_with_few_candidates_and_handles_ties():
    scores = np.zeros((2, 4), np.float32)
    excl = _csr([[0, 1, 2], []])
    items, best = top_k(scores, *excl, k=3)
    assert items.tolist() == [[3, -1, -1], [0, 1, 2]]
    assert np.isneginf(best[0, 1:]).all()


@pytest.mark.nojit
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top_k_matches_naive(seed):
    rng = np.random.default_rng(seed)
    n, m, k = 7, 30, 5
    # rounded scores so that ties happen
    scores = np.round(rng.normal(size=(n, m)), 1).astype(np.float32)
    excluded = [sorted(rng.choice(m, size=rng.integers(0, m - 2), replace=False).tolist()) for _ in range(n)]
    excluded[0] = list(range(m - 2))  # only two candidates: padded with -1
    items, _ = top_k(scores, *_csr(excluded), k=k)
    np.testing.assert_array_equal(items, naive_top_k(scores, excluded, k))


@pytest.mark.nojit
def test_top_k_rows_select_exclusion_rows():
    scores = np.array([[3, 2, 1]], np.float32)
    excl = _csr([[], [0]])
    items, _ = top_k(scores, *excl, k=2, rows=np.array([1]))
    assert items.tolist() == [[1, 2]]


def test_top_k_rejects_nan_and_bad_input():
    with pytest.raises(ModelError, match="NaN"):
        top_k(np.array([[np.nan, 1.0]], np.float32), *_csr([[]]), k=1)
    with pytest.raises(MfrecError, match="outside"):
        top_k(np.zeros((1, 3), np.float32), *_csr([[5]]), k=1)
    with pytest.raises(MfrecError, match="k must be"):
        top_k(np.zeros((1, 3), np.float32), *_csr([[]]), k=0)


@pytest.mark.nojit
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


@pytest.mark.nojit
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


def test_evaluate_ranking_means_and_coverage():
    scores = np.array([[0.9, 0.1, 0.8, 0.8, 0.3, 0.5], [1, 2, 3, 4, 5, 6]], np.float32)
    res = evaluate_ranking(lambda b: scores[b], 6, np.array([0, 1]), _csr([[0], [5, 4]]), _csr([[3, 4], [0]]),
                           _csr(GENRES), 4, k=3, batch_size=1)
    d = res.as_dict()
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert d["hit@3"] == pytest.approx(0.5)
    assert d["ndcg@3"] == pytest.approx(ndcg0 / 2)
    assert d["recall@3"] == pytest.approx(0.25)
    assert d["coverage@3"] == pytest.approx(4 / 6)  # movies 1, 2, 3, 5 recommended
    assert d["genre_consistency@3"] == pytest.approx(0.125)
    assert d["users_evaluated"] == 2


def test_popularity_scores_by_training_counts(small_dataset):
    pop = Popularity.fit(small_dataset)
    s = pop.score_users(np.array([0, 5]))
    assert s.shape == (2, small_dataset.n_movies)
    counts = np.bincount(small_dataset.train.movie, minlength=small_dataset.n_movies)
    np.testing.assert_array_equal(s[1], counts)


def test_csr_from_pairs_groups_by_user():
    indptr, idx = csr_from_pairs(np.array([2, 0, 2, 1]), np.array([7, 8, 9, 6]), 4)
    assert indptr.tolist() == [0, 1, 2, 4, 4]
    assert idx.tolist() == [8, 6, 7, 9]
