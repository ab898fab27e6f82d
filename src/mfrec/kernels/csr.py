"""Compressed sparse rows: building a CSR, taking some of its rows, regrouping it by column.

A CSR here is ``indptr`` (int64, ``n_rows + 1``) with the entries of row ``r`` at positions
``indptr[r]:indptr[r + 1]`` of ``indices`` (int32) and of any value arrays aligned with them.
These are the one copy of each operation that data, evaluation, inference, neural and the ALS
kernels share (this package is the lowest layer, so all of them may import it):

- ``csr_from_rows``: the indptr of entries already grouped by row;
- ``csr_from_pairs``: (row, column) pairs grouped by row, stably;
- ``csr_rows``: the asked-for rows as a CSR of their own (positions into the original entries);
- ``rows_of``: the row of every entry;
- ``transpose_csr``: regroup entries by column (a parallel, stable counting sort);
- ``check_csr``: validate an (indptr, indices) pair.

The first three are vectorised NumPy (as fast here as a loop); ``rows_of`` and ``transpose_csr``
wrap Numba kernels.
"""

from __future__ import annotations

import numba
import numpy as np

from mfrec.errors import DataError, MfrecError


@numba.njit(cache=True)
def _rows_of(indptr):
    """Row index of every entry of a CSR with this indptr (np.repeat(arange, diff(indptr)))."""
    n_rows = indptr.shape[0] - 1
    out = np.empty(indptr[n_rows], np.int32)
    for r in range(n_rows):
        for j in range(indptr[r], indptr[r + 1]):
            out[j] = r
    return out


@numba.njit(cache=True, parallel=True)
def _transpose(rows, cols, values, n_cols, n_blocks, out_rows, out_values):
    """Regroup entries by column, stably (a parallel counting sort) into ``out_rows``/``out_values``; returns indptr.

    The entries are cut into ``n_blocks`` contiguous blocks; each block counts its columns, and the
    prefix sums over (column, block) give every block its own output slots, so the result is the
    same for any number of threads.
    """
    n = cols.shape[0]
    counts = np.zeros((n_blocks, n_cols), np.int64)
    for b in numba.prange(n_blocks):
        for i in range(n * b // n_blocks, n * (b + 1) // n_blocks):
            counts[b, cols[i]] += 1
    indptr = np.zeros(n_cols + 1, np.int64)
    start = np.empty((n_blocks, n_cols), np.int64)
    pos = 0
    for c in range(n_cols):
        indptr[c] = pos
        for b in range(n_blocks):
            start[b, c] = pos
            pos += counts[b, c]
    indptr[n_cols] = pos
    for b in numba.prange(n_blocks):
        fill = start[b]
        for i in range(n * b // n_blocks, n * (b + 1) // n_blocks):
            c = cols[i]
            p = fill[c]
            fill[c] = p + 1
            out_rows[p] = rows[i]
            out_values[p] = values[i]
    return indptr


def _check_rows(rows: np.ndarray, n_rows: int, what: str) -> None:
    if rows.ndim != 1:
        raise MfrecError(f"{what} must be a 1-d array of row indices, got shape {rows.shape}")
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n_rows):
        raise MfrecError(f"{what}: a row index is outside 0..{n_rows - 1}")


def csr_from_rows(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """indptr of a CSR whose entries are already grouped by row (``rows`` sorted ascending)."""
    rows = np.asarray(rows)
    _check_rows(rows, n_rows, "csr_from_rows")
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr


def csr_from_pairs(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices): the ``cols`` grouped by their ``rows``, in their given order within a row."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols)
    if cols.shape != rows.shape:
        raise MfrecError(f"csr_from_pairs needs one column per row index, got shapes {rows.shape} and {cols.shape}")
    order = np.argsort(rows, kind="stable")
    return csr_from_rows(rows, n_rows), cols.astype(np.int32, copy=False)[order]


def csr_rows(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CSR of the asked-for ``rows`` (in that order, repeats allowed): (sub_indptr, positions).

    ``positions`` (int64) index the original entries, so ``indices[positions]`` (and
    ``values[positions]``) are the sub-CSR's entries.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    _check_rows(rows, len(indptr) - 1, "csr_rows")
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    sub_indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=sub_indptr[1:])
    positions = np.repeat(starts - sub_indptr[:-1], lengths) + np.arange(sub_indptr[-1], dtype=np.int64)
    return sub_indptr, positions


def rows_of(indptr: np.ndarray) -> np.ndarray:
    """The row (int32) of every entry of a CSR with this indptr."""
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    if indptr.ndim != 1 or len(indptr) == 0 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise MfrecError("rows_of needs a non-decreasing 1-d indptr starting at 0")
    return _rows_of(indptr)


def transpose_csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_cols: int, n_blocks: int = 8):
    """Regroup entries by column with a stable counting sort: (indptr, row_indices, values).

    Entries of one column keep their given order; the result does not depend on ``n_blocks`` (the
    number of parallel blocks) or the thread count.
    """
    cols = np.ascontiguousarray(cols)
    if len(cols) and (int(cols.min()) < 0 or int(cols.max()) >= n_cols):
        raise DataError(f"column index out of range 0..{n_cols - 1}")
    rows = np.ascontiguousarray(rows, dtype=np.int32)
    values = np.ascontiguousarray(values)
    if rows.shape != cols.shape or values.shape != cols.shape:
        raise DataError(f"rows, columns and values must be of one length, got {rows.shape}, {cols.shape}, {values.shape}")
    if n_blocks < 1:
        raise DataError(f"transpose_csr needs n_blocks >= 1, got {n_blocks}")
    out_rows = np.empty(len(cols), np.int32)
    out_values = np.empty(len(cols), values.dtype)
    indptr = _transpose(rows, cols, values, n_cols, n_blocks, out_rows, out_values)
    return indptr, out_rows, out_values


def check_csr(indptr, indices, n_rows: int, n_cols: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, indices int32), contiguous, after checking that they form a CSR of that shape."""
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    if len(indptr) != n_rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise MfrecError(f"{what}: a CSR with {n_rows} rows needs a non-decreasing indptr of length {n_rows + 1} ending at {len(indices)}")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise MfrecError(f"{what}: movie index {int(indices.max()) if indices.max() >= n_cols else int(indices.min())} is outside 0..{n_cols - 1}")
    return indptr, indices
