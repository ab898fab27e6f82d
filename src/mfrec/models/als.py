"""ALS models (bias, mf, mf-genre): the fitted model, its pickle-free model.npz, and the fit loop.

Prediction: r(u, i) = mu + b_u + b_i + p_u . (q_i + |G_i|^-1/2 sum_{g in G_i} y_g).

One epoch: users' [b_u, p_u] against the movies' effective factors; movies' [b_i, q_i] against the
user factors with the genre part moved into the offset; then (mf-genre) the genre factors y as one
joint least-squares problem. The bias model is the same with k = 0.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.errors import ModelError
from mfrec.models.config import ALSConfig

NPZ_KEYS = (
    "mu", "user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors", "genre_indptr",
    "genre_indices", "user_ids", "movie_ids", "config_json",
)
EXPLODED = 1e6  # |factor| above this means the fit diverged


class NonFiniteFactorsError(ModelError):
    """Training produced NaN, inf or exploding factors or biases."""


class ThreadOversubscriptionWarning(RuntimeWarning):
    """BLAS threads x Numba threads exceed the cores: both pools fight for the CPU."""


@dataclass(frozen=True)
class EpochResult:
    """What the fit loop reports to ``callback`` after every epoch."""

    epoch: int
    train_rmse: float
    val_rmse: float | None
    test_rmse: float | None
    seconds: float  # the ALS half-steps (and genre solve) of this epoch, evaluation excluded
    best_epoch: int
    stop: bool  # early stopping ends the fit after this epoch


class ALSModel:
    """A fitted ALS model: biases, factors, genre factors, id vocabularies and the config."""

    def __init__(self, config: ALSConfig, mu, user_bias, movie_bias, user_factors, movie_factors, genre_factors,
                 genre_indptr, genre_indices, user_ids, movie_ids, meta: dict[str, Any] | None = None):
        self.config = config
        self.mu = np.float32(mu)
        self.user_bias = np.ascontiguousarray(user_bias, np.float32)
        self.movie_bias = np.ascontiguousarray(movie_bias, np.float32)
        self.user_factors = np.ascontiguousarray(user_factors, np.float32)
        self.movie_factors = np.ascontiguousarray(movie_factors, np.float32)
        self.genre_factors = np.ascontiguousarray(genre_factors, np.float32)
        self.genre_indptr = np.ascontiguousarray(genre_indptr, np.int64)
        self.genre_indices = np.ascontiguousarray(genre_indices, np.int32)
        self.user_ids = np.ascontiguousarray(user_ids, np.int64)
        self.movie_ids = np.ascontiguousarray(movie_ids, np.int64)
        self.meta: dict[str, Any] = dict(meta or {})
        self.history: list[EpochResult] = []
        self.best_epoch: int | None = self.meta.get("best_epoch")
        self._effective: np.ndarray | None = None

    # -- shape ----------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_bias)

    @property
    def n_movies(self) -> int:
        return len(self.movie_bias)

    @property
    def k(self) -> int:
        return self.user_factors.shape[1]

    @property
    def rating_scale(self) -> tuple[float, float] | None:
        s = self.meta.get("rating_scale")
        return (float(s[0]), float(s[1])) if s is not None else None

    @property
    def genre_part(self) -> np.ndarray:
        """|G_i|^-1/2 sum_g y_g per movie (zeros unless mf-genre)."""
        from mfrec.kernels.als import genre_part

        if len(self.genre_factors) == 0:
            return np.zeros_like(self.movie_factors)
        return genre_part(self.genre_indptr, self.genre_indices, self.genre_factors)

    @property
    def effective_movie_factors(self) -> np.ndarray:
        """q_i + |G_i|^-1/2 sum_g y_g: what a user's factors are multiplied with."""
        if self._effective is None:
            eff = self.movie_factors + self.genre_part if len(self.genre_factors) else self.movie_factors
            self._effective = np.ascontiguousarray(eff, np.float32)
        return self._effective

    # -- use ------------------------------------------------------------------------------------
    def predict(self, users, movies, clip: bool = True) -> np.ndarray:
        """Predicted ratings (float32) for arrays of user and movie indices, clipped to the rating scale."""
        from mfrec.kernels.predict import predict

        return predict(users, movies, self.mu, self.user_bias, self.movie_bias, self.user_factors,
                       self.effective_movie_factors, self.rating_scale if clip else None)

    def evaluate(self, split, clip: bool = True) -> dict[str, float]:
        """RMSE and MAE on a ``Split`` (or any object with user, movie, rating arrays)."""
        from mfrec.kernels.predict import error_sums

        n = len(split.rating)
        if n == 0:
            return {"rmse": float("nan"), "mae": float("nan"), "n": 0}
        sq, ab = error_sums(split.user, split.movie, split.rating, self.mu, self.user_bias, self.movie_bias,
                            self.user_factors, self.effective_movie_factors, self.rating_scale if clip else None)
        return {"rmse": float(np.sqrt(sq / n)), "mae": ab / n, "n": n}

    def solve_user(self, movies, ratings, solver: str | None = None) -> tuple[float, np.ndarray]:
        """Fold in a new user: (bias, factors) from their (movie index, rating) pairs, by the same
        half-step kernel and hyperparameters that trained the users."""
        from mfrec.kernels.als import solve_rows

        movies = np.asarray(movies, np.int32)
        ratings = np.asarray(ratings, np.float32)
        if movies.shape != ratings.shape or movies.ndim != 1:
            raise ValueError("movies and ratings must be 1-d arrays of one length")
        c = self.config
        f, b = solve_rows(np.array([0, len(movies)], np.int64), movies, ratings, self.effective_movie_factors,
                          self.movie_bias, float(self.mu), reg=c.reg, reg_bias=c.reg_bias, weighted=c.weighted_reg,
                          reg_exponent=c.reg_exponent, solver=solver or "cholesky", cg_steps=max(c.cg_steps, self.k + 1), what="new user")
        return float(b[0]), f[0]

    # -- persistence ----------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        """The config plus metadata (dataset, data_path, rating_scale, genres, best_epoch)."""
        return {**self.config.to_dict(), **self.meta}

    def save(self, path: str | os.PathLike) -> Path:
        """Write model.npz (np.savez, no pickles) atomically; returns the path."""
        path = Path(path)
        arrays = {
            "mu": np.asarray(self.mu, np.float32),
            "user_bias": self.user_bias,
            "movie_bias": self.movie_bias,
            "user_factors": self.user_factors,
            "movie_factors": self.movie_factors,
            "genre_factors": self.genre_factors,
            "genre_indptr": self.genre_indptr,
            "genre_indices": self.genre_indices,
            "user_ids": self.user_ids,
            "movie_ids": self.movie_ids,
            "config_json": np.asarray(json.dumps(self.config_dict())),
        }
        tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ALSModel":
        """Load model.npz (allow_pickle=False); ModelError names the file and what is wrong."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in NPZ_KEYS if k not in z.files]
                if missing:
                    raise ModelError(f"{path} is not an mfrec ALS model: missing {', '.join(missing)}")
                a = {k: z[k] for k in NPZ_KEYS}
        except (OSError, ValueError) as e:
            raise ModelError(f"{path} could not be read as a model file ({e})") from None
        meta = json.loads(str(a["config_json"]))
        config = ALSConfig.from_dict(meta)
        meta = {k: v for k, v in meta.items() if k not in config.to_dict()}
        nu, nm = len(a["user_bias"]), len(a["movie_bias"])
        k = a["user_factors"].shape[1] if a["user_factors"].ndim == 2 else -1
        if (a["user_factors"].shape != (nu, k) or a["movie_factors"].shape != (nm, k)
                or a["genre_factors"].ndim != 2 or a["genre_factors"].shape[1] != k
                or len(a["user_ids"]) != nu or len(a["movie_ids"]) != nm or len(a["genre_indptr"]) not in (0, nm + 1)):
            raise ModelError(f"{path} has inconsistent array shapes")
        return cls(config, a["mu"], a["user_bias"], a["movie_bias"], a["user_factors"], a["movie_factors"],
                   a["genre_factors"], a["genre_indptr"], a["genre_indices"], a["user_ids"], a["movie_ids"], meta)

    def __repr__(self) -> str:
        return f"ALSModel({self.config.model}, k={self.k}, {self.n_users:,} users, {self.n_movies:,} movies)"


# -- the fit loop --------------------------------------------------------------------------------
def blas_threads() -> int | None:
    """BLAS threads: from threadpoolctl when importable, else from the environment; None if unknown."""
    try:
        from threadpoolctl import threadpool_info  # optional, not a dependency
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        counts = [int(p.get("num_threads", 1)) for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return max(counts)
    values = []
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.strip().isdigit():
            values.append(int(v))
    return max(values) if values else None


def check_threads(threads: int = 0) -> int:
    """Set Numba's thread count (0 = keep) and warn when BLAS x Numba threads exceed the cores."""
    import numba

    if threads:
        top = numba.config.NUMBA_NUM_THREADS
        if threads > top:
            warnings.warn(f"--threads {threads} is more than Numba's maximum {top}; using {top}", stacklevel=2)
            threads = top
        numba.set_num_threads(threads)
    nb = numba.get_num_threads()
    blas = blas_threads()
    cores = os.cpu_count() or 1
    if blas is not None and blas > 1 and nb > 1 and blas * nb > cores:
        warnings.warn(
            f"{blas} BLAS threads x {nb} Numba threads oversubscribe the {cores} cores; "
            "set OMP_NUM_THREADS=1 (and OPENBLAS_NUM_THREADS/MKL_NUM_THREADS) or lower --threads",
            ThreadOversubscriptionWarning, stacklevel=2,
        )
    return nb


def _check_finite(epoch: int, **arrays: np.ndarray) -> None:
    for name, arr in arrays.items():
        if arr.size and not np.all(np.isfinite(arr)):
            raise NonFiniteFactorsError(f"epoch {epoch}: {name} contain NaN or inf; lower the learning problem's "
                                        "difficulty by raising --reg / --reg-bias")
        if arr.size and np.abs(arr).max() > EXPLODED:
            raise NonFiniteFactorsError(f"epoch {epoch}: {name} exploded (|value| > {EXPLODED:g}); raise --reg")


def fit(dataset, config: ALSConfig, callback: Callable[[EpochResult], Any] | None = None,
        log: Callable[[str], None] | None = None) -> ALSModel:
    """Train an ALS model on ``dataset.train``; report every epoch to ``callback``.

    With a validation split and ``patience > 0`` training stops after ``patience`` epochs without a
    better validation RMSE, and the best epoch's parameters are kept; otherwise the last epoch's. Deterministic for a seed:
    the only randomness is the initial factors, drawn from ``numpy.random.default_rng(seed)``,
    and every row's solve is independent of thread scheduling.
    """
    from mfrec.kernels.als import genre_part, genre_sets, solve_genre_factors, solve_rows

    say = log or (lambda _m: None)
    config = config.validate()
    t_start = time.perf_counter()
    prev_threads = None
    import numba

    prev_threads = numba.get_num_threads()
    n_threads = check_threads(config.threads)
    try:
        nu, nm = dataset.n_users, dataset.n_movies
        k = config.k
        genre = config.model == "mf-genre"
        train, val, test = dataset.train, dataset.val, dataset.test
        if len(train) == 0:
            raise ModelError(f"dataset {dataset.name} has no training ratings")
        mu = float(np.mean(train.rating, dtype=np.float64))
        rng = np.random.default_rng(config.seed)
        P = (rng.standard_normal((nu, k)) * config.init_std).astype(np.float32)
        Q = (rng.standard_normal((nm, k)) * config.init_std).astype(np.float32)
        bu = np.zeros(nu, np.float32)
        bi = np.zeros(nm, np.float32)
        n_genres = len(dataset.genres)
        gcsr = dataset.movie_genres
        Y = np.zeros((n_genres if genre else 0, k), np.float32)
        G = np.zeros((nm, k), np.float32)  # genre part per movie
        if genre:
            sets, set_indptr, set_movies = genre_sets(gcsr.indptr, gcsr.indices)
        ucsr, mcsr = dataset.train_by_user, dataset.train_by_movie
        meta = {
            "dataset": dataset.name,
            "data_path": str(Path(dataset.path).resolve()),
            "rating_scale": [float(dataset.rating_scale[0]), float(dataset.rating_scale[1])],
            "genres": list(dataset.genres),
        }
        common = dict(reg=config.reg, reg_bias=config.reg_bias, weighted=config.weighted_reg,
                      reg_exponent=config.reg_exponent, solver=config.solver, cg_steps=config.cg_steps)
        say(f"fit {config.model}: {nu:,} users, {nm:,} movies, {len(train):,} train ratings, k={k}, "
            f"solver={config.solver}, {n_threads} threads")

        def snapshot() -> ALSModel:
            return ALSModel(config, mu, bu, bi, P, Q, Y, gcsr.indptr if genre else np.zeros(0, np.int64),
                            gcsr.indices if genre else np.zeros(0, np.int32), np.zeros(nu, np.int64),
                            np.zeros(nm, np.int64), meta)

        history: list[EpochResult] = []
        best: tuple[float, int, tuple[np.ndarray, ...]] | None = None
        epoch_seconds: list[float] = []
        eval_seconds = 0.0
        best_epoch = 0
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            Qeff = Q + G if genre else Q
            solve_rows(ucsr.indptr, ucsr.indices, ucsr.values, Qeff, bi, mu, out_factors=P, out_bias=bu,
                       what="user", **common)
            solve_rows(mcsr.indptr, mcsr.indices, mcsr.values, P, bu, mu, out_factors=Q, out_bias=bi,
                       row_shift=G if genre else None, what="movie", **common)
            if genre:
                Y = solve_genre_factors(sets, set_indptr, set_movies, n_genres,
                                        (mcsr.indptr, mcsr.indices, mcsr.values), mu, bu, bi, P, Q,
                                        reg=config.reg_genre, weighted=config.weighted_reg,
                                        reg_exponent=config.reg_exponent)
                G = genre_part(gcsr.indptr, gcsr.indices, Y)
            seconds = time.perf_counter() - t0
            epoch_seconds.append(seconds)
            _check_finite(epoch, user_factors=P, movie_factors=Q, user_biases=bu, movie_biases=bi, genre_factors=Y)

            t1 = time.perf_counter()
            current = snapshot()
            train_rmse = current.evaluate(train)["rmse"]
            val_rmse = current.evaluate(val)["rmse"] if val is not None and len(val) else None
            test_rmse = current.evaluate(test)["rmse"] if test is not None and len(test) else None
            eval_seconds += time.perf_counter() - t1

            stop = False
            if val_rmse is not None and config.patience:
                if best is None or val_rmse < best[0]:
                    best = (val_rmse, epoch, (P.copy(), Q.copy(), Y.copy(), bu.copy(), bi.copy()))
                elif epoch - best[1] >= config.patience:
                    stop = True
                best_epoch = best[1]
            else:
                best_epoch = epoch
            result = EpochResult(epoch, train_rmse, val_rmse, test_rmse, seconds, best_epoch, stop)
            history.append(result)
            say(f"epoch {epoch}: train RMSE {train_rmse:.4f}"
                + (f", val RMSE {val_rmse:.4f}" if val_rmse is not None else "")
                + (f", test RMSE {test_rmse:.4f}" if test_rmse is not None else "") + f", {seconds:.2f} s")
            if callback is not None:
                callback(result)
            if stop:
                say(f"early stop: no better validation RMSE for {config.patience} epochs; keeping epoch {best_epoch}")
                break
        if best is not None and best[1] != history[-1].epoch:
            P, Q, Y, bu, bi = best[2]
        meta.update({
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "seconds_per_epoch": float(np.mean(epoch_seconds)),
            "eval_seconds": eval_seconds,
            "train_seconds": time.perf_counter() - t_start,
            "numba_threads": n_threads,
        })
        model = ALSModel(config, mu, bu, bi, P, Q, Y, gcsr.indptr if genre else np.zeros(0, np.int64),
                         gcsr.indices if genre else np.zeros(0, np.int32), dataset.user_ids.ids,
                         dataset.movie_ids.ids, meta)
        model.history = history
        model.best_epoch = best_epoch
        return model
    finally:
        if prev_threads is not None and config.threads:
            numba.set_num_threads(prev_threads)
