"""``genre-embedding``: two stages.

1. Movie embeddings from movie-genre association: every (movie, genre it has) is a positive pair,
   ``negatives`` genres the movie does not have are sampled per positive; binary cross-entropy on
   the dot product of a movie embedding and a genre embedding (``genre_epochs`` epochs).
2. A user-movie rating model r̂(u, i) = μ + b_u + b_i + p_u · q_i whose movie embeddings q start
   from stage 1 (and keep training), with MSE and Adam as in ``neumf``.

The run folder also gets ``factors.npz`` (the stage-2 model as a ``FactorModel``: mu, user_bias,
movie_bias, user_factors, movie_factors) and ``genre_stage_movie_embeddings.npy``; ``mfrec.training``
draws their PCA movie maps: ``plots/movie_map.png`` (stage 2) and ``plots/genre_movie_map.png``
(stage 1).

metrics.csv has one row per epoch of each stage (``stage`` 1 or 2; stage 1 fills only the losses,
with negative epoch numbers counting up to 0 so that stage 2's epochs stay 1..epochs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mfrec.callbacks import EpochReport, Step, emit
from mfrec.errors import DataError
from mfrec.io import atomic_path
from mfrec.neural.common import Timer, batches, optimizer_step, export_factors, save_weights
from mfrec.neural.rating import fit_rating, load_rating

NAME = "genre-embedding"
STAGE1_EMBEDDINGS = "genre_stage_movie_embeddings.npy"  # stage 1's movie embeddings, mapped after training
DEFAULTS: dict[str, Any] = {
    "epochs": 15,  # stage 2 epochs
    "factors": 32,
    "lr": 0.005,
    "batch_size": 1024,
    "reg": 0.5,
    "genre_epochs": 30,  # stage 1 epochs
    "genre_lr": 0.02,
    "negatives": 4,  # sampled negative genres per positive pair
    "device": "cpu",
    "seed": 42,
    "train_metrics": None,  # training RMSE every epoch: --train-metrics; null = only without a validation split
}


class GenreAssociation(nn.Module):
    """Stage 1: P(movie has genre) = sigmoid(e_movie · e_genre + b_genre)."""

    def __init__(self, n_movies: int, n_genres: int, factors: int):
        super().__init__()
        self.movie = nn.Embedding(n_movies, factors)
        self.genre = nn.Embedding(n_genres, factors)
        self.genre_bias = nn.Embedding(n_genres, 1)
        nn.init.normal_(self.movie.weight, std=0.1)
        nn.init.normal_(self.genre.weight, std=0.1)
        nn.init.zeros_(self.genre_bias.weight)

    def forward(self, m: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return (self.movie(m) * self.genre(g)).sum(-1) + self.genre_bias(g).squeeze(-1)


class GenreMF(nn.Module):
    """Stage 2: μ + b_u + b_i + p_u · q_i, q initialised from the stage-1 movie embeddings."""

    def __init__(self, n_users: int, n_movies: int, factors: int, mean: float = 0.0):
        super().__init__()
        self.user = nn.Embedding(n_users, factors)
        self.movie = nn.Embedding(n_movies, factors)
        self.user_bias = nn.Embedding(n_users, 1)
        self.movie_bias = nn.Embedding(n_movies, 1)
        self.mu = nn.Parameter(torch.tensor(float(mean)))
        nn.init.normal_(self.user.weight, std=0.1)
        nn.init.normal_(self.movie.weight, std=0.1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.movie_bias.weight)

    def forward(self, u, m):
        return self.mu + self.user_bias(u).squeeze(-1) + self.movie_bias(m).squeeze(-1) + (self.user(u) * self.movie(m)).sum(-1)

    def penalty(self, u, m):
        return (self.user(u).pow(2).sum(1) + self.movie(m).pow(2).sum(1)).mean()

    def score_all(self, u):
        return self.mu + self.user_bias(u) + self.movie_bias.weight.T + self.user(u) @ self.movie.weight.T

    def user_factors(self):
        return self.user.weight.detach()

    def movie_factors(self):
        return self.movie.weight.detach()


def genre_pairs(dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(movie, genre) positive pairs and a movie x genre boolean incidence matrix."""
    g = dataset.movie_genres
    from mfrec.kernels.csr import rows_of

    movies = rows_of(g.indptr).astype(np.int64)
    genres = np.asarray(g.indices, np.int64)
    has = np.zeros((dataset.n_movies, max(len(dataset.genres), 1)), bool)
    has[movies, genres] = True
    return movies.astype(np.int64), genres, has


def sample_negatives(movies: np.ndarray, has: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k genres per positive movie that the movie does not have (resampled until they are not)."""
    n_genres = has.shape[1]
    m = np.repeat(movies, k)
    g = rng.integers(0, n_genres, len(m))
    bad = has[m, g]
    for _ in range(100):
        if not bad.any():
            break
        g[bad] = rng.integers(0, n_genres, int(bad.sum()))
        bad = has[m, g]
    keep = ~bad  # a movie with every genre has no negatives
    return np.stack([m[keep], g[keep]])


def fit_genres(dataset, opts, run, gen, device, callback=None) -> tuple[torch.Tensor, dict[str, Any]]:
    movies, genres, has = genre_pairs(dataset)
    if len(movies) == 0:
        raise DataError(f"dataset {dataset.name!r} has no movie genres: genre-embedding needs them")
    module = GenreAssociation(dataset.n_movies, has.shape[1], int(opts["factors"])).to(device)
    optim = torch.optim.Adam(module.parameters(), lr=float(opts["genre_lr"]))
    rng = np.random.default_rng(int(opts["seed"]))
    epochs = int(opts["genre_epochs"])
    bce = nn.BCEWithLogitsLoss()
    losses = []
    t = Timer()
    for e in range(1, epochs + 1):
        te = Timer()
        neg = sample_negatives(movies, has, int(opts["negatives"]), rng)
        m = torch.as_tensor(np.concatenate([movies, neg[0]]), device=device)
        g = torch.as_tensor(np.concatenate([genres, neg[1]]), device=device)
        y = torch.cat([torch.ones(len(movies)), torch.zeros(neg.shape[1])]).to(device)
        module.train()
        total = 0.0
        for idx in batches(len(y), int(opts["batch_size"]), gen):
            idx = idx.to(device)
            loss = bce(module(m[idx], g[idx]), y[idx])
            total += optimizer_step(optim, loss, NAME, e) * len(idx)
        losses.append(total / len(y))
        emit(callback, EpochReport(e - epochs, seconds=te(), metrics={"stage": 1, "train_loss": losses[-1]},
                                   note=f"stage 1 epoch {e}: genre BCE {losses[-1]:.4f}"))
        emit(callback, Step(1, epochs, f"{NAME} stage 1", " epochs"))
    with torch.no_grad():
        module.eval()
        pred = torch.sigmoid(module(torch.as_tensor(movies, device=device), torch.as_tensor(genres, device=device)))
        recall = float((pred > 0.5).float().mean())
    return module.movie.weight.detach().clone(), {"genre_bce_first": losses[0], "genre_bce_last": losses[-1],
                                                  "genre_positive_recall": recall, "genre_seconds": t()}


def fit(dataset, opts: dict[str, Any], config: dict[str, Any], run, device, gen, callback=None) -> dict[str, Any]:
    """Train genre-embedding into ``run`` (driven by ``mfrec.training``); returns the summary facts."""
    movie_emb, stage1 = fit_genres(dataset, opts, run, gen, device, callback)
    run.log(f"stage 1 done: BCE {stage1['genre_bce_first']:.4f} -> {stage1['genre_bce_last']:.4f}")
    mean = float(np.mean(dataset.train.rating))
    arch = {"n_users": dataset.n_users, "n_movies": dataset.n_movies, "factors": int(opts["factors"]), "mean": mean}
    module = GenreMF(**arch).to(device)
    with torch.no_grad():
        # start from the genre embeddings, scaled to the rating model's initial spread
        scale = 0.1 / max(float(movie_emb.std()), 1e-8)
        module.movie.weight.copy_(movie_emb * scale)
    facts = fit_rating(module, dataset, opts, run, gen, device, NAME, extra={"stage": 2}, callback=callback)
    save_weights(run, module, {"model": NAME, "arch": arch, "config": config, "n_users": dataset.n_users,
                               "n_movies": dataset.n_movies, "rating_scale": list(dataset.rating_scale),
                               "dataset": dataset.name, "data_path": config["data_path"],
                               "best_epoch": facts["best_epoch"], "stage1": stage1})
    export_factors(run, dataset, {"mu": np.float32(float(module.mu.item())),
                                  "user_bias": module.user_bias.weight.detach().cpu().numpy()[:, 0],
                                  "movie_bias": module.movie_bias.weight.detach().cpu().numpy()[:, 0],
                                  "user_factors": module.user_factors().cpu().numpy(),
                                  "movie_factors": module.movie_factors().cpu().numpy()})
    with atomic_path(Path(run.path) / STAGE1_EMBEDDINGS, suffix=".npy") as tmp:
        np.save(tmp, movie_emb.cpu().numpy())
    return {**facts, **stage1}


def load(folder, meta, device="cpu"):
    return load_rating(folder, meta, GenreMF(**meta["arch"]), device)
