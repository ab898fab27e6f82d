"""The exact decomposition of a folded-in user's scores into one part per rating (and the population's).

The fold-in itself is ``FactorModel.fold_in`` (``mfrec.models.factor``): the model's own ALS user
half-step on the new user's ratings, plus, for a calibrated run, the population prior ``(m, P)``
learned from the training users. For one user with ratings ``r_j`` of movies ``j`` it solves

    A z = Σ_j t_j [1, e_j] + P m,   t_j = r_j - mu - b_j,   A = Σ_j [1, e_j][1, e_j]^T + D_n + P

for ``z = [b_u, p_u]``, with ``e_j`` the effective movie factors and ``D_n = diag(reg_bias, λ, …, λ)``
(``P = 0`` for a run without the prior). ``A`` does not depend on the ratings, so
``z = z_0 + Σ_j z_j`` with ``z_j = A^-1 [1, e_j] t_j``, the part of the user that movie j's rating
put there, and ``z_0 = A^-1 P m``, the part the population put there (what a user who rated these
movies exactly at their averages would get). Movie i's score is ``mu + b_i + [1, e_i] · z``, so rated
movie j contributes exactly ``c_ij = [1, e_i] · z_j`` to it, and ``mu + b_i + [1, e_i] · z_0`` is the
baseline the contributions move it from.

For an implicit-feedback (ials) model the system matrix depends on the ratings' confidences, but the
same split holds for one user: ``x = A^-1 Σ_j c_j q_j`` with ``A`` built from all of them, so movie j
contributes ``c_j q_i^T A^-1 q_j`` to movie i's score, and there is no baseline or population part
(``_explain_implicit``).
"""

from __future__ import annotations

import numpy as np


def explain_contributions(model, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact per-rating contributions to the scores of ``targets`` for a user with these ratings.

    Returns ``(contrib, parts, population)``: ``contrib[t, j]`` is rated movie ``rated[j]``'s
    contribution to the score of ``targets[t]``; ``population[t]`` the population prior's (0 for a
    run without one), so ``mu + b_i + population[t] + contrib[t].sum()`` is the score; ``parts[j]``
    is ``z_j`` = (bias, factors) that rating put into the folded-in user (with ``z_0`` they sum to
    the fold-in).
    """
    rated = np.asarray(rated, np.int64)
    targets = np.asarray(targets, np.int64)
    if getattr(model, "implicit", False):
        if len(rated) == 0:
            return np.zeros((len(targets), 0), np.float32), np.zeros((0, model.k + 1), np.float32), np.zeros(len(targets))
        contrib, parts = _explain_implicit(model, rated, ratings, targets)
        return contrib, parts, np.zeros(len(targets))
    a, x, rhs = model.fold_in_system(rated)
    design = np.concatenate([np.ones((len(targets), 1)), np.asarray(model.effective_movie_factors, np.float64)[targets]],
                            axis=1)
    population = design @ np.linalg.solve(a, rhs)
    if len(rated) == 0:
        return np.zeros((len(targets), 0), np.float32), np.zeros((0, model.k + 1), np.float32), population
    resid = np.asarray(ratings, np.float64) - model.mu - model.movie_bias[rated].astype(np.float64)
    parts = np.linalg.solve(a, x.T * resid[None, :]).T  # (n, k+1): z_j
    return design @ parts.T, parts, population


def _explain_implicit(model, rated: np.ndarray, ratings, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ials: the folded-in user is ``x = A^-1 sum_j c_j q_j`` with
    ``A = alpha0 Q^T Q + sum_j (c_j - alpha0) q_j q_j^T + lam I`` (``mfrec.kernels.ials``), so rated movie
    j puts ``x_j = c_j A^-1 q_j`` into the user and contributes exactly ``q_i . x_j`` to movie i's score
    (mu and the biases are 0, so the contributions sum to the whole score)."""
    import scipy.linalg

    from mfrec.kernels.ials import gramian, implicit_lambda
    from mfrec.models.confidence import confidence_of

    c = model.als_config
    Q = model.movie_factors
    conf = confidence_of(model, ratings).astype(np.float64)
    Y = Q[rated].astype(np.float64)
    A = gramian(Q, c.unobserved_weight) + (Y.T * (conf - c.unobserved_weight)) @ Y
    A[np.diag_indices_from(A)] += implicit_lambda(c.reg, len(rated), c.unobserved_weight, model.n_movies,
                                                  c.reg_exponent)
    try:
        parts = scipy.linalg.cho_solve(scipy.linalg.cho_factor(A), (Y * conf[:, None]).T).T  # (n, k): x_j
    except (np.linalg.LinAlgError, ValueError) as e:
        from mfrec.kernels.als import SolveError

        raise SolveError(f"the explanation's system is not positive definite ({e})") from None
    contrib = Q[targets].astype(np.float64) @ parts.T
    parts = np.concatenate([np.zeros((len(rated), 1)), parts], axis=1)  # (bias 0, factors), as for explicit models
    return contrib.astype(np.float32), parts.astype(np.float32)
