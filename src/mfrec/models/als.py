"""ALS models (bias, mf, mf-genre): the fit loop. The fitted model is a ``mfrec.models.factor.FactorModel``.

Prediction: r(u, i) = mu + b_u + b_i + p_u . (q_i + |G_i|^-1/2 sum_{g in G_i} y_g).

One epoch: users' [b_u, p_u] against the movies' effective factors; movies' [b_i, q_i] against the
user factors with the genre part moved into the offset; then (mf-genre) the genre factors y as one
joint least-squares problem. The bias model is the same with k = 0.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.callbacks import EarlyStopping, EpochReport, Step, emit
from mfrec.errors import ModelError
from mfrec.models.config import ALSConfig
from mfrec.models.epoch_eval import EpochState, Evaluation, RatingEvaluation, train_rmse
from mfrec.models.factor import PRIOR_MAX_USERS, RATING_MAP_MAX_RATINGS, FactorModel, FoldInSettings, fit_rating_map, population_prior

EXPLODED = 1e6  # |factor| above this means the fit diverged


class NonFiniteFactorsError(ModelError):
    """Training produced NaN, inf or exploding factors or biases."""


class ThreadOversubscriptionWarning(RuntimeWarning):
    """BLAS threads x Numba threads exceed the cores: both pools fight for the CPU."""


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


RMSE_FIELDS = ("train_rmse", "val_rmse", "test_rmse")  # EpochReport's own fields; other metrics go to .metrics


def report_epoch(epoch: int, metrics: dict[str, Any], seconds: float, config: ALSConfig, early: EarlyStopping, callback,
                 say: Callable[[str], None], label: str) -> tuple[EpochReport, bool]:
    """Early stopping on validation RMSE (without it, or with patience 0, the last epoch is kept) and
    the epoch's report of the evaluation callback's ``metrics``, sent to ``callback`` with a ``Step``;
    returns (report, whether the epoch is a new best)."""
    val_rmse = metrics.get("val_rmse")
    validated = val_rmse is not None and config.patience > 0
    improved = bool(validated and early.update(val_rmse, epoch))
    best_epoch = early.epoch if validated else epoch
    stop = early.should_stop(epoch, validated)
    shown = [f"{name.replace('_rmse', '')} RMSE {v:.4f}" if name in RMSE_FIELDS else f"{name} {v:.4f}"
             for name, v in metrics.items() if v is not None]
    note = f"epoch {epoch}: " + ", ".join(shown + [f"{seconds:.2f} s"])
    extra = {k: v for k, v in metrics.items() if k not in RMSE_FIELDS}
    result = EpochReport(epoch, metrics.get("train_rmse"), val_rmse, metrics.get("test_rmse"), seconds, best_epoch, stop,
                         metrics=extra, note=note)
    emit(callback, result)
    emit(callback, Step(1, config.epochs, label, " epochs"))
    if stop:
        say(f"early stop: no better validation RMSE for {config.patience} epochs; keeping epoch {best_epoch}")
    return result, improved


def fit(dataset, config: ALSConfig, callback: Callable[[Any], Any] | None = None,
        log: Callable[[str], None] | None = None, evaluate: Evaluation | None = None) -> FactorModel:
    """Train an ALS model on ``dataset.train``; report every epoch to ``callback``
    (``mfrec.callbacks.EpochReport``, then a ``Step`` of one epoch).

    ``evaluate(EpochState)`` measures each epoch (``mfrec.models.epoch_eval``); the default,
    ``RatingEvaluation.for_run(dataset, config)``, is validation RMSE (training RMSE too with
    ``config.train_metrics``, or alone without a validation split). The fit never reads the test split.
    When the evaluation reports ``val_rmse`` and ``patience > 0`` training stops after ``patience``
    epochs without a better validation RMSE, and the best epoch's parameters are kept; otherwise the
    last epoch's. Deterministic for a seed:
    the only randomness is the initial factors, drawn from ``numpy.random.default_rng(seed)``,
    and every row's solve is independent of thread scheduling.
    """
    from mfrec.kernels.als import check_ratings_csr, genre_part, solve_rows
    from mfrec.kernels.genre import genre_index, solve_genre_factors
    from mfrec.kernels.predict import predict

    if config.model == "ials":
        raise ModelError("the ials model has its own fit loop: mfrec.models.ials.fit (or mfrec.train)")
    say = log or (lambda _m: None)
    config = config.validate()
    t_start = time.perf_counter()
    import numba

    prev_threads = numba.get_num_threads()
    n_threads = check_threads(config.threads)
    try:
        nu, nm = dataset.n_users, dataset.n_movies
        k = config.k
        genre = config.model == "mf-genre"
        train, val = dataset.train, dataset.val  # the test split is for after the fit (mfrec.training)
        evaluate = RatingEvaluation.for_run(dataset, config) if evaluate is None else evaluate
        if len(train) == 0:
            raise ModelError(f"dataset {dataset.name} has no training ratings")
        # the training ratings are read through the CSRs only (the split's own arrays stay untouched)
        mu = float(np.mean(dataset.train_by_user.values, dtype=np.float64))
        rng = np.random.default_rng(config.seed)
        P = (rng.standard_normal((nu, k)) * config.init_std).astype(np.float32)
        Q = (rng.standard_normal((nm, k)) * config.init_std).astype(np.float32)
        bu = np.zeros(nu, np.float32)
        bi = np.zeros(nm, np.float32)
        n_genres = len(dataset.genres)
        gcsr = dataset.movie_genres
        Y = np.zeros((n_genres if genre else 0, k), np.float32)
        G = np.zeros((nm, k), np.float32)  # genre part per movie
        ucsr, mcsr = dataset.train_by_user, dataset.train_by_movie
        check_ratings_csr(ucsr.indptr, ucsr.indices, nm)  # once per fit; the half-steps skip it
        check_ratings_csr(mcsr.indptr, mcsr.indices, nu)
        if genre:  # the (user, genre set) pairs, once per fit
            gindex = genre_index(gcsr.indptr, gcsr.indices, n_genres, (ucsr.indptr, ucsr.indices, ucsr.values))
        # with cg the movie half-step also hands the genre step its residual sums (no extra pass)
        R = np.empty((nm, k), np.float32) if genre and config.solver == "cg" else None
        meta = {
            "dataset": dataset.name,
            "data_path": str(Path(dataset.path).resolve()),
            "rating_scale": [float(dataset.rating_scale[0]), float(dataset.rating_scale[1])],
            "genres": list(dataset.genres),
        }
        scale = (meta["rating_scale"][0], meta["rating_scale"][1])
        common = dict(reg=config.reg, reg_bias=config.reg_bias, weighted=config.weighted_reg,
                      reg_exponent=config.reg_exponent, solver=config.solver, cg_steps=config.cg_steps)
        say(f"fit {config.model}: {nu:,} users, {nm:,} movies, {len(train):,} train ratings, k={k}, "
            f"solver={config.solver}, {n_threads} threads")

        history: list[EpochReport] = []
        early = EarlyStopping(config.patience)
        best_arrays: tuple[np.ndarray, ...] | None = None
        epoch_seconds: list[float] = []
        eval_seconds = 0.0
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            Qeff = Q + G if genre else Q
            solve_rows(ucsr.indptr, ucsr.indices, ucsr.values, Qeff, bi, mu, out_factors=P, out_bias=bu,
                       what="user", validate=False, **common)
            solve_rows(mcsr.indptr, mcsr.indices, mcsr.values, P, bu, mu, out_factors=Q, out_bias=bi,
                       row_shift=G if genre else None, what="movie", validate=False, out_residual=R, **common)
            if genre:
                Y = solve_genre_factors(gindex, (ucsr.indptr, ucsr.indices, ucsr.values), mu, bu, bi, P, Q,
                                        reg=config.reg_genre, weighted=config.weighted_reg,
                                        reg_exponent=config.reg_exponent, y0=Y, movie_residual=R,
                                        max_iter=config.cg_steps if config.solver == "cg" else None)
                G = genre_part(gcsr.indptr, gcsr.indices, Y)
            seconds = time.perf_counter() - t0
            epoch_seconds.append(seconds)
            _check_finite(epoch, user_factors=P, movie_factors=Q, user_biases=bu, movie_biases=bi, genre_factors=Y)

            t1 = time.perf_counter()
            effective = Q + G if genre else Q  # the movie side as the model scores it, built once per epoch
            metrics = evaluate(EpochState(epoch, mu, bu, bi, P, effective, scale))
            eval_seconds += time.perf_counter() - t1

            result, improved = report_epoch(epoch, metrics, seconds, config, early, callback, say, f"train {config.model}")
            if improved:
                best_arrays = (P.copy(), Q.copy(), Y.copy(), bu.copy(), bi.copy())
            history.append(result)
            best_epoch = result.best_epoch
            if result.stop:
                break
        if best_arrays is not None and best_epoch != history[-1].epoch:
            P, Q, Y, bu, bi = best_arrays
        meta.update({
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "seconds_per_epoch": float(np.mean(epoch_seconds)),
            "eval_seconds": eval_seconds,
            "train_seconds": time.perf_counter() - t_start,
            "numba_threads": n_threads,
        })
        # the fold-in's population prior (calibrated made-up users; mfrec.models.factor), noise = kept epoch's train RMSE
        settings = FoldInSettings(config.reg, config.reg_bias, config.weighted_reg, config.reg_exponent)
        effective = Q + genre_part(gcsr.indptr, gcsr.indices, Y) if genre else Q  # of the kept epoch
        kept_rmse = next(h.train_rmse for h in history if h.epoch == best_epoch)
        if kept_rmse is None:  # not measured per epoch: one pass now, on the kept model
            kept_rmse = train_rmse(EpochState(best_epoch, mu, bu, bi, P, effective, scale), ucsr)
        meta["train_rmse"] = kept_rmse
        prior = (None, None)
        if kept_rmse is not None and kept_rmse > 0:  # a perfect fit leaves no noise to weigh a prior by
            prior = population_prior(ucsr.indptr, ucsr.indices, effective, bu, P, settings, kept_rmse ** 2)
            meta["fold_in_prior"] = {"noise_variance": kept_rmse ** 2, "users": min(nu, PRIOR_MAX_USERS)}
        else:
            say("no fold-in prior: the training ratings are fitted exactly; made-up users get the plain half-step")
        # the map from score to a predicted rating inside the scale, on ratings the kept model did not fit
        held = val if val is not None and len(val) else train
        if len(held) >= 2 and float(np.ptp(held.rating)) > 0:
            # two parameters need no more than RATING_MAP_MAX_RATINGS pairs: at 25M training ratings the
            # fit on all of them took ~50 s and ~5 GB (scipy's least squares holds the 25M x 2 Jacobian)
            take = np.unique(np.linspace(0, len(held) - 1, min(len(held), RATING_MAP_MAX_RATINGS)).round()
                             .astype(np.int64))
            if held is train:  # from the by-user CSR training just read, not the memory-mapped rating columns
                users = np.searchsorted(ucsr.indptr, take, side="right") - 1
                movies, ratings = np.asarray(ucsr.indices)[take], np.asarray(ucsr.values)[take]
            else:
                users, movies, ratings = (np.asarray(held.user)[take], np.asarray(held.movie)[take],
                                          np.asarray(held.rating)[take])
            scores = predict(users, movies, mu, bu, bi, P, effective, None)
            meta["rating_map"] = {**fit_rating_map(scores, ratings, scale),
                                  "fitted_on": "val" if held is val else "train"}
        model = FactorModel(mu, bu, bi, P, Q, Y, gcsr.indptr if genre else None, gcsr.indices if genre else None,
                            dataset.user_ids.ids, dataset.movie_ids.ids, config={**config.to_dict(), **meta},
                            prior_mean=prior[0], prior_precision=prior[1])
        model.history = history
        return model
    finally:
        if config.threads:
            numba.set_num_threads(prev_threads)
