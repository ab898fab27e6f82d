"""``neumf``: user and movie embeddings, their element-wise product, a linear output; MSE and Adam.

r̂(u, i) = w · (p_u ⊙ q_i) + b, with b initialised to the training mean. The product form means a
trained NeuMF is also a plain factor model: ``user_factors`` = p_u ⊙ w, ``movie_factors`` = q_i.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mfrec.neural.common import export_factors, save_weights
from mfrec.neural.rating import fit_rating, load_rating

NAME = "neumf"
DEFAULTS: dict[str, Any] = {
    "epochs": 15,
    "factors": 50,  # embedding size
    "lr": 0.005,
    "batch_size": 1024,
    "reg": 0.5,  # L2 on the batch's embeddings, added to the MSE
    "init_std": 0.1,
    "device": "cpu",
    "seed": 42,
    "train_metrics": None,  # training RMSE every epoch: --train-metrics; null = only without a validation split
}


class NeuMF(nn.Module):
    def __init__(self, n_users: int, n_movies: int, factors: int, mean: float = 0.0, init_std: float = 0.1):
        super().__init__()
        self.user = nn.Embedding(n_users, factors)
        self.movie = nn.Embedding(n_movies, factors)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.movie.weight, std=init_std)
        self.out = nn.Linear(factors, 1)
        nn.init.constant_(self.out.weight, 1.0)
        nn.init.constant_(self.out.bias, mean)

    def forward(self, u: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self.out(self.user(u) * self.movie(m)).squeeze(-1)

    def penalty(self, u, m) -> torch.Tensor:
        return (self.user(u).pow(2).sum(1) + self.movie(m).pow(2).sum(1)).mean()

    def score_all(self, u: torch.Tensor) -> torch.Tensor:
        return (self.user(u) * self.out.weight[0]) @ self.movie.weight.T + self.out.bias

    def user_factors(self) -> torch.Tensor:
        return (self.user.weight * self.out.weight[0]).detach()

    def movie_factors(self) -> torch.Tensor:
        return self.movie.weight.detach()


def fit(dataset, opts: dict[str, Any], config: dict[str, Any], run, device, gen, callback=None) -> dict[str, Any]:
    """Train neumf into ``run`` (driven by ``mfrec.training``); returns the summary facts."""
    mean = float(np.mean(dataset.train.rating))
    arch = {"n_users": dataset.n_users, "n_movies": dataset.n_movies, "factors": int(opts["factors"]),
            "mean": mean, "init_std": float(opts["init_std"])}
    module = NeuMF(**arch).to(device)
    run.log(f"{NAME}: {sum(p.numel() for p in module.parameters()):,} parameters on {device}")
    facts = fit_rating(module, dataset, opts, run, gen, device, NAME, callback=callback)
    save_weights(run, module, {"model": NAME, "arch": arch, "config": config, "n_users": dataset.n_users,
                               "n_movies": dataset.n_movies, "rating_scale": list(dataset.rating_scale),
                               "dataset": dataset.name, "data_path": config["data_path"],
                               "best_epoch": facts["best_epoch"]})
    export_factors(run, dataset, {"mu": np.float32(float(module.out.bias.item())),
                                  "user_bias": np.zeros(dataset.n_users, np.float32),
                                  "movie_bias": np.zeros(dataset.n_movies, np.float32),
                                  "user_factors": module.user_factors().cpu().numpy(),
                                  "movie_factors": module.movie_factors().cpu().numpy()})
    return facts


def load(folder, meta, device="cpu"):
    return load_rating(folder, meta, NeuMF(**meta["arch"]), device)
