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
contributes ``c_j q_i^T A^-1 q_j`` to movie i's score, and there is no baseline or population part.

**Cost.** ``A`` is factored once (Cholesky, ``A = L L^T``). The contributions to N shown films need
``W = A^-1 [1, e_i]^T`` for those N films only (N right-hand sides, two triangular solves), then
``c_ij = (X W)_ji t_j``: O(n k^2) to build ``A`` (the fold-in pays the same), O(k^2 N) to solve and
O(n k N) for the products, so a user with thousands of ratings is explained in milliseconds and
no cap on explained ratings is needed. The per-rating parts ``z_j`` (n right-hand sides) are solved
only when asked for (``Decomposition.parts``).
"""

from __future__ import annotations

import numpy as np


class Decomposition:
    """One user's fold-in system ``A z = X^T w + rhs``, factored once; every rating's exact share of
    any movie's score from it.

    ``X`` (n, d) are the rated movies' design rows (``[1, e_j]``; ials: ``q_j``), ``w`` (n,) their
    weights (residuals ``r_j - mu - b_j``; ials: confidences ``c_j``) and ``rhs`` the population
    prior's ``P m`` (zeros without one). Built from the model's own ``fold_in_system`` (and for ials
    the implicit half-step's matrix), so it explains exactly the fold-in the list was scored with.
    """

    def __init__(self, model, rated, ratings):
        import scipy.linalg

        self.model = model
        self.rated = np.asarray(rated, np.int64)
        self.implicit = bool(getattr(model, "implicit", False))
        if self.implicit:
            a, self.x, self.weights = _implicit_system(model, self.rated, ratings)
            self.rhs = np.zeros(model.k)
        else:
            a, self.x, self.rhs = model.fold_in_system(self.rated)
            self.weights = (np.asarray(ratings, np.float64) - model.mu
                            - model.movie_bias[self.rated].astype(np.float64))
        try:
            self._factor = scipy.linalg.cho_factor(a, check_finite=False)
        except (np.linalg.LinAlgError, ValueError) as e:
            from mfrec.kernels.als import SolveError

            raise SolveError(f"the explanation's system is not positive definite ({e})") from None
        self._parts: np.ndarray | None = None

    def design(self, movies) -> np.ndarray:
        """The design rows of ``movies`` (float64): ``[1, e_i]``, or ``q_i`` for ials."""
        movies = np.asarray(movies, np.int64)
        if self.implicit:
            return self.model.movie_factors[movies].astype(np.float64)
        e = self.model.effective_movie_factors[movies].astype(np.float64)
        return np.concatenate([np.ones((len(movies), 1)), e], axis=1)

    def contributions(self, targets) -> tuple[np.ndarray, np.ndarray]:
        """``(contrib, population)`` for these movies: ``contrib[t, j]`` is rated movie j's part of
        ``targets[t]``'s score and ``population[t]`` the prior's (zeros without one)."""
        import scipy.linalg

        d = self.design(targets)
        if len(self.rated) == 0 and self.implicit:
            return np.zeros((len(d), 0), np.float32), np.zeros(len(d))
        w = scipy.linalg.cho_solve(self._factor, d.T, check_finite=False)  # (d, N): A^-1 [1, e_t]
        contrib = (self.x @ w).T * self.weights[None, :]
        population = w.T @ self.rhs
        return (contrib.astype(np.float32) if self.implicit else contrib), population

    @property
    def parts(self) -> np.ndarray:
        """``z_j`` (n, k + 1): the (bias, factors) each rating put into the folded-in user (ials: bias 0)."""
        import scipy.linalg

        if self._parts is None:
            if len(self.rated) == 0:
                self._parts = np.zeros((0, self.model.k + 1), np.float32)
            else:
                z = scipy.linalg.cho_solve(self._factor, self.x.T * self.weights[None, :], check_finite=False).T
                if self.implicit:  # (bias 0, factors), as for explicit models
                    z = np.concatenate([np.zeros((len(z), 1)), z], axis=1).astype(np.float32)
                self._parts = z
        return self._parts


def explain_contributions(model, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact per-rating contributions to the scores of ``targets`` for a user with these ratings.

    Returns ``(contrib, parts, population)``: ``contrib[t, j]`` is rated movie ``rated[j]``'s
    contribution to the score of ``targets[t]``; ``population[t]`` the population prior's (0 for a
    run without one), so ``mu + b_i + population[t] + contrib[t].sum()`` is the score; ``parts[j]``
    is ``z_j`` = (bias, factors) that rating put into the folded-in user (with ``z_0`` they sum to
    the fold-in). A caller that needs only the contributions uses ``Decomposition`` and skips the parts.
    """
    dec = Decomposition(model, rated, ratings)
    contrib, population = dec.contributions(targets)
    return contrib, dec.parts, population


def _implicit_system(model, rated: np.ndarray, ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ials: ``(A, Y, c)`` of the implicit user half-step, ``x = A^-1 sum_j c_j q_j`` with
    ``A = alpha0 Q^T Q + sum_j (c_j - alpha0) q_j q_j^T + lam I`` (``mfrec.kernels.ials``), so rated
    movie j contributes exactly ``c_j q_i^T A^-1 q_j`` to movie i's score (mu and the biases are 0, so
    the contributions sum to the whole score)."""
    from mfrec.kernels.ials import implicit_lambda
    from mfrec.models.confidence import confidence_of

    c = model.als_config
    conf = confidence_of(model, ratings).astype(np.float64)
    Y = model.movie_factors[rated].astype(np.float64)
    A = c.unobserved_weight * model.movie_gram + (Y.T * (conf - c.unobserved_weight)) @ Y
    A[np.diag_indices_from(A)] += implicit_lambda(c.reg, len(rated), c.unobserved_weight, model.n_movies,
                                                  c.reg_exponent)
    return A, Y, conf
