"""The one persisted-model contract: :class:`FactorModel`, its ``.npz`` schema, loader and fold-in.

Every model kind that ends in user and movie factors saves and loads through this class: the ALS
models (``model.npz``) and the neural models that export factors (``factors.npz``, same schema).
Prediction for user u and movie i::

    r̂(u, i) = mu + b_u + b_i + p_u · e_i,   e_i = q_i + |G_i|^-1/2 Σ_{g ∈ G_i} y_g

``movie_factors`` are the trained ``q_i``; ``effective_movie_factors`` are ``e_i`` (the genre part
added for mf-genre, equal to ``q_i`` otherwise), computed once when the model is built. Every array
is read-only, so ``e_i`` can never go stale.

**Schema** (``np.savez``, loaded with ``allow_pickle=False``): the arrays in :data:`ARRAY_KEYS`,
``config_json`` (the training config and run facts as JSON) and ``format_version``. Files written
before the version key existed are version 0 and load with the settings they were trained with:
an ALS config without ``reg_exponent`` was trained with the classic ALS-WR exponent 1.

**Fold-in** (:meth:`FactorModel.fold_in`): a user the model was not trained on gets the model's own
ALS user half-step (``mfrec.kernels.als.solve_rows``) on a CSR of their ratings against the fixed
movie side, with the penalties of :attr:`FactorModel.fold_in_settings`; an ials model (kind "ials",
implicit feedback: mu and biases 0, no rating scale, no prior) gets the implicit user half-step
(``mfrec.kernels.ials``) on the confidences of the ratings. Always the exact Cholesky solve: a
CG-trained run approximates the same problem with warm starts a new user lacks.

**Calibrated fold-in (empirical Bayes).** Three or four ratings cannot pin down a (k+1)-dimensional
user: the plain half-step fits them almost exactly and pushes neighbouring movies past the top of
the scale. A run that stores a *population prior* (``prior_mean`` m, ``prior_precision`` P, written by
:func:`population_prior` at the end of ALS training) adds it to the half-step::

    (X^T X + D_n + P) z = X^T t + P m,    z = [b_u, p_u],   D_n = diag(reg_bias, lam_n, ..., lam_n)

``P = sigma^2 S^-1`` where ``S`` is the spread of the training users: the covariance of their trained
``z_u`` plus their mean posterior covariance ``sigma^2 (X_u^T X_u + D_n_u)^-1`` (the law of total
variance, so the shrinkage already in each ``z_u`` is not counted twice) and ``sigma^2`` the training
RMSE squared. ``P`` stays fixed while ``X^T X + D_n`` grows with n, so a long history gives the
training user step (to O(1/n)), and a short one stays near the population mean ``m``. Files without
the prior (older runs, exported neural factors) fold in with the plain half-step.

**Predicted ratings on the scale** (:meth:`FactorModel.rating`). A score is linear: a generous user's
score for a much-liked film can pass the top of the scale, and clipping would show every such film
as the same 5.00. An ALS run therefore also fits, on its validation ratings (training ratings when it
has none), the monotone map ``lo + (hi - lo) * sigmoid(a + b * score)`` by least squares
(``config["rating_map"]``): the expected rating at a score, strictly increasing, so the list's order
is the scores' and different scores read as different ratings, always inside the scale. Runs without
the map clip.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mfrec.errors import DataError, ModelError

FORMAT_VERSION = 1
ARRAY_KEYS = (
    "mu", "user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors", "genre_indptr",
    "genre_indices", "user_ids", "movie_ids",
)
NPZ_KEYS = ARRAY_KEYS + ("config_json",)  # every file has these; format_version from version 1 on
PRIOR_KEYS = ("prior_mean", "prior_precision")  # optional: the fold-in's population prior (calibrated runs)
PRIOR_MAX_USERS = 2000  # training users whose posterior covariance estimates the population spread
RATING_MAP_MAX_RATINGS = 200_000  # the 2-parameter rating map is fitted on at most this many ratings, evenly spaced
FACTOR_FILES = ("model.npz", "factors.npz")  # ALS runs, neural runs that export factors
LEGACY_REG_EXPONENT = 1.0  # ALS runs saved before reg_exponent existed used classic ALS-WR
NO_BIAS_PENALTY = 1e6  # holds a folded-in user's bias at zero for a model without user biases


@dataclass(frozen=True)
class FoldInSettings:
    """The penalties of the user half-step: ``lam = reg * n ** reg_exponent`` when ``weighted``."""

    reg: float
    reg_bias: float
    weighted: bool
    reg_exponent: float

    def kwargs(self) -> dict[str, Any]:
        return {"reg": self.reg, "reg_bias": self.reg_bias, "weighted": self.weighted,
                "reg_exponent": self.reg_exponent}

    def penalty(self, n: int, k: int) -> np.ndarray:
        """The diagonal ``D_n`` of a row with n ratings: (reg_bias, lam_n, ..., lam_n), float64."""
        lam = self.reg * float(n) ** self.reg_exponent if self.weighted else self.reg
        return np.array([self.reg_bias] + [lam] * k, np.float64)


def _design(effective_movie_factors: np.ndarray, movies: np.ndarray) -> np.ndarray:
    """Rows ``[1, e_j]`` of the rated movies, float64 (only those rows converted: the whole matrix
    of an ML-25M-shape model is 30 MB in float64)."""
    e = np.asarray(effective_movie_factors)[movies].astype(np.float64)
    return np.concatenate([np.ones((len(movies), 1)), e], axis=1)


def fit_rating_map(scores, ratings, scale: tuple[float, float]) -> dict[str, float]:
    """``{"a", "b", "rmse", "clipped_rmse", "n"}`` of the map ``lo + (hi - lo) * sigmoid(a + b * score)``
    fitted to (score, rating) pairs by least squares, started from the map closest to the identity."""
    from scipy.optimize import least_squares

    s = np.asarray(scores, np.float64)
    r = np.asarray(ratings, np.float64)
    lo, hi = float(scale[0]), float(scale[1])
    if len(s) < 2 or hi <= lo:
        raise ModelError(f"a rating map needs at least 2 ratings and a scale lo < hi, got {len(s)} and {scale}")
    b0 = 4.0 / (hi - lo)  # slope 1 at the middle of the scale

    def resid(ab):
        return lo + (hi - lo) / (1.0 + np.exp(-(ab[0] + ab[1] * s))) - r

    fit = least_squares(resid, [-b0 * (lo + hi) / 2, b0], bounds=([-np.inf, 1e-6], [np.inf, np.inf]))
    a, b = (float(x) for x in fit.x)
    return {"a": a, "b": b, "rmse": float(np.sqrt(np.mean(resid(fit.x) ** 2))),
            "clipped_rmse": float(np.sqrt(np.mean((np.clip(s, lo, hi) - r) ** 2))), "n": int(len(s))}


def population_prior(indptr, indices, effective_movie_factors, user_bias, user_factors, settings: FoldInSettings,
                     noise_variance: float, max_users: int = PRIOR_MAX_USERS) -> tuple[np.ndarray, np.ndarray]:
    """The fold-in's Gaussian prior on ``z = [b_u, p_u]`` from the trained users: ``(mean, precision)``.

    ``mean`` is the training users' mean ``z_u``; ``precision = noise_variance * S^-1`` with
    ``S = Cov(z_u) + noise_variance * mean_u (X_u^T X_u + D_n_u)^-1`` over up to ``max_users`` users
    spread evenly through the index (their rows of the user CSR ``indptr, indices``).
    """
    z = np.concatenate([np.asarray(user_bias, np.float64)[:, None], np.asarray(user_factors, np.float64)], axis=1)
    n_users, d = z.shape
    if n_users == 0 or not (noise_variance > 0) or not np.isfinite(noise_variance):
        raise ModelError(f"a population prior needs trained users and a positive noise variance, got {n_users} "
                         f"users and {noise_variance}")
    mean = z.mean(axis=0)
    spread = np.cov(z, rowvar=False, bias=True).reshape(d, d)
    users = np.unique(np.linspace(0, n_users - 1, min(n_users, max_users)).round().astype(np.int64))
    indptr = np.asarray(indptr, np.int64)
    posterior = np.zeros((d, d))
    for u in users:
        x = _design(effective_movie_factors, np.asarray(indices[indptr[u]:indptr[u + 1]], np.int64))
        posterior += np.linalg.inv(x.T @ x + np.diag(settings.penalty(len(x), d - 1)))
    spread += noise_variance * posterior / len(users)
    precision = noise_variance * np.linalg.inv(spread)
    return mean, (precision + precision.T) / 2


def _readonly(a, dtype, ndim: int, name: str, where: str) -> np.ndarray:
    out = np.array(a, dtype=dtype, order="C", copy=True)
    if out.ndim != ndim:
        raise ModelError(f"{where}: {name} has {out.ndim} dimensions, expected {ndim}")
    out.setflags(write=False)
    return out


@contextmanager
def _threads_for(n_rows: int):
    """Solve a few rows on the calling thread alone: waking Numba's pool costs more than the solve."""
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


class FactorModel:
    """Biases and factors of a trained model, with its config and id vocabularies (read-only)."""

    def __init__(self, mu, user_bias, movie_bias, user_factors, movie_factors, genre_factors=None,
                 genre_indptr=None, genre_indices=None, user_ids=None, movie_ids=None,
                 config: dict[str, Any] | None = None, path: str | os.PathLike | None = None,
                 prior_mean=None, prior_precision=None):
        self.path = Path(path) if path is not None else None
        where = str(self.path or "the model")
        self.mu = float(np.float32(mu))  # stored as float32, so a loaded model predicts bit-exactly the same
        self.user_bias = _readonly(user_bias, np.float32, 1, "user_bias", where)
        self.movie_bias = _readonly(movie_bias, np.float32, 1, "movie_bias", where)
        self.user_factors = _readonly(user_factors, np.float32, 2, "user_factors", where)
        self.movie_factors = _readonly(movie_factors, np.float32, 2, "movie_factors", where)
        nu, nm, k = len(self.user_bias), len(self.movie_bias), self.movie_factors.shape[1]
        self.genre_factors = _readonly(np.zeros((0, k)) if genre_factors is None else genre_factors,
                                       np.float32, 2, "genre_factors", where)
        has_genres = self.genre_factors.shape[0] > 0
        self.genre_indptr = _readonly(genre_indptr if genre_indptr is not None and has_genres else np.zeros(0),
                                      np.int64, 1, "genre_indptr", where)
        self.genre_indices = _readonly(genre_indices if genre_indices is not None and has_genres else np.zeros(0),
                                       np.int32, 1, "genre_indices", where)
        self.user_ids = _readonly(np.arange(nu) if user_ids is None else user_ids, np.int64, 1, "user_ids", where)
        self.movie_ids = _readonly(np.arange(nm) if movie_ids is None else movie_ids, np.int64, 1, "movie_ids", where)
        self.config: dict[str, Any] = dict(config or {})
        if (self.user_factors.shape != (nu, k) or self.movie_factors.shape != (nm, k)
                or self.genre_factors.shape[1] != k or len(self.user_ids) != nu or len(self.movie_ids) != nm):
            raise ModelError(f"{where} has inconsistent array shapes: {nu} user biases, {nm} movie biases, "
                             f"user factors {self.user_factors.shape}, movie factors {self.movie_factors.shape}, "
                             f"genre factors {self.genre_factors.shape}, {len(self.user_ids)} user ids, "
                             f"{len(self.movie_ids)} movie ids")
        if has_genres:
            ptr, idx = self.genre_indptr, self.genre_indices
            if (len(ptr) != nm + 1 or ptr[0] != 0 or ptr[-1] != len(idx) or np.any(np.diff(ptr) < 0)
                    or (len(idx) and (idx.min() < 0 or idx.max() >= self.genre_factors.shape[0]))):
                raise ModelError(f"{where}: the movie-genre lists do not fit {nm} movies and "
                                 f"{self.genre_factors.shape[0]} genre factors")
        for name in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ModelError(f"{where}: {name} holds NaN or infinite values")
        if not np.isfinite(self.mu):
            raise ModelError(f"{where}: mu is {self.mu}")
        if (prior_mean is None) != (prior_precision is None):
            raise ModelError(f"{where} has only one of prior_mean and prior_precision: it needs both or neither")
        self.prior_mean = self.prior_precision = None
        if prior_mean is not None:
            self.prior_mean = _readonly(prior_mean, np.float64, 1, "prior_mean", where)
            self.prior_precision = _readonly(prior_precision, np.float64, 2, "prior_precision", where)
            if self.prior_mean.shape != (k + 1,) or self.prior_precision.shape != (k + 1, k + 1):
                raise ModelError(f"{where}: the fold-in prior has shape {self.prior_mean.shape} / "
                                 f"{self.prior_precision.shape}, expected ({k + 1},) / ({k + 1}, {k + 1})")
            if not (np.all(np.isfinite(self.prior_mean)) and np.all(np.isfinite(self.prior_precision))):
                raise ModelError(f"{where}: the fold-in prior holds NaN or infinite values")
        eff = self.movie_factors.copy()
        if has_genres and k:
            from mfrec.kernels.als import genre_part

            eff += genre_part(self.genre_indptr, self.genre_indices, self.genre_factors)
        eff.setflags(write=False)
        self.effective_movie_factors = eff
        self._movie_gram: np.ndarray | None = None  # movie_gram, built on first use
        self._from_config: dict[str, tuple[dict, Any]] = {}  # als_config, fold_in_settings: (config read, value)
        self.history: list = []  # per-epoch reports of the fit that made this model (not persisted)

    # -- shape and settings ---------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_bias)

    @property
    def n_movies(self) -> int:
        return len(self.movie_bias)

    @property
    def k(self) -> int:
        return self.movie_factors.shape[1]

    @property
    def kind(self) -> str:
        """The model kind that wrote the file: bias, mf, mf-genre, neumf, genre-embedding, ..."""
        return str(self.config.get("exported_from") or self.config.get("model") or "mf")

    @property
    def exported_from(self) -> str | None:
        """The neural model kind these factors were exported from (None for ALS models)."""
        return self.config.get("exported_from")

    @property
    def best_epoch(self) -> int | None:
        return self.config.get("best_epoch")

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        s = self.config.get("rating_scale")
        return (float(s[0]), float(s[1])) if s is not None else None

    @property
    def implicit(self) -> bool:
        """True for an implicit-feedback model (ials): its scores rank movies and are not ratings."""
        return self.kind == "ials"

    def _config_cached(self, name: str, build):
        """``build()``, kept while ``config`` stays equal to the one it was built from (a served request
        folds a user in with these settings: parsing the config each time cost ~0.2 ms of ~5)."""
        kept = self._from_config.get(name)
        if kept is not None and kept[0] == self.config:
            return kept[1]
        value = build()
        self._from_config[name] = (dict(self.config), value)
        return value

    @property
    def als_config(self):
        """The ``ALSConfig`` this ALS model was trained with (older files: their own defaults)."""
        return self._config_cached("als_config", self._read_als_config)

    def _read_als_config(self):
        from mfrec.models.config import ALSConfig

        if self.exported_from:
            raise ModelError(f"{self.path or 'the model'} holds factors exported from {self.exported_from}, "
                             "not an ALS model")
        try:
            return ALSConfig.from_dict({"reg_exponent": LEGACY_REG_EXPONENT, **self.config})
        except (TypeError, ValueError) as e:
            raise ModelError(f"{self.path or 'the model'}'s config cannot be read ({e})") from None

    @property
    def fold_in_settings(self) -> FoldInSettings:
        """The user half-step penalties: the ALS run's own, or for exported neural factors the ridge
        their loss amounts to.

        neumf and genre-embedding minimise the batch mean of ``(r - r̂)^2 + reg (|p_u|^2 + |q_i|^2)``,
        so over an epoch a user with n ratings pays ``reg * n * |p_u|^2``: weighted-lambda with
        exponent 1 and the run's ``reg``. A model without biases keeps a folded-in user's bias at zero
        (a huge bias penalty); an unpenalised neural bias gets penalty 1 so that a one-movie user stays
        well posed. For neural models this approximates where training would put a new user.
        """
        return self._config_cached("fold_in_settings", self._read_fold_in_settings)

    def _read_fold_in_settings(self) -> FoldInSettings:
        if self.config.get("model") == "bayes":  # the learned prior as a ridge: lambda / noise precision
            try:
                return FoldInSettings(float(self.config["fold_in_reg"]), float(self.config["fold_in_reg_bias"]),
                                      False, 0.0)
            except (KeyError, TypeError, ValueError):
                raise ModelError(f"{self.path or 'the model'}: a bayes model without its fold_in_reg settings") from None
        if self.exported_from:
            try:
                reg = float(self.config.get("reg") or 0.0)
            except (TypeError, ValueError):
                raise ModelError(f"{self.path or 'the model'}: reg {self.config.get('reg')!r} is not a number") from None
            has_bias = bool(np.any(self.user_bias != 0) or np.any(self.movie_bias != 0))
            return FoldInSettings(reg if reg > 0 else 0.05, 1.0 if has_bias else NO_BIAS_PENALTY, True, 1.0)
        c = self.als_config
        return FoldInSettings(float(c.reg), float(c.reg_bias), bool(c.weighted_reg), float(c.reg_exponent))

    # -- use ------------------------------------------------------------------------------------
    def predict(self, users, movies, clip: bool = True) -> np.ndarray:
        """Predicted ratings (float32) for arrays of user and movie indices, clipped to the rating scale."""
        from mfrec.kernels.predict import predict

        return predict(users, movies, self.mu, self.user_bias, self.movie_bias, self.user_factors,
                       self.effective_movie_factors, self.rating_scale if clip else None)

    def rating(self, scores) -> np.ndarray:
        """Predicted ratings shown for scores: the run's fitted map onto the scale (module docstring),
        else the scores clipped to the scale (unchanged without a scale)."""
        x = np.asarray(scores, np.float64)
        fit, scale = self.config.get("rating_map"), self.rating_scale
        if scale is None:
            return x
        if not fit:
            return np.clip(x, *scale)
        lo, hi = scale
        return lo + (hi - lo) / (1.0 + np.exp(-(float(fit["a"]) + float(fit["b"]) * x)))

    def evaluate(self, split, clip: bool = True) -> dict[str, float]:
        """RMSE and MAE on a ``Split`` (or any object with user, movie, rating arrays)."""
        from mfrec.kernels.predict import error_sums

        n = len(split.rating)
        if n == 0:
            return {"rmse": float("nan"), "mae": float("nan"), "n": 0}
        sq, ab = error_sums(split.user, split.movie, split.rating, self.mu, self.user_bias, self.movie_bias,
                            self.user_factors, self.effective_movie_factors, self.rating_scale if clip else None)
        return {"rmse": float(np.sqrt(sq / n)), "mae": ab / n, "n": n}

    def score_movies(self, user_bias: float, user_vector: np.ndarray) -> np.ndarray:
        """Unclipped predicted rating of every movie for one user (bias + factors), float32."""
        if self.k == 0:
            return (self.movie_bias + np.float32(self.mu + user_bias)).astype(np.float32)
        from mfrec.kernels.topk import score_one

        return score_one(self.effective_movie_factors, user_vector, self.movie_bias, self.mu + user_bias)

    def score_users(self, users) -> np.ndarray:
        """Unclipped predicted ratings of every movie for a batch of trained users, (len(users), n_movies)
        float32 (what ranking scores: clipping would tie the top of the list)."""
        u = np.asarray(users, np.int64)
        s = (self.user_factors[u] @ self.effective_movie_factors.T if self.k
             else np.zeros((len(u), self.n_movies), np.float32))
        return (s + self.user_bias[u, None] + self.movie_bias[None, :] + np.float32(self.mu)).astype(np.float32)

    @property
    def movie_gram(self) -> np.ndarray:
        """``Q^T Q`` of the (read-only) movie factors, float64 (k x k; computed once, by BLAS in float32):
        the implicit fold-in's and its explanation's ``alpha0 Q^T Q`` without a pass over every movie per user."""
        if self._movie_gram is None:
            q = self.movie_factors
            gram = (q.T @ q).astype(np.float64)
            gram.setflags(write=False)
            self._movie_gram = gram
        return self._movie_gram

    @property
    def calibrated(self) -> bool:
        """Whether a folded-in user is shrunk towards the training users (the model has a population prior)."""
        return self.prior_mean is not None

    def fold_in(self, indptr, indices, values, prior: bool = True, times=None) -> tuple[np.ndarray, np.ndarray]:
        """Bias (n_rows,) and factors (n_rows, k) of users given as a CSR of (movie index, rating).

        The model's ALS user half-step on these rows, exact, plus the population prior when the model
        has one and ``prior`` (the module docstring); the model is not modified. ``times`` (ials only,
        optional): each rating's timestamp, so that its confidence gets the recency the model was
        trained with; without them every rating counts as current.
        """
        indptr = np.asarray(indptr, np.int64)
        indices = np.asarray(indices, np.int32)
        values = np.asarray(values, np.float32)
        if len(indices) and (indices.min() < 0 or indices.max() >= self.n_movies):
            raise DataError(f"a rated movie index is outside 0..{self.n_movies - 1}")
        if not np.all(np.isfinite(values)):
            raise DataError("a rating to fold in is NaN or infinite")
        for r in range(len(indptr) - 1):
            row = indices[indptr[r]:indptr[r + 1]]
            if len(np.unique(row)) != len(row):
                raise DataError(f"user row {r} rates a movie twice: give each movie once")
        if self.implicit:
            return np.zeros(len(indptr) - 1, np.float32), self._fold_in_implicit(indptr, indices, values, times)
        if prior and self.calibrated:
            return self._fold_in_with_prior(indptr, indices, values)
        from mfrec.kernels.als import solve_rows

        with _threads_for(len(indptr) - 1):
            factors, bias = solve_rows(indptr, indices, values, self.effective_movie_factors, self.movie_bias,
                                       self.mu, **self.fold_in_settings.kwargs(), solver="cholesky", what="new user")
        return bias, factors

    def _fold_in_implicit(self, indptr, indices, values, times=None) -> np.ndarray:
        """ials: the exact implicit user half-step (like implicit's ``recalculate_user``) on the
        ratings' confidences, with the run's penalty and unobserved weight."""
        from mfrec.kernels.ials import solve_implicit_rows
        from mfrec.models.confidence import confidence_of, places_in_history

        c = self.als_config
        recent = None
        if times is not None:
            rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            recent = places_in_history(rows, np.asarray(times, np.int64), len(indptr) - 1)
        with _threads_for(len(indptr) - 1):
            return solve_implicit_rows(indptr, indices, confidence_of(self, values, recent), self.movie_factors, reg=c.reg,
                                       alpha0=c.unobserved_weight, nu=c.reg_exponent, solver="cholesky",
                                       gram=c.unobserved_weight * self.movie_gram, what="new user")

    def fold_in_system(self, movies, prior: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(A, X, prior_rhs)`` of one user's fold-in over these movie indices, float64: the user solves
        ``A z = X^T t + prior_rhs`` with ``t`` the residuals ``r - mu - b_j`` (``prior_rhs = P m``, or zeros)."""
        x = _design(self.effective_movie_factors, np.asarray(movies, np.int64))
        a = x.T @ x + np.diag(self.fold_in_settings.penalty(len(x), self.k))
        rhs = np.zeros(self.k + 1)
        if prior and self.calibrated:
            a = a + self.prior_precision
            rhs = self.prior_precision @ self.prior_mean
        return a, x, rhs

    def _fold_in_with_prior(self, indptr, indices, values) -> tuple[np.ndarray, np.ndarray]:
        n_rows = len(indptr) - 1
        out = np.zeros((n_rows, self.k + 1), np.float64)
        for r in range(n_rows):
            movies = indices[indptr[r]:indptr[r + 1]]
            a, x, rhs = self.fold_in_system(movies)
            t = values[indptr[r]:indptr[r + 1]].astype(np.float64) - self.mu - self.movie_bias[movies].astype(np.float64)
            out[r] = np.linalg.solve(a, x.T @ t + rhs)
        return out[:, 0].astype(np.float32), np.ascontiguousarray(out[:, 1:], np.float32)

    def fold_in_user(self, movies, ratings, prior: bool = True, times=None) -> tuple[float, np.ndarray]:
        """One new user's (bias, factors) from their (movie index, rating) pairs (``times``: see ``fold_in``)."""
        movies = np.asarray(movies, np.int32)
        ratings = np.asarray(ratings, np.float32)
        if movies.shape != ratings.shape or movies.ndim != 1:
            raise DataError("movies and ratings must be 1-d arrays of one length")
        if times is not None and np.shape(times) != movies.shape:
            raise DataError("times must have one timestamp per rating")
        bias, factors = self.fold_in(np.array([0, len(movies)], np.int64), movies, ratings, prior=prior, times=times)
        return float(bias[0]), factors[0]

    # -- persistence ----------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        """What the model file holds, as NumPy arrays (config_json as a 0-d string array)."""
        out: dict[str, np.ndarray] = {key: getattr(self, key) for key in ARRAY_KEYS if key != "mu"}
        out["mu"] = np.asarray(self.mu, np.float32)
        if self.calibrated:
            out["prior_mean"], out["prior_precision"] = self.prior_mean, self.prior_precision
        out["config_json"] = np.asarray(json.dumps(self.config))
        out["format_version"] = np.asarray(FORMAT_VERSION, np.int64)
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model file (np.savez, no pickles) atomically; returns the path."""
        from mfrec.io import write_npz

        return write_npz(path, self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FactorModel":
        """Load a model file (a run folder means its model.npz, else its factors.npz).

        ``ModelError`` names the file and what is wrong with it.
        """
        path = Path(path)
        if path.is_dir():
            found = [path / f for f in FACTOR_FILES if (path / f).is_file()]
            if not found:
                raise ModelError(f"{path} has no {' or '.join(FACTOR_FILES)}: it holds no factor model")
            path = found[0]
        if not path.is_file():
            raise ModelError(f"{path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as z:
                files = set(z.files)
                missing = [key for key in NPZ_KEYS if key not in files]
                if missing:
                    raise ModelError(f"{path} is not an mfrec model file: it lacks {', '.join(missing)}")
                a = {key: z[key] for key in NPZ_KEYS + PRIOR_KEYS if key in files}
                version = int(z["format_version"]) if "format_version" in files else 0
        except (OSError, ValueError, EOFError, OverflowError, IndexError, KeyError, NotImplementedError,
                RuntimeError, struct.error, zipfile.BadZipFile, zlib.error) as e:  # what zipfile and npy raise
            # NumPy calls any non-.npz file a pickle; say what it is instead
            lines = str(e).strip().splitlines()
            why = "not an .npz archive" if "pickle" in str(e) else (lines[0][:120] if lines else type(e).__name__)
            raise ModelError(f"{path} is not a readable model file ({why}): it is damaged or was not written "
                             "by mfrec; train the run again") from None
        if version > FORMAT_VERSION:
            raise ModelError(f"{path} has model format {version}, newer than this mfrec reads "
                             f"({FORMAT_VERSION}): upgrade mfrec")
        try:
            config = json.loads(str(a.pop("config_json")))
        except json.JSONDecodeError as e:
            raise ModelError(f"{path}: config_json is not valid JSON ({e.msg})") from None
        if not isinstance(config, dict):
            raise ModelError(f"{path}: config_json is not a JSON object")
        return cls(**a, config=config, path=path)

    def __repr__(self) -> str:
        return f"FactorModel({self.kind}, k={self.k}, {self.n_users:,} users, {self.n_movies:,} movies)"
