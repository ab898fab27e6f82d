"""Implicit-feedback ALS (``ials``): the fit loop. The fitted model is a ``FactorModel`` of kind "ials".

Hu, Koren & Volinsky (2008) with the regularisation of Rendle, Krichene, Zhang & Koren (2021). Every
rated movie is a positive (target 1) with confidence ``c = 1 + alpha * (r / r_top) ** rating_power``;
every unrated movie is a zero with weight ``unobserved_weight`` (alpha0). The loss

    sum_{(u,i) rated} c_ui (1 - p_u.q_i)^2 + alpha0 sum_{(u,i) unrated} (p_u.q_i)^2
      + reg * (sum_u (n_u + alpha0 n_movies)^nu |p_u|^2 + sum_i (n_i + alpha0 n_users)^nu |q_i|^2)

is minimised by alternating exact (or CG) half-steps (``mfrec.kernels.ials``). The score of movie i
for user u is p_u.q_i: it ranks movies, it is not a rating (mu and the biases are 0 and the model has
no rating scale).

Per epoch the loop reports the training loss per rated pair and, when the caller passes
``validate``, validation ranking metrics, on which it stops early (higher NDCG is better).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.callbacks import EarlyStopping, EpochReport, Step, emit
from mfrec.errors import ModelError
from mfrec.models.als import _check_finite, check_threads
from mfrec.models.config import ALSConfig
from mfrec.models.factor import FactorModel

STOP_ON = "val_ndcg@10"  # the validation metric early stopping follows, when ``validate`` reports it


def confidences(ratings, top: float, alpha: float, power: float) -> np.ndarray:
    """The confidence of each rated pair: ``1 + alpha * (rating / top) ** power`` (float32, > 1)."""
    r = np.clip(np.asarray(ratings, np.float64) / float(top), 0.0, None)
    return (1.0 + alpha * r ** power).astype(np.float32)


def confidence_of(model: FactorModel, ratings) -> np.ndarray:
    """The confidences an ials ``model`` gives these ratings, from the settings it was trained with."""
    c = model.config
    return confidences(ratings, float(c["rating_top"]), float(c["alpha"]), float(c["rating_power"]))


def train_loss(P, Q, users, movies, conf, config: ALSConfig) -> float:
    """The implicit loss (module docstring) per rated pair, in O(nnz k + (n_users + n_movies) k^2)."""
    from mfrec.kernels.predict import predict

    a0 = config.unobserved_weight
    zu = np.zeros(len(P), np.float32)
    zm = np.zeros(len(Q), np.float32)
    s = predict(users, movies, 0.0, zu, zm, P, Q).astype(np.float64)
    c = conf.astype(np.float64)
    everything = float(np.sum((P.T.astype(np.float64) @ P) * (Q.T.astype(np.float64) @ Q)))  # sum over all pairs of s^2
    data = float(np.sum(c * (1.0 - s) ** 2 - a0 * s * s)) + a0 * everything
    nu_, nm_ = np.bincount(users, minlength=len(P)), np.bincount(movies, minlength=len(Q))
    lam_u = config.reg * (nu_ + a0 * len(Q)) ** config.reg_exponent
    lam_m = config.reg * (nm_ + a0 * len(P)) ** config.reg_exponent
    penalty = float(lam_u @ np.sum(P.astype(np.float64) ** 2, axis=1) + lam_m @ np.sum(Q.astype(np.float64) ** 2, axis=1))
    return (data + penalty) / max(len(users), 1)


def fit(dataset, config: ALSConfig, callback: Callable[[Any], Any] | None = None,
        log: Callable[[str], None] | None = None,
        validate: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None) -> FactorModel:
    """Train an ials model on ``dataset.train``; report every epoch to ``callback``.

    ``validate(user_factors, movie_factors)`` returns metrics for the epoch (e.g. ``val_ndcg@10``,
    ``val_hit@10``; ``mfrec.training`` passes one on the validation split). With it and
    ``patience > 0`` training stops after ``patience`` epochs without a better ``val_ndcg@10`` and
    keeps the best epoch's factors. Deterministic for a seed.
    """
    from mfrec.kernels.ials import gramian, solve_implicit_rows

    import numba

    say = log or (lambda _m: None)
    config = config.validate()
    if config.model != "ials":
        raise ModelError(f"mfrec.models.ials.fit trains the ials model, not {config.model!r}")
    t_start = time.perf_counter()
    prev_threads = numba.get_num_threads()
    n_threads = check_threads(config.threads)
    try:
        nu, nm, k = dataset.n_users, dataset.n_movies, config.k
        train = dataset.train
        if len(train) == 0:
            raise ModelError(f"dataset {dataset.name} has no training ratings")
        top = float(dataset.rating_scale[1])
        ucsr, mcsr = dataset.train_by_user, dataset.train_by_movie
        uconf = confidences(ucsr.values, top, config.alpha, config.rating_power)
        mconf = confidences(mcsr.values, top, config.alpha, config.rating_power)
        users, movies = np.asarray(train.user, np.int32), np.asarray(train.movie, np.int32)
        pair_conf = confidences(train.rating, top, config.alpha, config.rating_power)
        rng = np.random.default_rng(config.seed)
        std = config.init_std / np.sqrt(k)  # Rendle et al.: initial scale ~ 1/sqrt(k)
        P = (rng.standard_normal((nu, k)) * std).astype(np.float32)
        Q = (rng.standard_normal((nm, k)) * std).astype(np.float32)
        common = dict(reg=config.reg, alpha0=config.unobserved_weight, nu=config.reg_exponent,
                      solver=config.solver, cg_steps=config.cg_steps)
        say(f"fit ials: {nu:,} users, {nm:,} movies, {len(train):,} positives, k={k}, solver={config.solver}, "
            f"alpha={config.alpha:g}, alpha0={config.unobserved_weight:g}, reg={config.reg:g}, "
            f"nu={config.reg_exponent:g}, {n_threads} threads")
        history: list[EpochReport] = []
        early = EarlyStopping(config.patience, higher_is_better=True)
        best: tuple[np.ndarray, np.ndarray] | None = None
        best_epoch = 0
        epoch_seconds: list[float] = []
        eval_seconds = 0.0
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            # movies first, then users: the users' factors are then the exact user half-step against the
            # final movie factors, so folding a training user's history back in reproduces them
            solve_implicit_rows(mcsr.indptr, mcsr.indices, mconf, P, gram=gramian(P, config.unobserved_weight),
                                out_factors=Q, what="movie", **common)
            solve_implicit_rows(ucsr.indptr, ucsr.indices, uconf, Q, gram=gramian(Q, config.unobserved_weight),
                                out_factors=P, what="user", **common)
            seconds = time.perf_counter() - t0
            epoch_seconds.append(seconds)
            _check_finite(epoch, user_factors=P, movie_factors=Q)
            t1 = time.perf_counter()
            metrics: dict[str, float] = {"train_loss": train_loss(P, Q, users, movies, pair_conf, config)}
            if validate is not None:
                metrics.update(validate(P, Q))
            eval_seconds += time.perf_counter() - t1
            validated = STOP_ON in metrics and config.patience > 0
            if validated and early.update(metrics[STOP_ON], epoch):
                best = (P.copy(), Q.copy())
            best_epoch = early.epoch if validated else epoch
            stop = early.should_stop(epoch, validated)
            note = f"epoch {epoch}: " + ", ".join(f"{key} {v:.4f}" for key, v in metrics.items()) + f", {seconds:.2f} s"
            report = EpochReport(epoch, None, None, None, seconds, best_epoch, stop, metrics=metrics, note=note)
            history.append(report)
            emit(callback, report)
            emit(callback, Step(1, config.epochs, "train ials", " epochs"))
            if stop:
                say(f"early stop: no better {STOP_ON} for {config.patience} epochs; keeping epoch {best_epoch}")
                break
        if best is not None and best_epoch != history[-1].epoch:
            P, Q = best
        meta = {
            "dataset": dataset.name,
            "data_path": str(Path(dataset.path).resolve()),
            "rating_top": top,  # the confidence mapping's top rating (the model itself has no rating scale)
            "genres": list(dataset.genres),
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "seconds_per_epoch": float(np.mean(epoch_seconds)),
            "eval_seconds": eval_seconds,
            "train_seconds": time.perf_counter() - t_start,
            "numba_threads": n_threads,
        }
        model = FactorModel(0.0, np.zeros(nu), np.zeros(nm), P, Q, None, None, None, dataset.user_ids.ids,
                            dataset.movie_ids.ids, config={**config.to_dict(), **meta})
        model.history = history
        return model
    finally:
        if config.threads:
            numba.set_num_threads(prev_threads)
