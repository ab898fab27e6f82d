"""The training loop and the loaded-model wrapper shared by the rating-prediction models.

``fit_rating`` trains any module with ``forward(user, movie) -> rating`` on the train split with MSE
and Adam, reports every epoch to ``callback``, writes one checkpoint per epoch, and keeps the epoch
with the lowest validation RMSE (training loss when there is no validation split). Each epoch is
evaluated as the ALS models' are (``mfrec.models.epoch_eval``): validation, training RMSE only with
``train_metrics`` (or without a validation split), never the test split, which is measured once on
the kept weights. Predictions are clipped to the dataset's rating scale when evaluated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mfrec.callbacks import Step, emit
from mfrec.neural.common import (
    BestEpoch, Timer, batches, end_epoch, epoch_note, fmt, optimizer_step, load_state, save_checkpoint, split_tensors,
    train_metrics_on,
)


@torch.no_grad()
def predict_tensor(module, users, movies, lo, hi, batch_size=1 << 16):
    module.eval()
    out = torch.empty(len(users), device=users.device)
    for a in range(0, len(users), batch_size):
        out[a:a + batch_size] = module(users[a:a + batch_size], movies[a:a + batch_size])
    return out.clamp_(lo, hi)


def rmse_mae(module, data, lo, hi) -> tuple[float | None, float | None]:
    """(rmse, mae) of the clipped predictions on a split's tensors; Nones without data."""
    if data is None:
        return None, None
    u, m, r = data
    pred = predict_tensor(module, u, m, lo, hi)
    err = pred - r
    return math.sqrt(float((err * err).mean())), float(err.abs().mean())


def fit_rating(module: torch.nn.Module, dataset, opts: dict[str, Any], run, generator: torch.Generator,
               device: torch.device, model_name: str, extra: dict[str, Any] | None = None,
               callback=None) -> dict[str, Any]:
    """Train ``module`` on ratings; returns the facts for summary.json (and leaves the best weights loaded).

    Every epoch is evaluated on the validation split, and on the training ratings only when
    ``train_metrics_on(opts, dataset)``; the kept epoch is the best by validation RMSE, or without
    a validation split by training loss (so measuring never changes which weights are kept). The
    test split is read once, after the last epoch, on the kept weights."""
    lo, hi = dataset.rating_scale
    train = split_tensors(dataset.train, device)
    val = split_tensors(dataset.val, device)
    with_train = train_metrics_on(opts, dataset)
    optim = torch.optim.Adam(module.parameters(), lr=opts["lr"])
    reg = float(opts.get("reg", 0.0))
    n = len(train[0])
    epochs, bs = int(opts["epochs"]), int(opts["batch_size"])
    best = BestEpoch(opts.get("patience"))
    timer = Timer()
    n_batches = math.ceil(n / bs)
    measured: dict[int, tuple[float | None, float | None]] = {}
    for epoch in range(1, epochs + 1):
        t_ep = Timer()
        module.train()
        total = 0.0
        for idx in batches(n, bs, generator):
            idx = idx.to(device)
            u, m, r = train[0][idx], train[1][idx], train[2][idx]
            pred = module(u, m)
            loss = torch.mean((pred - r) ** 2)
            full = loss + reg * module.penalty(u, m) if reg > 0 and hasattr(module, "penalty") else loss
            total += optimizer_step(optim, loss, model_name, epoch, full) * len(idx)
            emit(callback, Step(1, epochs * n_batches, model_name, " batches"))
        train_loss = total / n
        tr = rmse_mae(module, train, lo, hi)[0] if with_train else None
        va, _ = rmse_mae(module, val, lo, hi)
        measured[epoch] = (tr, va)
        val_loss = va ** 2 if va is not None else None
        secs = t_ep()
        save_checkpoint(run, module, epoch)
        note = epoch_note(f"train_loss {train_loss:.4f}", secs, train_rmse=tr, val_rmse=va)
        if end_epoch(callback, best, module, epoch, va if va is not None else train_loss, va is not None, note,
                     tr, va, secs, train_loss=train_loss, val_loss=val_loss, **(extra or {})):
            run.log(f"stopping: no better validation RMSE for {best.patience} epochs")
            epochs = epoch
            break
    best.restore(module)
    tr, va = measured[best.epoch]
    if tr is None:  # not measured per epoch: one pass, on the kept weights, for the summary
        tr, _ = rmse_mae(module, train, lo, hi)
    te, tmae = rmse_mae(module, split_tensors(dataset.test, device), lo, hi)  # the test split, once
    seconds = timer()
    run.log(f"best epoch {best.epoch}: train_rmse {fmt(tr)} val_rmse {fmt(va)} test_rmse {fmt(te)} test_mae {fmt(tmae)}")
    return {
        "epochs_run": epochs, "best_epoch": best.epoch, "train_rmse": tr, "val_rmse": va, "test_rmse": te,
        "test_mae": tmae, "train_seconds": seconds, "seconds_per_epoch": seconds / max(epochs, 1),
    }


class RatingModel:
    """A loaded rating model: ``predict(users, movies)``, ``score_users(users)``, factor arrays."""

    kind = "rating"

    def __init__(self, module, meta: dict[str, Any], device: str = "cpu"):
        self.module = module.to(device).eval()
        self.meta = meta
        self.config = meta.get("config", {})
        self.name = meta["model"]
        self.device = torch.device(device)
        self.n_users = int(meta["n_users"])
        self.n_movies = int(meta["n_movies"])
        self.rating_scale = tuple(meta["rating_scale"])

    @torch.no_grad()
    def predict(self, users, movies) -> np.ndarray:
        u = torch.as_tensor(np.asarray(users, np.int64), device=self.device)
        m = torch.as_tensor(np.asarray(movies, np.int64), device=self.device)
        return predict_tensor(self.module, u, m, *self.rating_scale).cpu().numpy()

    @torch.no_grad()
    def score_users(self, users) -> np.ndarray:
        """Unclipped predicted ratings of every movie (clipping would tie the top of the list)."""
        u = torch.as_tensor(np.asarray(users, np.int64), device=self.device)
        return self.module.score_all(u).cpu().numpy().astype(np.float32)

    @property
    def movie_factors(self) -> np.ndarray:
        return self.module.movie_factors().cpu().numpy()

    @property
    def user_factors(self) -> np.ndarray:
        return self.module.user_factors().cpu().numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.n_users} users, {self.n_movies} movies)"


def load_rating(folder, meta, module, device) -> RatingModel:
    module.load_state_dict(load_state(folder / meta["weights"], device))
    return RatingModel(module, meta, device)
