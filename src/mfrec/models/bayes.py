"""Bayesian matrix factorization fitted by Gibbs sampling (``--model bayes``).

Prediction, averaged over the posterior::

    r̂(u, i) = mu + b_u + b_i + (p_u + |N_u|^-1/2 Σ_{j ∈ N_u} z_j) · (q_i + |U_i|^-1/2 Σ_{v ∈ U_i} w_v)

N_u = the movies u rated in training (the SVD++ implicit group, ``implicit_user``), U_i = the users
who rated i in training (Rendle 2019's "flipped" group, ``implicit_movie``). Both are the groups
myFM's best ML-100k setting uses, built from the training ratings only (its "stricter protocol").

**Priors.** Every group (user biases, user factors, movie biases, movie factors, z, w) has a
Gaussian prior with one mean and one precision per dimension, and those get a Normal–Gamma
hyperprior (mean ~ N(0, 1/λ), λ ~ Gamma(1, 1)), as in libFM and myFM, drawn every sweep and once
more from the initial state before the first (so the first sweep meets a prior as strong as the
initial factors, not a fixed precision of 1 under which the first sweeps overfit at large k). Why Normal–Gamma rather than
BPMF's Normal–Wishart: a diagonal prior keeps each row's conditional precision "ALS Gram +
diagonal", the ALS half-step's own shape (``mfrec.kernels.als``), its hyperparameters are drawn in
O(k) per group, and it is what reaches myFM's accuracy; a full Wishart couples the dimensions for
no measured gain at these ranks. The noise precision α ~ Gamma(1 + n/2, 1 + SSE/2). μ is the
training mean (the bias priors' sampled means absorb any offset).

**One sweep** (``mfrec.kernels.gibbs``): movies' [b_i, q_i] (each a Cholesky draw against the
users' effective vectors); the flipped factors w one at a time; users' [b_u, p_u]; the implicit
factors z one at a time; the hyperparameters; α. The first ``burn_in`` sweeps are dropped; after
them the validation and test predictions, the factors and the biases are summed (running sums,
never a list of samples), and every ``samples // stored_samples``-th sample's effective factors are
kept for the predictive spread of any (user, movie).

**The fitted model** is a ``FactorModel`` of the posterior means: user factors = mean of the
effective user vectors, movie factors = mean of the effective movie vectors, biases = their means,
so every API (predict, ranking, plots, notebooks) works on it. The model's prediction of a split
is the running mean of the predictions (``model.posterior_predictions``, metrics.csv,
``posterior_test_rmse``): the exact posterior mean, and the run's test RMSE; the mean factors'
own RMSE (``model.evaluate``) is a little worse. ``BayesSamples`` holds the kept samples for the
"4.3 ± 0.4".
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.callbacks import EpochReport, Step, emit
from mfrec.errors import ModelError
from mfrec.models.factor import FactorModel

SAMPLES_FILE = "samples.npz"
# hyperprior constants (libFM / myFM): lambda ~ Gamma(ALPHA0, rate BETA0), mean ~ N(MU0, 1 / (GAMMA0 lambda))
ALPHA0, BETA0, GAMMA0, MU0 = 1.0, 1.0, 1.0, 0.0
# with threads = 0, smaller training sets run on one thread: on ml-100k u1 (80,000 ratings) a sweep
# took 0.032 s on one thread and 0.045-0.056 s on two (2 shared cores); at 900,000 the two tied
SERIAL_BELOW = 250_000
# random-number streams of one sweep
_MOVIES, _USERS, _Z, _W = 1, 2, 3, 4


@dataclass(frozen=True)
class BayesConfig:
    """Settings of the Gibbs sampler (``--model bayes``); there is no regularisation to tune."""

    model: str = field(default="bayes", metadata={"doc": "Always bayes."})
    factors: int = field(default=10, metadata={"doc": "Latent dimension k."})
    samples: int = field(default=200, metadata={"doc": "Gibbs sweeps in all, burn-in included."})
    burn_in: int = field(default=5, metadata={"doc": "Sweeps dropped before the posterior averages start."})
    implicit_user: bool = field(
        default=True, metadata={"doc": "SVD++ group: each user's vector adds |N_u|^-1/2 sum of z_j over the movies they rated."})
    implicit_movie: bool = field(
        default=True, metadata={"doc": "Flipped group (Rendle 2019): each movie's vector adds |U_i|^-1/2 sum of w_v over its raters."})
    time_bias: bool = field(
        default=True, metadata={"doc": "Time-aware biases: a bias per (user, day) and per (movie, time bin), each group with its own Normal-Gamma prior."})
    time_bins: int = field(default=30, metadata={"doc": "Time bins of the movie-time bias (equal spans of the training period)."})
    stored_samples: int = field(
        default=20, metadata={"doc": "Posterior samples of the effective factors kept for the predictive spread (0 = none)."})
    init_std: float = field(default=0.1, metadata={"doc": "Standard deviation of the random initial factors."})
    seed: int = field(default=42, metadata={"doc": "Seed of the chain; the same seed gives the same chain on any thread count."})
    threads: int = field(default=0, metadata={
        "doc": "Numba threads (0 = all cores, but one below 250,000 training ratings, where a sweep's parallel regions cost more than they save)."})

    @property
    def k(self) -> int:
        return self.factors

    def validate(self) -> "BayesConfig":
        """Raise ModelError naming the first bad field; return self."""
        def bad(name: str, must: str) -> ModelError:
            return ModelError(f"config field {name} {must}, got {getattr(self, name)!r}")

        if self.model != "bayes":
            raise bad("model", "must be bayes")
        for name, low in (("factors", 1), ("samples", 1), ("burn_in", 0), ("stored_samples", 0), ("threads", 0),
                          ("seed", 0), ("time_bins", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise bad(name, f"must be an integer >= {low}")
        if self.burn_in >= self.samples:
            raise bad("burn_in", f"must be below samples ({self.samples}) so that some samples are kept")
        for name in ("implicit_user", "implicit_movie", "time_bias"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "must be true or false")
        if not isinstance(self.init_std, (int, float)) or not (0 < self.init_std < float("inf")):
            raise bad("init_std", "must be a positive finite number")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BayesConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes: Any) -> "BayesConfig":
        return replace(self, **changes)


def field_docs() -> dict[str, str]:
    """One line of documentation per config field, in field order."""
    return {f.name: f.metadata["doc"] for f in fields(BayesConfig)}


class BayesSamples:
    """Kept posterior samples of the effective factors and biases, for the spread of a prediction.

    ``predictive(users, movies)`` gives (mean, std) of the posterior predictive: the mean over the
    kept samples and sqrt(variance over them + 1 / noise precision).
    """

    KEYS = ("user_factors", "movie_factors", "user_bias", "movie_bias", "noise_precision")

    def __init__(self, mu, user_factors, movie_factors, user_bias, movie_bias, noise_precision):
        self.mu = float(mu)
        self.user_factors = np.asarray(user_factors, np.float32)  # (S, n_users, k)
        self.movie_factors = np.asarray(movie_factors, np.float32)  # (S, n_movies, k)
        self.user_bias = np.asarray(user_bias, np.float32)  # (S, n_users)
        self.movie_bias = np.asarray(movie_bias, np.float32)  # (S, n_movies)
        self.noise_precision = float(noise_precision)  # posterior mean of alpha
        n = len(self.user_factors)
        if not (len(self.movie_factors) == len(self.user_bias) == len(self.movie_bias) == n):
            raise ModelError("the kept samples have inconsistent counts")

    def __len__(self) -> int:
        return len(self.user_factors)

    def predictive(self, users, movies, scale: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior predictive mean and standard deviation of the ratings of (users, movies) pairs."""
        from mfrec.kernels.predict import predict

        users = np.asarray(users, np.int32)
        movies = np.asarray(movies, np.int32)
        s1 = np.zeros(len(users), np.float64)
        s2 = np.zeros(len(users), np.float64)
        for s in range(len(self)):
            p = predict(users, movies, self.mu, self.user_bias[s], self.movie_bias[s], self.user_factors[s],
                        self.movie_factors[s]).astype(np.float64)
            s1 += p
            s2 += p * p
        n = max(len(self), 1)
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0) + 1.0 / self.noise_precision
        if scale is not None:
            mean = np.clip(mean, scale[0], scale[1])
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)

    def _spread(self, user_bias: np.ndarray, user_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over every movie for one user given per-sample (bias (S,), vector (S, k))."""
        scores = (np.einsum("smk,sk->sm", self.movie_factors, user_vectors, dtype=np.float64)
                  + self.movie_bias + user_bias[:, None] + self.mu)
        mean = scores.mean(axis=0)
        var = scores.var(axis=0) + 1.0 / self.noise_precision
        return mean.astype(np.float32), np.sqrt(var).astype(np.float32)

    def user_spread(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Posterior predictive mean and std of trained user ``u``'s rating of every movie."""
        return self._spread(self.user_bias[:, u].astype(np.float64), self.user_factors[:, u])

    def fold_in_spread(self, movies, ratings, reg: float, reg_bias: float) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and std of every movie for a made-up user.

        Per kept sample, the user's [b, p] is the ridge solve (the learned prior as penalties) against
        that sample's movie factors; the spread over the samples plus the noise variance is the
        variance. An approximation: the user's own conditional spread given a sample is left out
        (with a handful of ratings it is what the movie samples' spread already shows).
        """
        from mfrec.kernels.als import solve_rows

        movies = np.asarray(movies, np.int32)
        ratings = np.asarray(ratings, np.float32)
        indptr = np.array([0, len(movies)], np.int64)
        bias = np.zeros(len(self), np.float64)
        vecs = np.zeros((len(self), self.user_factors.shape[2]), np.float32)
        for s in range(len(self)):
            f, b = solve_rows(indptr, movies, ratings, self.movie_factors[s], self.movie_bias[s], self.mu, reg=reg,
                              reg_bias=reg_bias, weighted=False, reg_exponent=0.0, solver="cholesky", what="new user")
            bias[s], vecs[s] = b[0], f[0]
        return self._spread(bias, vecs)

    def save(self, path) -> Path:
        from mfrec.io import write_npz

        return write_npz(path, {"mu": np.asarray(self.mu), "user_factors": self.user_factors,
                                "movie_factors": self.movie_factors, "user_bias": self.user_bias,
                                "movie_bias": self.movie_bias, "noise_precision": np.asarray(self.noise_precision)})

    @classmethod
    def load(cls, path) -> "BayesSamples":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(float(z["mu"]), *(z[k] for k in cls.KEYS[:4]), float(z["noise_precision"]))
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise ModelError(f"{path} is not a readable file of posterior samples ({type(e).__name__}); "
                             "train the run again") from None


def _coef(indptr) -> np.ndarray:
    n = np.diff(np.asarray(indptr, np.int64)).astype(np.float64)
    return np.where(n > 0, 1.0 / np.sqrt(np.maximum(n, 1.0)), 0.0)


class _TimeBiases:
    """The time-aware bias groups: b_{u,day} per (user, day of a training rating) and b_{i,bin} per
    (movie, one of ``bins`` equal spans of the training period), as in timeSVD++ (Koren 2009) and
    Rendle 2019's Bayesian timeSVD++ flipped. A rating of an evaluation split gets the (user, day)
    bias only when that user rated in training that day, and the (movie, bin) bias of its bin when
    that movie was rated in training in that bin (else 0, the term left out).

    Given everything else, a group's members touch disjoint ratings, so each group's draw is
    independent: b_g | rest ~ N((alpha s_g + lam m) / p_g, 1 / p_g) with p_g = alpha n_g + lam, s_g
    the sum of the residuals of the ratings in g (``mfrec.kernels.gibbs.time_bias_draw``, parallel
    over the users, then the movies, that own the groups). Per training rating it keeps three int32
    (its two groups in the user CSR's order, and the movie CSR's map to that order) and one float64
    residual: 20 bytes."""

    DAY = 86_400

    def __init__(self, dataset, bins: int):
        train = dataset.train
        ts = np.asarray(train.timestamp, np.int64)
        if len(ts) == 0 or not np.all(np.isfinite(ts)):
            raise ModelError(f"dataset {dataset.name} has no usable rating timestamps for time_bias")
        self.t0, span = int(ts.min()), int(ts.max() - ts.min()) + 1
        del ts
        self.bins = bins
        self.span = span
        nu, nm = dataset.n_users, dataset.n_movies
        # the CSRs' order of the training ratings (users: the training order, or by_user; movies: by movie, then user)
        user, movie = np.asarray(train.user), np.asarray(train.movie)
        by_user = None if np.array_equal(dataset.train_by_user.indices, movie) else \
            np.lexsort((movie, user)).astype(np.int32)
        by_movie = np.lexsort((user, movie)).astype(np.int32)
        in_user_order = movie if by_user is None else movie[by_user]
        if not (np.array_equal(in_user_order, dataset.train_by_user.indices)
                and np.array_equal(user[by_movie], dataset.train_by_movie.indices)):
            raise ModelError(f"dataset {dataset.name}'s training CSRs are not in (user, movie) order; prepare it again")
        del in_user_order
        # each rating's groups, in the user CSR's order (int32: 4 bytes a rating each); groups are
        # numbered in key order, so a user's days and a movie's bins are contiguous runs
        self.ud_keys, ud = np.unique(self._ud_key(train), return_inverse=True)
        self.ud = (ud if by_user is None else ud[by_user]).astype(np.int32)
        del ud
        self.ib_keys, ib = np.unique(self._ib_key(train), return_inverse=True)
        self.ib = (ib if by_user is None else ib[by_user]).astype(np.int32)
        del ib
        if by_user is None:
            self.m2u = by_movie
        else:  # movie-CSR position -> training index -> user-CSR position
            inverse = np.empty(len(by_user), np.int32)
            inverse[by_user] = np.arange(len(by_user), dtype=np.int32)
            self.m2u = inverse[by_movie]
            del inverse
        # a key's user: days before 1970 are negative, hence the shift by 2^31 first
        self.ud_ptr = np.searchsorted((self.ud_keys + (1 << 31)) >> 32, np.arange(nu + 1)).astype(np.int64)
        self.ib_ptr = np.searchsorted(self.ib_keys // bins, np.arange(nm + 1)).astype(np.int64)
        self.ud_counts = np.bincount(self.ud, minlength=len(self.ud_keys))
        self.ib_counts = np.bincount(self.ib, minlength=len(self.ib_keys))
        self.resid = np.empty(len(self.ud))  # each rating's residual, float64 scratch of the draw
        self.b_ud = np.zeros(len(self.ud_keys))
        self.b_ib = np.zeros(len(self.ib_keys))
        self.prior = {"user_day": (np.zeros(1), np.ones(1)), "movie_bin": (np.zeros(1), np.ones(1))}

    def _ud_key(self, split) -> np.ndarray:
        return np.asarray(split.user, np.int64) * (1 << 32) + (np.asarray(split.timestamp, np.int64) // self.DAY)

    def _ib_key(self, split) -> np.ndarray:
        t = np.asarray(split.timestamp, np.int64)
        b = np.clip((t - self.t0) * self.bins // self.span, 0, self.bins - 1)
        return np.asarray(split.movie, np.int64) * self.bins + b

    @staticmethod
    def _lookup(keys, wanted) -> np.ndarray:
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(keys[pos] == wanted, pos, -1).astype(np.int32)

    def split_index(self, split) -> tuple[np.ndarray, np.ndarray]:
        return self._lookup(self.ud_keys, self._ud_key(split)), self._lookup(self.ib_keys, self._ib_key(split))

    def offsets(self, ud, ib) -> np.ndarray:
        """The time-bias part of each rating's prediction (indices -1: no term)."""
        out = np.where(ud >= 0, self.b_ud[np.maximum(ud, 0)], 0.0)
        return out + np.where(ib >= 0, self.b_ib[np.maximum(ib, 0)], 0.0)

    def draw(self, rng, dataset, mu: float, bu, bi, Peff, Qeff, alpha: float, uvals, mvals) -> float:
        """Draw both groups given the rest of the prediction; write the ratings less the new time
        biases into ``uvals``/``mvals`` (each CSR's order); return the SSE of the full prediction."""
        from mfrec.kernels.gibbs import time_bias_draw

        ud_eps = rng.standard_normal(len(self.b_ud))
        ib_eps = rng.standard_normal(len(self.b_ib))
        m, lam = self.prior["user_day"]
        mb_, lb = self.prior["movie_bin"]
        return time_bias_draw(dataset.train_by_user, dataset.train_by_movie, self.ud, self.ib, self.m2u, self.ud_ptr,
                              self.ib_ptr, self.ud_counts, self.ib_counts, self.b_ud, self.b_ib, mu, bu, bi, Peff, Qeff,
                              alpha=alpha, ud_prior=(m[0], lam[0]), ib_prior=(mb_[0], lb[0]), ud_eps=ud_eps,
                              ib_eps=ib_eps, user_values=uvals, movie_values=mvals, resid=self.resid)


def _draw_priors(rng, prior: dict, bu, P, bi, Q, Z, W) -> None:
    """Draw the (mean, precision) per dimension of the factor groups' priors given their values:
    [b_u, p_u], [b_i, q_i], and the implicit z and w when there are any (into ``prior``).

    Also called once on the initial state, before the first sweep (myFM draws the hyperparameters
    before the parameters in every sweep, so its first sweep likewise meets a prior drawn from the
    initial factors). A fixed starting prior of precision 1 is far weaker than the one the data
    support (the initial factors have sd ``init_std`` = 0.1, a precision near 100): the first sweeps
    then overfit, more so the larger k, and the chain comes back slowly. On ml-100k u1 at k = 32
    the first sample's test RMSE was 1.45 and the running posterior mean still 0.8954 after 200
    samples; with the drawn start, 0.8897 (myFM: 0.8896)."""
    from mfrec.kernels.gibbs import normal_gamma_draw

    kw = dict(mu0=MU0, gamma0=GAMMA0, alpha0=ALPHA0, beta0=BETA0)
    prior["user"] = normal_gamma_draw(rng, np.column_stack([bu, P]), **kw)
    prior["movie"] = normal_gamma_draw(rng, np.column_stack([bi, Q]), **kw)
    if len(Z):
        prior["z"] = normal_gamma_draw(rng, Z, **kw)
    if len(W):
        prior["w"] = normal_gamma_draw(rng, W, **kw)


def fit(dataset, config: BayesConfig, callback: Callable[[Any], Any] | None = None,
        log: Callable[[str], None] | None = None) -> FactorModel:
    """Run the Gibbs sampler on ``dataset.train``; one ``EpochReport`` per sweep (train RMSE of that
    sample, validation and test RMSE of the running posterior mean), then a ``Step``.

    Returns the posterior-mean ``FactorModel``; ``model.samples`` is the ``BayesSamples`` kept,
    ``model.history`` the per-sweep reports. Deterministic for a seed, on any number of threads.
    """
    import numba

    from mfrec.kernels.gibbs import implicit_part, normal_gamma_draw, sample_implicit, sample_rows
    from mfrec.kernels.predict import error_sums, predict
    from mfrec.models.als import _check_finite, check_threads

    say = log or (lambda _m: None)
    config = config.validate()
    t_start = time.perf_counter()
    prev_threads = numba.get_num_threads()
    threads = config.threads or (1 if len(dataset.train) < SERIAL_BELOW else 0)
    n_threads = check_threads(threads)
    try:
        nu, nm, k = dataset.n_users, dataset.n_movies, config.k
        train, val, test = dataset.train, dataset.val, dataset.test
        if len(train) == 0:
            raise ModelError(f"dataset {dataset.name} has no training ratings")
        ucsr, mcsr = dataset.train_by_user, dataset.train_by_movie
        mu = float(np.mean(train.rating, dtype=np.float64))
        scale = (float(dataset.rating_scale[0]), float(dataset.rating_scale[1]))
        init = np.random.default_rng(config.seed)
        P = (init.standard_normal((nu, k)) * config.init_std).astype(np.float32)
        Q = (init.standard_normal((nm, k)) * config.init_std).astype(np.float32)
        bu = np.zeros(nu, np.float32)
        bi = np.zeros(nm, np.float32)
        Z = np.zeros((nm if config.implicit_user else 0, k), np.float32)  # SVD++ factors of movies
        W = np.zeros((nu if config.implicit_movie else 0, k), np.float32)  # flipped factors of users
        S = np.zeros((nu, k), np.float32)  # users' implicit parts
        T = np.zeros((nm, k), np.float32)  # movies' implicit parts
        cu, cm = _coef(ucsr.indptr), _coef(mcsr.indptr)
        ugram = np.zeros((nu, k, k) if config.implicit_user else (0, k, k), np.float32)
        uresid = np.zeros((nu, k) if config.implicit_user else (0, k), np.float64)
        mgram = np.zeros((nm, k, k) if config.implicit_movie else (0, k, k), np.float32)
        mresid = np.zeros((nm, k) if config.implicit_movie else (0, k), np.float64)
        # priors: [bias, factors] per side, and the implicit groups; (mean, precision) per dimension,
        # drawn from the initial state before the first sweep (see _draw_priors)
        prior: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        _draw_priors(np.random.default_rng([config.seed, 0]), prior, bu, P, bi, Q, Z, W)
        alpha = 1.0
        kept = config.samples - config.burn_in
        every = max(1, kept // config.stored_samples) if config.stored_samples else 0
        n_store = len(range(config.burn_in + every, config.samples + 1, every)) if every else 0
        n_store = min(n_store, config.stored_samples)
        store = BayesSamples(mu, np.zeros((n_store, nu, k)), np.zeros((n_store, nm, k)), np.zeros((n_store, nu)),
                             np.zeros((n_store, nm)), 1.0)
        sums = {"P": np.zeros((nu, k)), "Q": np.zeros((nm, k)), "bu": np.zeros(nu), "bi": np.zeros(nm), "alpha": 0.0,
                "user_prec": np.zeros(k + 1)}
        pred_sums = {name: np.zeros(len(split)) if split is not None else None
                     for name, split in (("val", val), ("test", test))}
        tb = _TimeBiases(dataset, config.time_bins) if config.time_bias else None
        uvals, mvals = ucsr.values, mcsr.values  # the ratings less the time biases, in each CSR's order
        if tb is not None:
            uvals, mvals = np.array(ucsr.values, np.float32), np.array(mcsr.values, np.float32)
        split_idx = {name: tb.split_index(split) for name, split in (("val", val), ("test", test))
                     if tb is not None and split is not None and len(split)}
        say(f"fit bayes: {nu:,} users, {nm:,} movies, {len(train):,} train ratings, k={k}, {config.samples} samples "
            f"({config.burn_in} burn-in), implicit user={config.implicit_user} movie={config.implicit_movie}, "
            f"time biases={config.time_bias}, "
            f"{n_threads} threads")

        def running_rmse(name: str, split, n_kept: int, Peff, Qeff) -> float | None:
            if split is None or len(split) == 0:
                return None
            if n_kept == 0:  # burn-in: the current sample
                if name in split_idx:
                    p = predict(split.user, split.movie, np.float32(mu), bu, bi, Peff, Qeff) + tb.offsets(*split_idx[name])
                    return float(np.sqrt(np.mean((np.clip(p, *scale) - split.rating) ** 2)))
                sq, _ = error_sums(split.user, split.movie, split.rating, np.float32(mu), bu, bi, Peff, Qeff, scale)
                return float(np.sqrt(sq / len(split)))
            mean = np.clip(pred_sums[name] / n_kept, *scale)
            return float(np.sqrt(np.mean((mean - split.rating) ** 2)))

        history: list[EpochReport] = []
        sweep_seconds: list[float] = []
        stored = 0
        Peff, Qeff = P, Q
        for sweep in range(1, config.samples + 1):
            t0 = time.perf_counter()
            # movies against the users' effective vectors, the flipped part moved into the offset
            mm, mp = prior["movie"]
            sample_rows(mcsr.indptr, mcsr.indices, mvals, Peff, bu, mu, alpha=alpha, prec=mp, mean=mm,
                        seed=config.seed, sweep=sweep, stream=_MOVIES, row_shift=T if config.implicit_movie else None,
                        out_factors=Q, out_bias=bi, gram=mgram if config.implicit_movie else None,
                        resid=mresid if config.implicit_movie else None, what="movie")
            if config.implicit_movie:
                wm, wp = prior["w"]
                sample_implicit(ucsr.indptr, ucsr.indices, cm, mgram, mresid, W, alpha=alpha, prec=wp, mean=wm,
                                seed=config.seed, sweep=sweep, stream=_W, what="flipped user factor")
                implicit_part(mcsr.indptr, mcsr.indices, cm, W, out=T)
                Qeff = Q + T
            else:
                Qeff = Q
            um, up = prior["user"]
            sample_rows(ucsr.indptr, ucsr.indices, uvals, Qeff, bi, mu, alpha=alpha, prec=up, mean=um,
                        seed=config.seed, sweep=sweep, stream=_USERS, row_shift=S if config.implicit_user else None,
                        out_factors=P, out_bias=bu, gram=ugram if config.implicit_user else None,
                        resid=uresid if config.implicit_user else None, what="user")
            if config.implicit_user:
                zm, zp = prior["z"]
                sample_implicit(mcsr.indptr, mcsr.indices, cu, ugram, uresid, Z, alpha=alpha, prec=zp, mean=zm,
                                seed=config.seed, sweep=sweep, stream=_Z, what="implicit movie factor")
                implicit_part(ucsr.indptr, ucsr.indices, cu, Z, out=S)
                Peff = P + S
            else:
                Peff = P
            # the time biases, the hyperparameters, then the noise precision
            rng = np.random.default_rng([config.seed, sweep])
            kw = dict(mu0=MU0, gamma0=GAMMA0, alpha0=ALPHA0, beta0=BETA0)
            if tb is not None:
                sse = tb.draw(rng, dataset, mu, bu, bi, Peff, Qeff, alpha, uvals, mvals)
                for name, attr in (("user_day", "b_ud"), ("movie_bin", "b_ib")):
                    tb.prior[name] = normal_gamma_draw(rng, getattr(tb, attr)[:, None], **kw)
            _draw_priors(rng, prior, bu, P, bi, Q, Z, W)
            if tb is None:
                sse, _ = error_sums(train.user, train.movie, train.rating, np.float32(mu), bu, bi, Peff, Qeff, None)
            alpha = float(rng.gamma(ALPHA0 + 0.5 * len(train), 1.0 / (BETA0 + 0.5 * sse)))
            seconds = time.perf_counter() - t0
            sweep_seconds.append(seconds)
            _check_finite(sweep, user_factors=Peff, movie_factors=Qeff, user_biases=bu, movie_biases=bi)

            t1 = time.perf_counter()
            n_kept = sweep - config.burn_in
            if n_kept > 0:
                sums["P"] += Peff
                sums["Q"] += Qeff
                sums["bu"] += bu
                sums["bi"] += bi
                sums["alpha"] += alpha
                sums["user_prec"] += prior["user"][1]
                for name, split in (("val", val), ("test", test)):
                    if pred_sums[name] is not None and len(split):
                        pred_sums[name] += predict(split.user, split.movie, np.float32(mu), bu, bi, Peff, Qeff)
                        if name in split_idx:
                            pred_sums[name] += tb.offsets(*split_idx[name])
                if every and n_kept % every == 0 and stored < n_store:
                    store.user_factors[stored], store.movie_factors[stored] = Peff, Qeff
                    store.user_bias[stored], store.movie_bias[stored] = bu, bi
                    stored += 1
            n_avg = max(n_kept, 0)
            val_rmse = running_rmse("val", val, n_avg, Peff, Qeff)
            test_rmse = running_rmse("test", test, n_avg, Peff, Qeff)
            train_rmse = float(np.sqrt(sse / len(train)))
            note = (f"sample {sweep}: train RMSE {train_rmse:.4f} (this sample)"
                    + (f", val RMSE {val_rmse:.4f}" if val_rmse is not None else "")
                    + (f", test RMSE {test_rmse:.4f}" if test_rmse is not None else "")
                    + (" (posterior mean)" if n_kept > 0 else " (burn-in)") + f", noise sd {alpha ** -0.5:.3f}, "
                    f"{seconds:.2f} s (+{time.perf_counter() - t1:.2f} s averaging)")
            result = EpochReport(sweep, train_rmse, val_rmse, test_rmse, seconds, sweep, False,
                                 metrics={"noise_sd": alpha ** -0.5}, note=note)
            history.append(result)
            emit(callback, result)
            emit(callback, Step(1, config.samples, "Gibbs sampling", " samples"))
        n_kept = config.samples - config.burn_in
        store.noise_precision = sums["alpha"] / n_kept
        last = history[-1]
        meta = {
            "dataset": dataset.name,
            "data_path": str(Path(dataset.path).resolve()),
            "rating_scale": list(scale),
            "genres": list(dataset.genres),
            "best_epoch": config.samples,
            "epochs_run": config.samples,
            "kept_samples": n_kept,
            "stored_samples_kept": stored,
            "posterior_val_rmse": last.val_rmse,
            "posterior_test_rmse": last.test_rmse,
            "noise_sd": float(store.noise_precision ** -0.5),
            # the new-user fold-in's ridge penalties: mean prior precision / mean noise precision
            "fold_in_reg": float(sums["user_prec"][1:].mean() / sums["alpha"]),
            "fold_in_reg_bias": float(sums["user_prec"][0] / sums["alpha"]),
            "seconds_per_epoch": float(np.mean(sweep_seconds)),
            "seconds_per_sample": float(np.mean(sweep_seconds)),
            "train_seconds": time.perf_counter() - t_start,
            "numba_threads": n_threads,
        }
        model = FactorModel(mu, sums["bu"] / n_kept, sums["bi"] / n_kept, sums["P"] / n_kept, sums["Q"] / n_kept,
                            None, None, None, dataset.user_ids.ids, dataset.movie_ids.ids,
                            config={**config.to_dict(), **meta})
        model.history = history
        model.samples = store
        model.posterior_predictions = {name: np.clip(s / n_kept, *scale) if s is not None else None
                                       for name, s in pred_sums.items()}
        return model
    finally:
        if threads:
            numba.set_num_threads(prev_threads)
