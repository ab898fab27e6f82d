"""``attention``: rating prediction with context, for a pair of users.

Context of user u at history position p (u's p-th training rating in time order): a window of
``window`` (4) consecutive ratings on u's sliding-window grid (starts 0, ``step``, 2·``step``, ...;
step 2) — the latest window that ends before p; for p < 4 the first window with the positions >= p
masked out, so a target is never in its own context. Each window token = movie embedding + genre
projection (+ IMDB runtime and director when the dataset was prepared with ``--imdb``) + an
embedding of the rating given. A user token (user embedding + gender, age group and occupation
embeddings where the dataset has them) leads the window and is never masked.

Encoder: multi-head self-attention (``heads``) with a residual and layer norm, then a feed-forward
block with a residual and layer norm; the user token's output is the user's state.

Pair head: [h_a + h_b, h_a ⊙ h_b, target movie features] -> dense layers with batch norm, LeakyReLU
and dropout -> a scalar, plus μ + (b_a + b_b)/2 + b_movie. Symmetric in the two users.

Training: for every training rating (a, t) per epoch, a partner b is drawn among the users who rated
t in training (b = a with probability ``self_pair``, and when a is t's only rater); the target is the
pair's mean rating of t, each user in the context before their own rating of t. MSE, Adam. Each
epoch is evaluated on the validation split (training RMSE on a fixed sample of 20,000 self-pairs
only with ``train_metrics``, or without a validation split); the test split once, on the kept weights.

A single user's rating is the pair (u, u): test RMSE/MAE predict each test rating from the user's
latest training window, and ``score_users`` ranks with it; ``score_pairs(a, b)`` scores every movie
for two users together (``recommend_pair`` returns the top ones).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mfrec.callbacks import Step, emit
from mfrec.errors import MfrecError, ModelError
from mfrec.neural.common import (
    BestEpoch, Timer, end_epoch, epoch_note, optimizer_step, load_state, save_checkpoint, save_weights,
    train_metrics_on,
)

NAME = "attention"
DEFAULTS: dict[str, Any] = {
    "epochs": 6,
    "factors": 32,  # token / state size
    "heads": 4,
    "hidden": 64,  # first dense layer of the pair head
    "dropout": 0.2,
    "window": 4,
    "step": 2,
    "self_pair": 0.5,  # share of training pairs that are one user with themself
    "lr": 0.005,
    "batch_size": 2048,
    "weight_decay": 1e-5,
    "device": "cpu",
    "seed": 42,
    "train_metrics": None,  # training RMSE every epoch: --train-metrics; null = only without a validation split
}
AGE_GROUPS = np.array([1, 18, 25, 35, 45, 50, 56])  # ML-1M's age groups; ml-100k ages are bucketed into them
N_RATING_TOKENS = 11  # 0 = none/padding, round(2 * rating) for 0.5..5


# -- features ------------------------------------------------------------------------------------
def _vocab_index(values, unknown_none=True) -> tuple[np.ndarray, int]:
    """Category codes 1..n (0 = unknown/missing) and the vocabulary size n + 1."""
    vals = ["" if v is None else str(v) for v in values]
    vocab = {v: i + 1 for i, v in enumerate(sorted(set(vals) - {""}))}
    return np.array([vocab.get(v, 0) for v in vals], np.int64), len(vocab) + 1


def user_features(dataset) -> tuple[np.ndarray, list[int], list[str]]:
    """(n_users, 3) codes of gender, age group, occupation (0 = unknown) and the vocabulary sizes."""
    users = dataset.users.sort("user")
    n = dataset.n_users
    codes = np.zeros((n, 3), np.int64)
    sizes = [1, 1, 1]
    used = []
    for j, col in enumerate(("gender", "age", "occupation")):
        if col not in users.columns:
            continue
        vals = users[col].to_list()
        if col == "age":
            ages = np.array([np.nan if v is None else float(v) for v in vals])
            grp = np.searchsorted(AGE_GROUPS, np.nan_to_num(ages, nan=-1), side="right")  # 0 = unknown/below 1
            codes[:, j] = np.where(np.isnan(ages), 0, grp)
            sizes[j] = len(AGE_GROUPS) + 1
        else:
            codes[:, j], sizes[j] = _vocab_index(vals)
        used.append(col)
    return codes, sizes, used


def movie_features(dataset, max_directors: int = 2000) -> dict[str, Any]:
    """Genre multi-hot, and IMDB runtime (z-scored, with a known flag) and director codes when present."""
    n, ng = dataset.n_movies, max(len(dataset.genres), 1)
    g = dataset.movie_genres
    genres = np.zeros((n + 1, ng), np.float32)
    from mfrec.kernels.csr import rows_of

    rows = rows_of(g.indptr)
    genres[rows, np.asarray(g.indices)] = 1.0
    out: dict[str, Any] = {"genres": genres, "imdb": False}
    f = Path(dataset.path) / "imdb.parquet"
    if f.is_file():
        import polars as pl

        t = pl.read_parquet(f).sort("movie")
        movie = t["movie"].to_numpy()
        runtime = np.zeros((n + 1, 2), np.float32)
        rt = t["runtime"].cast(pl.Float64).to_numpy()
        known = ~np.isnan(rt)
        if known.any():
            mu, sd = float(np.nanmean(rt)), float(np.nanstd(rt)) or 1.0
            runtime[movie[known], 0] = (rt[known] - mu) / sd
            runtime[movie[known], 1] = 1.0
        first = [d[0] if d is not None and len(d) else None for d in t["directors"].to_list()]
        counts: dict[str, int] = {}
        for d in first:
            if d:
                counts[d] = counts.get(d, 0) + 1
        keep = sorted((d for d, c in counts.items() if c >= 2), key=lambda d: (-counts[d], d))[:max_directors]
        vocab = {d: i + 1 for i, d in enumerate(keep)}
        director = np.zeros(n + 1, np.int64)
        director[movie] = [vocab.get(d, 0) if d else 0 for d in first]
        out.update({"imdb": True, "runtime": runtime, "director": director, "n_directors": len(vocab) + 1})
    return out


# -- the module ----------------------------------------------------------------------------------
class PairAttention(nn.Module):
    def __init__(self, n_users: int, n_movies: int, n_genres: int, user_vocab: list[int], factors: int = 32,
                 heads: int = 4, hidden: int = 64, dropout: float = 0.2, mean: float = 3.5, imdb: bool = False,
                 n_directors: int = 1):
        super().__init__()
        d = factors
        self.n_movies = n_movies
        self.imdb = imdb
        self.movie_emb = nn.Embedding(n_movies + 1, d, padding_idx=n_movies)
        self.genre_proj = nn.Linear(n_genres, d, bias=False)
        self.rating_emb = nn.Embedding(N_RATING_TOKENS, d, padding_idx=0)
        self.register_buffer("genres", torch.zeros(n_movies + 1, n_genres))
        if imdb:
            self.runtime_proj = nn.Linear(2, d)
            self.director_emb = nn.Embedding(n_directors, d, padding_idx=0)
            self.register_buffer("runtime", torch.zeros(n_movies + 1, 2))
            self.register_buffer("director", torch.zeros(n_movies + 1, dtype=torch.long))
        self.user_emb = nn.Embedding(n_users, d)
        self.feat_emb = nn.ModuleList([nn.Embedding(max(s, 1), d) for s in user_vocab])
        self.register_buffer("user_feats", torch.zeros(n_users, len(user_vocab), dtype=torch.long))
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.LeakyReLU(0.1), nn.Linear(2 * d, d))
        self.norm2 = nn.LayerNorm(d)
        self.head = nn.Sequential(
            nn.Linear(3 * d, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(0.1), nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2), nn.BatchNorm1d(hidden // 2), nn.LeakyReLU(0.1), nn.Dropout(dropout),
            nn.Linear(hidden // 2, 1),
        )
        self.user_bias = nn.Embedding(n_users, 1)
        self.movie_bias = nn.Embedding(n_movies + 1, 1)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.movie_bias.weight)
        for e in (self.movie_emb, self.user_emb):
            nn.init.normal_(e.weight, std=0.1)
        self.mu = nn.Parameter(torch.tensor(float(mean)))

    def set_features(self, feats: dict[str, Any], user_codes: np.ndarray) -> None:
        with torch.no_grad():
            self.genres.copy_(torch.as_tensor(feats["genres"]))
            if self.imdb:
                self.runtime.copy_(torch.as_tensor(feats["runtime"]))
                self.director.copy_(torch.as_tensor(feats["director"]))
            self.user_feats.copy_(torch.as_tensor(user_codes))

    def movie_vec(self, m: torch.Tensor) -> torch.Tensor:
        v = self.movie_emb(m) + self.genre_proj(self.genres[m])
        if self.imdb:
            v = v + self.runtime_proj(self.runtime[m]) + self.director_emb(self.director[m])
        return v

    def encode(self, u: torch.Tensor, win_movies: torch.Tensor, win_ratings: torch.Tensor) -> torch.Tensor:
        """(B,) users and (B, W) windows (padding movie = n_movies) -> (B, d) user states."""
        tok0 = self.user_emb(u)
        for j, emb in enumerate(self.feat_emb):
            tok0 = tok0 + emb(self.user_feats[u, j])
        toks = self.movie_vec(win_movies) + self.rating_emb(win_ratings)
        x = torch.cat([tok0[:, None, :], toks], 1)
        pad = torch.cat([torch.zeros_like(win_movies[:, :1], dtype=torch.bool), win_movies == self.n_movies], 1)
        a, _ = self.attn(x, x, x, key_padding_mask=pad, need_weights=False)
        x = self.norm1(x + a)
        x = self.norm2(x + self.ff(x))
        return x[:, 0]

    def pair_head(self, ha, hb, ua, ub, target) -> torch.Tensor:
        z = torch.cat([ha + hb, ha * hb, self.movie_vec(target)], 1)
        bias = self.mu + 0.5 * (self.user_bias(ua) + self.user_bias(ub)).squeeze(-1) + self.movie_bias(target).squeeze(-1)
        return self.head(z).squeeze(-1) + bias

    def forward(self, ua, wa_m, wa_r, ub, wb_m, wb_r, target) -> torch.Tensor:
        return self.pair_head(self.encode(ua, wa_m, wa_r), self.encode(ub, wb_m, wb_r), ua, ub, target)


# -- windows -------------------------------------------------------------------------------------
class Histories:
    """Training histories as flat tensors (by user, time order) and window lookup."""

    def __init__(self, dataset, device, window: int, step: int):
        tr = dataset.train
        self.n_movies = dataset.n_movies
        self.indptr = torch.as_tensor(np.array(dataset.train_by_user.indptr, np.int64), device=device)
        self.movie = torch.as_tensor(np.array(tr.movie, np.int64), device=device)
        self.token = torch.as_tensor(np.clip(np.rint(np.array(tr.rating, np.float64) * 2), 1, 10).astype(np.int64), device=device)
        self.lengths = self.indptr[1:] - self.indptr[:-1]
        self.window, self.step = window, step

    def windows(self, u: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The window of user u before history position p: (B, W) movies (padded) and rating tokens."""
        w, s = self.window, self.step
        start = torch.where(p >= w, torch.div(p - w, s, rounding_mode="floor") * s, torch.zeros_like(p))
        pos = start[:, None] + torch.arange(w, device=p.device)[None, :]
        valid = pos < torch.minimum(p, self.lengths[u])[:, None]
        idx = (self.indptr[u][:, None] + pos).clamp(max=max(len(self.movie) - 1, 0))
        movies = torch.where(valid, self.movie[idx], torch.full_like(idx, self.n_movies))
        tokens = torch.where(valid, self.token[idx], torch.zeros_like(idx))
        return movies, tokens

    def latest(self, u: torch.Tensor):
        """Each user's latest window on the grid (the context for predictions after training)."""
        return self.windows(u, self.lengths[u])


class PairModel:
    """A loaded (or just trained) attention model."""

    kind = "pair-rating"

    def __init__(self, module: PairAttention, histories: Histories | None, meta: dict[str, Any], device="cpu"):
        self.module = module.to(device).eval()
        self.meta = meta
        self.config = meta.get("config", {})
        self.name = NAME
        self.device = torch.device(device)
        self.n_movies = module.n_movies
        self.rating_scale = tuple(meta.get("rating_scale", (1.0, 5.0)))
        self._hist = histories

    @property
    def histories(self) -> Histories:
        if self._hist is None:
            from mfrec.neural.common import dataset_of

            dataset, a = dataset_of(self.meta), self.meta["arch"]
            if (dataset.n_users, dataset.n_movies) != (a["n_users"], a["n_movies"]):
                raise ModelError(f"{NAME}: dataset {dataset.name} has {dataset.n_users:,} users x {dataset.n_movies:,} "
                                 f"movies but the model was trained on {a['n_users']:,} x {a['n_movies']:,}: "
                                 "was the data prepared again since?")
            self._hist = Histories(dataset, self.device, int(self.config.get("window", 4)),
                                   int(self.config.get("step", 2)))
        return self._hist

    def _t(self, x) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, np.int64), device=self.device)

    @torch.no_grad()
    def predict_pairs(self, users_a, users_b, movies, batch_size=1 << 14) -> np.ndarray:
        """Predicted mean rating of each pair (a, b) for movie m, from each user's latest window."""
        self.module.eval()
        ua, ub, m = self._t(users_a), self._t(users_b), self._t(movies)
        out = torch.empty(len(m), device=self.device)
        h = self.histories
        for a in range(0, len(m), batch_size):
            sl = slice(a, a + batch_size)
            wa, ra = h.latest(ua[sl])
            wb, rb = h.latest(ub[sl])
            out[sl] = self.module(ua[sl], wa, ra, ub[sl], wb, rb, m[sl])
        return out.clamp_(*self.rating_scale).cpu().numpy()

    def predict(self, users, movies) -> np.ndarray:
        """A single user's rating: the pair (u, u)."""
        return self.predict_pairs(users, users, movies)

    @torch.no_grad()
    def score_pairs(self, users_a, users_b, chunk: int = 32, clip: bool = False) -> np.ndarray:
        """(n, n_movies) predicted pair-mean ratings of every movie for pairs (a[i], b[i]).

        Unclipped by default, so that the ranking is not tied at the top of the rating scale.
        """
        self.module.eval()
        ua, ub = self._t(users_a), self._t(users_b)
        h = self.histories
        n_m = self.n_movies
        movies = torch.arange(n_m, device=self.device)
        out = np.empty((len(ua), n_m), np.float32)
        for a in range(0, len(ua), chunk):
            sa, sb = ua[a:a + chunk], ub[a:a + chunk]
            ha = self.module.encode(sa, *h.latest(sa))
            hb = self.module.encode(sb, *h.latest(sb))
            b = len(sa)
            s = self.module.pair_head(ha.repeat_interleave(n_m, 0), hb.repeat_interleave(n_m, 0),
                                      sa.repeat_interleave(n_m), sb.repeat_interleave(n_m), movies.repeat(b))
            if clip:
                s = s.clamp_(*self.rating_scale)
            out[a:a + b] = s.reshape(b, n_m).cpu().numpy()
        return out

    def score_users(self, users) -> np.ndarray:
        return self.score_pairs(users, users)

    def recommend_pair(self, user_a: int, user_b: int, k: int = 10, exclude_seen: bool = True) -> list[tuple[int, float]]:
        """Top-k (movie index, predicted pair-mean rating) for two users together, best first.

        Ranked on the unclipped scores, so movies above the top of the rating scale keep their order;
        only the returned ratings are clipped to the scale. Movies either user rated in training are
        left out unless ``exclude_seen`` is false.
        """
        s = self.score_pairs([user_a], [user_b])[0].astype(np.float64)
        if exclude_seen:
            h = self.histories
            for u in (user_a, user_b):
                a, b = int(h.indptr[u]), int(h.indptr[u + 1])
                s[h.movie[a:b].cpu().numpy()] = -np.inf
        top = [int(m) for m in np.argsort(-s, kind="stable")[:k] if np.isfinite(s[m])]
        return [(m, float(np.clip(s[m], *self.rating_scale))) for m in top]

    def __repr__(self) -> str:
        return f"PairModel({self.n_movies} movies)"


# -- training ------------------------------------------------------------------------------------
def _split_rmse(model: PairModel, split) -> tuple[float | None, float | None]:
    if split is None or len(split) == 0:
        return None, None
    pred = model.predict(np.asarray(split.user), np.asarray(split.movie)).astype(np.float64)
    err = pred - np.asarray(split.rating, np.float64)
    return float(np.sqrt(np.mean(err * err))), float(np.mean(np.abs(err)))


def _sample_rmse(model: PairModel, users, movies, ratings) -> float:
    """RMSE of the self-pair predictions (each user's latest window) of the given training ratings."""
    pred = model.predict(users, movies).astype(np.float64)
    return float(np.sqrt(np.mean((pred - ratings) ** 2)))


def fit(dataset, opts: dict[str, Any], config: dict[str, Any], run, device, gen, callback=None) -> dict[str, Any]:
    """Train attention into ``run`` (driven by ``mfrec.training``); returns the summary facts."""
    rng = np.random.default_rng(int(opts["seed"]))
    codes, vocab, used = user_features(dataset)
    feats = movie_features(dataset)
    arch = {"n_users": dataset.n_users, "n_movies": dataset.n_movies, "n_genres": feats["genres"].shape[1],
            "user_vocab": vocab, "factors": int(opts["factors"]), "heads": int(opts["heads"]),
            "hidden": int(opts["hidden"]), "dropout": float(opts["dropout"]),
            "mean": float(np.mean(dataset.train.rating)), "imdb": feats["imdb"],
            "n_directors": int(feats.get("n_directors", 1))}
    if arch["factors"] % arch["heads"]:
        raise MfrecError(f"{NAME}: --factors ({arch['factors']}) must be a multiple of heads ({arch['heads']})")
    module = PairAttention(**arch).to(device)
    module.set_features(feats, codes)
    hist = Histories(dataset, device, int(opts["window"]), int(opts["step"]))
    run.log(f"{NAME}: user features {used or 'none'}; IMDB runtime/director {'yes' if feats['imdb'] else 'no'}; "
            f"{sum(p.numel() for p in module.parameters()):,} parameters on {device}")
    model = PairModel(module, hist, {"config": config, "rating_scale": list(dataset.rating_scale), "arch": arch}, device)
    # every training rating in by-user order: its user, movie, rating, history position
    tr = dataset.train
    n = len(tr)
    U = np.array(tr.user, np.int64)
    P = np.arange(n) - np.asarray(dataset.train_by_user.indptr)[U]
    M = np.array(tr.movie, np.int64)
    R = np.array(tr.rating, np.float32)
    mptr = np.asarray(dataset.train_by_movie.indptr)
    by_movie_order = np.argsort(M, kind="stable")  # entry j of train_by_movie is rating by_movie_order[j]
    optim = torch.optim.Adam(module.parameters(), lr=float(opts["lr"]), weight_decay=float(opts["weight_decay"]))
    bs = int(opts["batch_size"])
    epochs = int(opts["epochs"])
    n_batches = math.ceil(n / bs)
    train_rmse: dict[int, float | None] = {}
    val_rmse: dict[int, float | None] = {}
    with_train = train_metrics_on(opts, dataset)
    # the training RMSE's ratings (self-pairs, latest window): one fixed sample, drawn apart from the
    # training's own random numbers, so measuring it or not trains the same weights
    sub = np.random.default_rng([int(opts["seed"]), 1]).choice(n, size=min(n, 20000), replace=False)
    best = BestEpoch(opts.get("patience"))
    timer = Timer()
    to = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    for epoch in range(1, epochs + 1):
        te = Timer()
        module.train()
        # partners: a random rater of the same movie, or oneself
        lo_, cnt = mptr[M], mptr[M + 1] - mptr[M]
        j = by_movie_order[lo_ + (rng.random(n) * cnt).astype(np.int64)]
        j = np.where(rng.random(n) < float(opts["self_pair"]), np.arange(n), j)
        total = 0.0
        for idx in torch.randperm(n, generator=gen).split(bs):
            if len(idx) < 2:  # batch norm needs two examples
                continue
            i = idx.numpy()
            a, b = i, j[i]
            ua, ub = to(U[a]), to(U[b])
            wa = hist.windows(ua, to(P[a]))
            wb = hist.windows(ub, to(P[b]))
            y = to(0.5 * (R[a] + R[b]))
            pred = module(ua, *wa, ub, *wb, to(M[a]))
            loss = torch.mean((pred - y) ** 2)
            total += optimizer_step(optim, loss, NAME, epoch) * len(i)
            emit(callback, Step(1, epochs * n_batches, NAME, " batches"))
        train_loss = total / n
        module.eval()
        tr_rmse = _sample_rmse(model, U[sub], M[sub], R[sub]) if with_train else None
        va, _ = _split_rmse(model, dataset.val)
        secs = te()
        save_checkpoint(run, module, epoch)
        train_rmse[epoch], val_rmse[epoch] = tr_rmse, va
        note = epoch_note(f"pair MSE {train_loss:.4f}", secs, train_rmse=tr_rmse, val_rmse=va)
        if end_epoch(callback, best, module, epoch, va if va is not None else train_loss, va is not None, note,
                     tr_rmse, va, secs, train_loss=train_loss, val_loss=None if va is None else va ** 2):
            run.log(f"stopping: no better validation RMSE for {best.patience} epochs")
            epochs = epoch
            break
    best.restore(module)
    module.eval()
    seconds = timer()
    tr_rmse, va = train_rmse[best.epoch], val_rmse[best.epoch]
    if tr_rmse is None:  # not measured per epoch: once, on the kept weights, for the summary
        tr_rmse = _sample_rmse(model, U[sub], M[sub], R[sub])
    tst, tmae = _split_rmse(model, dataset.test)  # the test split, once, on the kept weights
    save_weights(run, module, {"model": NAME, "arch": arch, "config": config, "n_users": dataset.n_users,
                               "n_movies": dataset.n_movies, "rating_scale": list(dataset.rating_scale),
                               "dataset": dataset.name, "data_path": config["data_path"],
                               "best_epoch": best.epoch, "user_features": used, "imdb_features": feats["imdb"]})
    facts = {"epochs_run": epochs, "best_epoch": best.epoch, "train_rmse": tr_rmse,
             "val_rmse": va, "test_rmse": tst, "test_mae": tmae, "train_seconds": seconds,
             "seconds_per_epoch": seconds / max(epochs, 1), "user_features": used, "imdb_features": feats["imdb"]}
    return facts


def load(folder, meta, device="cpu"):
    module = PairAttention(**meta["arch"])
    module.load_state_dict(load_state(folder / meta["weights"], device))
    return PairModel(module, None, meta, device)
