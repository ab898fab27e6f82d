"""Fold-in of users the model was not trained on, and the exact decomposition of their scores.

**Fold-in.** A new user's bias and factors come from the model's own ALS user half-step,
``mfrec.kernels.als.solve_rows``, run on a one-row CSR of their ratings against the trained movie
side: fixed factors ``y_i = q_i + |G_i|^-1/2 Σ_g y_g`` (the genre part from the kernel module's own
``genre_part``), fixed biases ``b_i``, global mean ``mu``, and the run's ``reg``, ``reg_bias`` and
``weighted_reg``. Nothing in the model is written. The solve is always the exact Cholesky one: a
run trained with ``solver=cg`` approximates the same ridge problem by a few warm-started CG steps
per epoch, and a brand-new user has no warm start, so the exact minimiser is the faithful answer.

**Explanation.** For one user with ratings ``r_j`` of movies ``j`` the half-step solves

    A z = Σ_j t_j [1, y_j],   t_j = r_j - mu - b_j,   A = Σ_j [1, y_j][1, y_j]^T + diag(reg_bias, λ, …, λ)

for ``z = [b_u, p_u]``. ``A`` does not depend on the ratings, so ``z = Σ_j z_j`` with
``z_j = A^-1 [1, y_j] t_j``: the part of the user that movie j's rating put there. Movie i's score is
``mu + b_i + [1, y_i] · z``, so rated movie j contributes exactly ``c_ij = [1, y_i] · z_j`` to it and
the contributions sum to the score minus the baseline ``mu + b_i``. Each ``z_j`` is computed by the
same kernel, on a row holding *all* of the user's movies (so ``A`` is the same) with residual
``t_j`` at movie j and 0 elsewhere (``mu`` and the biases passed as 0, the residuals already taken).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from mfrec.errors import DataError, ModelError


def _hyper(model) -> dict:
    """The keyword arguments of the user half-step, exactly as ``mfrec.models.als.fit`` passes them.

    Read through ``ALSConfig.from_dict``; ``reg_exponent`` missing from an older run's config means
    the exponent 1 that run was trained with.
    """
    if model.config.get("exported_from"):
        return _neural_hyper(model)
    from mfrec.models.config import ALSConfig

    try:
        cfg = ALSConfig.from_dict(model.config)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{model.path or 'the model'}'s config cannot be read ({e}): cannot fold in new users") from None
    kw = {"reg": float(cfg.reg), "reg_bias": float(cfg.reg_bias), "weighted": bool(cfg.weighted_reg)}
    if hasattr(cfg, "reg_exponent"):  # weighted-lambda exponent (lam = reg * n ** reg_exponent)
        # a run saved before the field existed was trained with the classic ALS-WR exponent 1
        kw["reg_exponent"] = float(model.config.get("reg_exponent", 1.0))
    return kw


# a neumf model has no user bias: this penalty keeps a folded-in user's bias at zero
NO_BIAS_PENALTY = 1e6


def _neural_hyper(model) -> dict:
    """Half-step settings for the ``factors.npz`` of a neumf or genre-embedding run (Adam-trained).

    Their loss is the batch mean of ``(r - r̂)^2 + reg (|p_u|^2 + |q_i|^2)``, so over an epoch a user
    with n ratings pays ``reg * n * |p_u|^2``: the ALS ridge with weighted-lambda exponent 1 and the
    run's own ``reg``. neumf has no user bias (it is held at zero by a huge bias penalty);
    genre-embedding's unpenalised user bias gets the ALS default penalty 1 so that a one-movie user
    stays well posed. This is an approximation of where the neural model would put a new user.
    """
    from mfrec.errors import ModelError as _ModelError

    try:
        reg = float(model.config.get("reg") or 0.0)
    except (TypeError, ValueError):
        raise _ModelError(f"{model.path or 'the model'}: reg {model.config.get('reg')!r} is not a number") from None
    has_bias = bool(np.any(np.asarray(model.user_bias) != 0) or np.any(np.asarray(model.movie_bias) != 0))
    return {"reg": reg if reg > 0 else 0.05, "reg_bias": 1.0 if has_bias else NO_BIAS_PENALTY,
            "weighted": True, "reg_exponent": 1.0}


@contextmanager
def _threads_for(n_rows: int):
    """Run a kernel call on the calling thread alone when it has only a few rows.

    The half-step kernel is ``parallel=True``; for one new user, waking Numba's worker threads
    costs more than the solve itself (milliseconds on a busy machine). ``numba.set_num_threads``
    is thread-local, and the previous value is restored.
    """
    import numba

    if n_rows > 8:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def fold_in_rows(model, indptr, indices, values) -> tuple[np.ndarray, np.ndarray]:
    """Bias (n_rows,) and factors (n_rows, k) of users given as a CSR of (movie index, rating).

    The model's ALS user half-step on these rows; the model is not modified.
    """
    from mfrec.kernels.als import solve_rows

    indptr = np.asarray(indptr, np.int64)
    indices = np.asarray(indices, np.int32)
    values = np.asarray(values, np.float32)
    if len(indices) and (indices.min() < 0 or indices.max() >= model.n_movies):
        raise DataError(f"a rated movie index is outside 0..{model.n_movies - 1}")
    if not np.all(np.isfinite(values)):
        raise DataError("a rating to fold in is NaN or infinite")
    for r in range(len(indptr) - 1):
        row = indices[indptr[r]:indptr[r + 1]]
        if len(np.unique(row)) != len(row):
            raise DataError(f"user row {r} rates a movie twice: give each movie once")
    h = _hyper(model)
    with _threads_for(len(indptr) - 1):
        factors, bias = solve_rows(
            indptr, indices, values, model.item_factors, model.movie_bias, model.mu,
            **h, solver="cholesky", what="new user",
        )
    return bias, factors


def explain_contributions(model, rated: np.ndarray, ratings: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-rating contributions to the scores of ``targets`` for a user with these ratings.

    Returns ``(contrib, parts)``: ``contrib[t, j]`` is rated movie ``rated[j]``'s contribution to
    the score of ``targets[t]`` (they sum over j to score - mu - b_i); ``parts[j]`` is ``z_j`` =
    (bias, factors) that rating put into the folded-in user (they sum to the fold-in).
    """
    from mfrec.kernels.als import solve_rows

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
    h = _hyper(model)
    with _threads_for(n):
        factors, bias = solve_rows(
            indptr, indices, values.ravel(), model.item_factors, np.zeros(model.n_movies, np.float32), 0.0,
            **h, solver="cholesky", what="explained rating",
        )
    parts = np.concatenate([bias[:, None], factors], axis=1)  # (n, k+1)
    design = np.concatenate([np.ones((len(targets), 1), np.float32), model.item_factors[targets]], axis=1)
    return (design @ parts.T).astype(np.float32), parts
