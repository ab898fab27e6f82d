"""The CSR helpers (from pairs, a CSR's rows, the row of each entry, transpose) against tests/naive.py."""

from __future__ import annotations

import numpy as np
import pytest

from mfrec.errors import DataError, MfrecError
from mfrec.kernels.csr import check_csr, csr_from_pairs, csr_from_rows, csr_rows, rows_of, transpose_csr

from naive import naive_counting_sort, naive_csr_from_pairs, naive_csr_of_lists, naive_csr_rows

pytestmark = pytest.mark.nojit


def _assert_csr_equal(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].dtype == np.int64 and got[1].dtype == np.int32


def test_csr_from_pairs_groups_by_row_keeping_the_given_order():
    indptr, idx = csr_from_pairs(np.array([2, 0, 2, 1]), np.array([7, 8, 9, 6]), 4)
    assert indptr.tolist() == [0, 1, 2, 4, 4]  # row 3 is empty
    assert idx.tolist() == [8, 6, 7, 9]


@pytest.mark.parametrize("seed,n_pairs,n_rows", [(0, 60, 9), (1, 1, 1), (2, 0, 4), (3, 0, 0), (4, 30, 1)])
def test_csr_from_pairs_matches_naive(seed, n_pairs, n_rows):
    """Random pairs, one pair, no pairs (empty rows only), no rows at all, one row."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, max(n_rows, 1), n_pairs)
    cols = rng.integers(0, 50, n_pairs)
    _assert_csr_equal(csr_from_pairs(rows, cols, n_rows), naive_csr_from_pairs(rows, cols, n_rows))
    np.testing.assert_array_equal(csr_from_rows(np.sort(rows), n_rows), naive_csr_from_pairs(rows, cols, n_rows)[0])


def test_csr_from_pairs_rejects_rows_out_of_range():
    with pytest.raises(MfrecError, match="outside 0..2"):
        csr_from_pairs(np.array([0, 3]), np.array([1, 1]), 3)
    with pytest.raises(MfrecError, match="one column per row"):
        csr_from_pairs(np.array([0, 1]), np.array([1]), 3)


@pytest.mark.parametrize("rows", [[3, 0, 3, 1], [1], [], [2], [0, 1, 2, 3]])
def test_csr_rows_matches_naive(rows):
    """Repeated rows, one row, no rows, an empty row alone, every row."""
    lists = [[4, 1], [0], [], [5, 2, 3]]
    indptr, indices = naive_csr_of_lists(lists)
    sub_indptr, positions = csr_rows(indptr, np.array(rows, np.int64))
    _assert_csr_equal((sub_indptr, indices[positions]), naive_csr_rows(indptr, indices, rows))


def test_csr_rows_rejects_rows_out_of_range():
    with pytest.raises(MfrecError, match="outside 0..1"):
        csr_rows(np.array([0, 1, 1]), np.array([2]))


@pytest.mark.parametrize("lists", [[[1, 2], [], [3]], [[]], [], [[0, 0, 0]]])
def test_rows_of_matches_naive(lists):
    indptr, _ = naive_csr_of_lists(lists)
    want = [r for r, x in enumerate(lists) for _ in x]
    assert rows_of(indptr).tolist() == want


@pytest.mark.parametrize("n_blocks", [1, 3, 8])
def test_transpose_matches_a_stable_argsort(n_blocks):
    rng = np.random.default_rng(4)
    rows = np.sort(rng.integers(0, 30, 500)).astype(np.int32)
    cols = rng.integers(0, 17, 500).astype(np.int32)
    vals = rng.random(500).astype(np.float32)
    indptr, r, v = transpose_csr(rows, cols, vals, 20, n_blocks)  # columns 17..19 stay empty
    want_ptr, order = naive_counting_sort(cols, 20)
    np.testing.assert_array_equal(indptr, want_ptr)
    np.testing.assert_array_equal(r, rows[order])
    np.testing.assert_array_equal(v, vals[order])


def test_transpose_of_no_entries_and_bad_columns():
    indptr, r, v = transpose_csr(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32), 3)
    assert indptr.tolist() == [0, 0, 0, 0] and len(r) == len(v) == 0
    with pytest.raises(DataError, match="out of range"):
        transpose_csr(np.array([0]), np.array([3]), np.array([1.0]), 3)


def test_check_csr_accepts_a_csr_and_names_what_is_wrong():
    indptr, indices = check_csr([0, 1, 1], [2], 2, 3, "history")
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    with pytest.raises(MfrecError, match="history: a CSR with 2 rows"):
        check_csr([0, 2, 1], [2], 2, 3, "history")
    with pytest.raises(MfrecError, match="history: movie index 3"):
        check_csr([0, 1, 1], [3], 2, 3, "history")
