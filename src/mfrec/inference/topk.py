"""Top-k movies for every user of a model: BLAS scores a block of users, the Numba kernel selects.

``recommend_all`` runs ``mfrec.kernels.topk.topk_rows`` (the one top-k kernel: biases, filters,
exclusions, ties to the lower movie index) over every user of a model, or the users asked for, in
blocks: BLAS does the dot products, the kernel (parallel over the rows of a block, each iteration
writing only its own output row) does the selection.
"""

from __future__ import annotations

import numpy as np

from mfrec.kernels.csr import csr_rows
from mfrec.kernels.topk import topk_rows


def recommend_all(
    user_factors: np.ndarray,
    movie_factors: np.ndarray,
    user_bias: np.ndarray,
    movie_bias: np.ndarray,
    mu: float,
    k: int,
    *,
    allowed: np.ndarray | None = None,
    exclude_indptr: np.ndarray | None = None,
    exclude_indices: np.ndarray | None = None,
    block: int = 512,
    users: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k movies for every user (or the ``users`` given): BLAS scores a block, the kernel selects.

    Predicted rating = mu + b_u + b_i + p_u . q_i (``movie_factors`` are the effective ones, genre part included).
    ``exclude_indptr/indices`` is a CSR over *all* users (e.g. their training ratings).
    """
    user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
    movie_factors = np.ascontiguousarray(movie_factors, dtype=np.float32)
    n_users = user_factors.shape[0]
    rows = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
    out_i = np.empty((len(rows), k), np.int32)
    out_s = np.empty((len(rows), k), np.float32)
    col_bias = np.asarray(movie_bias, dtype=np.float32) + np.float32(mu)
    if exclude_indptr is None:
        exclude_indptr = np.zeros(n_users + 1, np.int64)
        exclude_indices = np.zeros(0, np.int32)
    if users is not None:  # re-index the exclusion CSR to the rows asked for
        exclude_indptr, positions = csr_rows(exclude_indptr, rows)
        exclude_indices = np.asarray(exclude_indices)[positions]
    for a in range(0, len(rows), block):
        b = min(a + block, len(rows))
        sel = rows[a:b]
        scores = user_factors[sel] @ movie_factors.T if movie_factors.shape[1] else np.zeros((b - a, movie_factors.shape[0]), np.float32)
        out_i[a:b], out_s[a:b] = topk_rows(
            scores, k, row_bias=user_bias[sel], col_bias=col_bias, allowed=allowed,
            exclude_indptr=exclude_indptr, exclude_indices=exclude_indices, row_offset=a,
        )
    return out_i, out_s
