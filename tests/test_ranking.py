"""Full-ranking top-k and evaluation against tests/naive.py and hand-computed values (the metric kernel: test_kernels_ranking.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mfrec.errors import MfrecError, ModelError
from mfrec.evaluation.ranking import Popularity, evaluate_ranking, top_k

from naive import naive_csr_of_lists, naive_top_k

# movie -> genres for the hand-computed case (movie 4 has none)
GENRES = [[0], [1], [0, 1], [2], [], [3]]


@pytest.mark.nojit
def test_top_k_hand_computed():
    scores = np.array([[0.9, 0.1, 0.8, 0.8, 0.3, 0.5], [1, 2, 3, 4, 5, 6]], np.float32)
    excl = naive_csr_of_lists([[0], [5, 4]])
    items, best = top_k(scores, *excl, k=3)
    # ties (movies 2 and 3 both 0.8) go to the lower index; excluded movies never appear
    assert items.tolist() == [[2, 3, 5], [3, 2, 1]]
    np.testing.assert_allclose(best, [[0.8, 0.8, 0.5], [4, 3, 2]], rtol=1e-6)


@pytest.mark.nojit
def test_top_k_pads_rows_with_few_candidates_and_handles_ties():
    scores = np.zeros((2, 4), np.float32)
    excl = naive_csr_of_lists([[0, 1, 2], []])
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
    items, _ = top_k(scores, *naive_csr_of_lists(excluded), k=k)
    np.testing.assert_array_equal(items, naive_top_k(scores, excluded, k))


@pytest.mark.nojit
def test_top_k_rows_select_exclusion_rows():
    scores = np.array([[3, 2, 1]], np.float32)
    excl = naive_csr_of_lists([[], [0]])
    items, _ = top_k(scores, *excl, k=2, rows=np.array([1]))
    assert items.tolist() == [[1, 2]]


def test_top_k_rejects_nan_and_bad_input():
    with pytest.raises(ModelError, match="NaN"):
        top_k(np.array([[np.nan, 1.0]], np.float32), *naive_csr_of_lists([[]]), k=1)
    with pytest.raises(MfrecError, match="outside"):
        top_k(np.zeros((1, 3), np.float32), *naive_csr_of_lists([[5]]), k=1)
    with pytest.raises(MfrecError, match="k must be"):
        top_k(np.zeros((1, 3), np.float32), *naive_csr_of_lists([[]]), k=0)


def test_evaluate_ranking_means_and_coverage():
    scores = np.array([[0.9, 0.1, 0.8, 0.8, 0.3, 0.5], [1, 2, 3, 4, 5, 6]], np.float32)
    res = evaluate_ranking(lambda b: scores[b], 6, np.array([0, 1]), naive_csr_of_lists([[0], [5, 4]]), naive_csr_of_lists([[3, 4], [0]]),
                           naive_csr_of_lists(GENRES), 4, k=3, batch_size=1)
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
