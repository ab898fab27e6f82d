"""The exact decomposition of a folded-in user's scores into one part per rating.

The fold-in itself is ``FactorModel.fold_in`` (``mfrec.models.factor``): the model's own ALS user
half-step on the new user's ratings. For one user with ratings ``r_j`` of movies ``j`` it solves

    A z = Σ_j t_j [1, e_j],   t_j = r_j - mu - b_j,   A = Σ_j [1, e_j][1, e_j]^T + diag(reg_bias, λ, …, λ)

for ``z = [b_u, p_u]``, with ``e_j`` the effective movie factors. ``A`` does not depend on the
ratings, so ``z = Σ_j z_j`` with ``z_j = A^-1 [1, e_j] t_j``: the part of the user that movie j's
rating put there. Movie i's score is ``mu + b_i + [1, e_i] · z``, so rated movie j contributes exactly
``c_ij = [1, e_i] · z_j`` to it and the contributions sum to the score minus the baseline
``mu + b_i``. Each ``z_j`` is computed by the same kernel, on a row holding *all* of the user's movies
(so ``A`` is the same) with residual ``t_j`` at movie j and 0 elsewhere (``mu`` and the biases passed
as 0, the residuals already taken).
"""

from __future__ import annotations

import numpy as np

def explain_contributions(model, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-rating contributions to the scores of ``targets`` for a user with these ratings.

    Returns ``(contrib, parts)``: ``contrib[t, j]`` is rated movie ``rated[j]``'s contribution to
    the score of ``targets[t]`` (they sum over j to score - mu - b_i); ``parts[j]`` is ``z_j`` =
    (bias, factors) that rating put into the folded-in user (they sum to the fold-in).
    """
    from mfrec.kernels.als import solve_rows
    from mfrec.models.factor import _threads_for

    rated = np.asarray(rated, np.int32)
    n = len(rated)
    k = model.k
    targets = np.asarray(targets, np.int64)
    if n == 0:
        return np.zeros((len(targets), 0), np.float32), np.zeros((0, k + 1), np.float32)
    resid = (np.asarray(ratings, np.float64) - model.mu - model.movie_bias[rated].astype(np.float64)).astype(np.float32)
    indptr = np.arange(n + 1, dtype=np.int64) * n
    indices = np.tile(rated, n)
    values = np.zeros((n, n), np.float32)
    values[np.arange(n), np.arange(n)] = resid
    with _threads_for(n):
        factors, bias = solve_rows(
            indptr, indices, values.ravel(), model.effective_movie_factors, np.zeros(model.n_movies, np.float32), 0.0,
            **model.fold_in_settings.kwargs(), solver="cholesky", what="explained rating",
        )
    parts = np.concatenate([bias[:, None], factors], axis=1)  # (n, k+1)
    design = np.concatenate([np.ones((len(targets), 1), np.float32), model.effective_movie_factors[targets]], axis=1)
    return (design @ parts.T).astype(np.float32), parts
