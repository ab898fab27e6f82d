"""Implicit-feedback ALS (``ials``): the fit loop. The fitted model is a ``FactorModel`` of kind "ials".

Hu, Koren & Volinsky (2008) with the regularisation of Rendle, Krichene, Zhang & Koren (2021). Every
rated movie is a positive (target 1) with confidence ``c = 1 + alpha * (r / r_top) ** rating_power``
times a recency factor (``confidences``: a user's latest ratings count most, ``recency``);
every unrated movie is a zero with weight ``unobserved_weight`` (alpha0). The loss

    sum_{(u,i) rated} c_ui (1 - p_u.q_i)^2 + alpha0 sum_{(u,i) unrated} (p_u.q_i)^2
      + reg * (sum_u (n_u + alpha0 n_movies)^nu |p_u|^2 + sum_i (n_i + alpha0 n_users)^nu |q_i|^2)

is minimised by alternating exact (or CG) half-steps (``mfrec.kernels.ials``). The score of movie i
for user u is p_u.q_i: it ranks movies, it is not a rating (mu and the biases are 0 and the model has
no rating scale).

Per epoch the loop reports, when the caller passes ``validate``, validation ranking metrics, on which
it stops early (higher NDCG is better), and the training loss per rated pair when
``config.train_metrics`` is true or, when it is null (the default), when there is no ``validate``
(``mfrec.models.epoch_eval.train_metrics_on``: a pass over the ratings that validation makes
unnecessary for judging the fit); with
``refit_with_val`` it then trains again on train + validation for the chosen number of epochs, so the
saved model knows every rating before the held-out period (the per-epoch history is the validated fit's).
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
from mfrec.models.confidence import confidences, places_in_history
from mfrec.models.factor import FactorModel

STOP_ON = "val_ndcg@10"  # the validation metric early stopping follows, when ``validate`` reports it


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


class _Pairs:
    """user, movie, rating arrays of several splits together (what ``fit`` reads of ``dataset.train``)."""

    def __init__(self, splits):
        self.user = np.concatenate([np.asarray(s.user, np.int32) for s in splits])
        self.movie = np.concatenate([np.asarray(s.movie, np.int32) for s in splits])
        self.rating = np.concatenate([np.asarray(s.rating, np.float32) for s in splits])
        self.timestamp = np.concatenate([np.asarray(s.timestamp, np.int64) for s in splits])

    def __len__(self) -> int:
        return len(self.user)


class _Csr:
    def __init__(self, rows, cols, values, n_rows: int):
        order = np.lexsort((cols, rows))
        self.indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=self.indptr[1:])
        self.indices = cols[order].astype(np.int32)
        self.values = values[order]


class _WithValidation:
    """``dataset`` with its validation ratings moved into training (for the refit); no val split. ``fit``
    reads only ``train`` (with timestamps) and the sizes, names and vocabularies."""

    def __init__(self, dataset):
        for name in ("n_users", "n_movies", "rating_scale", "name", "path", "genres", "user_ids", "movie_ids"):
            setattr(self, name, getattr(dataset, name))
        self.train = _Pairs([dataset.train, dataset.val])
        self.val = None


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
        users, movies = np.asarray(train.user, np.int32), np.asarray(train.movie, np.int32)
        recent = places_in_history(users, train.timestamp, nu) if config.recency > 0 else None
        pair_conf = confidences(train.rating, top, config.alpha, config.rating_power, recent, config.recency,
                                config.recency_scale)
        # the confidences as a user CSR and a movie CSR (each entry's confidence depends on its time)
        ucsr, mcsr = _Csr(users, movies, pair_conf, nu), _Csr(movies, users, pair_conf, nm)
        uconf, mconf = ucsr.values, mcsr.values
        rng = np.random.default_rng(config.seed)
        std = config.init_std / np.sqrt(k)  # Rendle et al.: initial scale ~ 1/sqrt(k)
        P = (rng.standard_normal((nu, k)) * std).astype(np.float32)
        Q = (rng.standard_normal((nm, k)) * std).astype(np.float32)
        common = dict(reg=config.reg, alpha0=config.unobserved_weight, nu=config.reg_exponent,
                      solver=config.solver, cg_steps=config.cg_steps)
        say(f"fit ials: {nu:,} users, {nm:,} movies, {len(train):,} positives, k={k}, solver={config.solver}, "
            f"alpha={config.alpha:g}, alpha0={config.unobserved_weight:g}, reg={config.reg:g}, "
            f"nu={config.reg_exponent:g}, {n_threads} threads")
        with_loss = config.train_metrics if config.train_metrics is not None else validate is None
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
            metrics: dict[str, float] = {}
            if with_loss:
                metrics["train_loss"] = train_loss(P, Q, users, movies, pair_conf, config)
            if validate is not None:
                metrics.update(validate(P, Q))
            eval_seconds += time.perf_counter() - t1
            validated = STOP_ON in metrics and config.patience > 0
            if validated and early.update(metrics[STOP_ON], epoch):
                best = (P.copy(), Q.copy())
            best_epoch = early.epoch if validated else epoch
            stop = early.should_stop(epoch, validated)
            note = f"epoch {epoch}: " + ", ".join([f"{key} {v:.4f}" for key, v in metrics.items()] + [f"{seconds:.2f} s"])
            report = EpochReport(epoch, None, None, None, seconds, best_epoch, stop, metrics=metrics, note=note)
            history.append(report)
            emit(callback, report)
            emit(callback, Step(1, config.epochs, "train ials", " epochs"))
            if stop:
                say(f"early stop: no better {STOP_ON} for {config.patience} epochs; keeping epoch {best_epoch}")
                break
        if best is not None and best_epoch != history[-1].epoch:
            P, Q = best
        refit = validate is not None and config.refit_with_val and dataset.val is not None and len(dataset.val) > 0
        if refit:
            # the epoch count is chosen; train it again on train + validation, so that the model knows
            # every rating before the held-out period (a user's latest ones tell most about what is next)
            say(f"refit on train + validation ({len(dataset.train) + len(dataset.val):,} ratings) for {best_epoch} epochs")
            again = fit(_WithValidation(dataset), config.replace(epochs=best_epoch, patience=0, train_metrics=False), log=log)
            P, Q = again.user_factors, again.movie_factors
            epoch_seconds += [again.config["seconds_per_epoch"]] * best_epoch
        meta = {
            "dataset": dataset.name,
            "data_path": str(Path(dataset.path).resolve()),
            "rating_top": top,  # the confidence mapping's top rating (the model itself has no rating scale)
            "recency": config.recency, "recency_scale": config.recency_scale,
            "genres": list(dataset.genres),
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "refit_on_train_and_val": refit,
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
