"""``sequential``: next-movie prediction from the mean embedding of the movies watched so far.

For a user's time-ordered training sequence s_0, s_1, ..., every position t >= ``min_length``
(default 5) is one example: input = mean(e[s_0..s_{t-1}]) (embeddings of size ``factors``, default
256), dropout 0.1, a linear layer scoring every movie; cross-entropy against s_t. Users with fewer
than ``min_length + 1`` training ratings give no examples. Prefix means come from one cumulative sum
per padded batch of users, so an epoch is linear in the number of ratings.

Per epoch: training loss; validation loss (each validation movie predicted from everything before it)
and validation Hit@10 / NDCG@10 (all of a user's validation movies ranked from the training history,
training movies excluded). The kept epoch has the best validation NDCG@10 (the last epoch without a
validation split). summary.json adds the full-ranking test metrics: each user's held-out movies
ranked from the training + validation history (``mfrec.evaluation.protocols.ranking_protocol``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mfrec.errors import DataError
from mfrec.callbacks import Step, emit
from mfrec.neural.common import (
    BestEpoch, Timer, end_epoch, fmt, optimizer_step, load_state, save_checkpoint, save_weights,
)

NAME = "sequential"
RANKING_KEYS = ("hit@10", "ndcg@10", "recall@10", "coverage@10", "genre_consistency@10")
DEFAULTS: dict[str, Any] = {
    "epochs": 5,
    "factors": 256,  # embedding size
    "dropout": 0.1,
    "min_length": 5,  # examples need at least this many previous movies
    "lr": 0.002,
    "batch_size": 512,  # examples (positions) per batch
    "device": "cpu",
    "seed": 42,
}


class MeanSequence(nn.Module):
    def __init__(self, n_movies: int, factors: int, dropout: float = 0.1):
        super().__init__()
        self.n_movies = n_movies
        self.emb = nn.Embedding(n_movies + 1, factors, padding_idx=n_movies)  # index n_movies = padding
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(factors, n_movies)

    def prefix_means(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) padded sequences -> (B, L, d): position t holds the mean of items 0..t."""
        c = self.emb(seqs).cumsum(1)
        n = torch.arange(1, seqs.shape[1] + 1, device=seqs.device, dtype=c.dtype)
        return c / n[None, :, None]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(h))

    def forward(self, seqs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores of every movie after the whole (padded) sequences of the given lengths."""
        e = self.emb(seqs).sum(1) / lengths.clamp(min=1).to(torch.float32)[:, None]
        return self.logits(e)


# -- sequences -----------------------------------------------------------------------------------
def sequences(dataset, with_val: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per user: movies in time order (train, plus val when asked) and a flag array (True = val)."""
    parts = [(dataset.train, False)] + ([(dataset.val, True)] if with_val and dataset.val is not None else [])
    u = np.concatenate([np.asarray(p.user) for p, _ in parts])
    m = np.concatenate([np.asarray(p.movie) for p, _ in parts])
    t = np.concatenate([np.asarray(p.timestamp) for p, _ in parts])
    f = np.concatenate([np.full(len(p), flag) for p, flag in parts])
    order = np.lexsort((f, t, u))  # by user, then time (train before val on equal times)
    u, m, f = u[order], m[order], f[order]
    bounds = np.searchsorted(u, np.arange(dataset.n_users + 1))
    return ([m[bounds[i]:bounds[i + 1]].astype(np.int64) for i in range(dataset.n_users)],
            [f[bounds[i]:bounds[i + 1]] for i in range(dataset.n_users)])


def pad(seqs: list[np.ndarray], pad_value: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in seqs], np.int64)
    out = np.full((len(seqs), max(int(lengths.max(initial=0)), 1)), pad_value, np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


def example_batches(counts: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Users (sorted by sequence length, so padding stays small) grouped into ~batch_size examples."""
    users = np.flatnonzero(counts > 0)
    users = users[np.argsort(counts[users], kind="stable")]
    groups, cur, n = [], [], 0
    for u in users:
        cur.append(u)
        n += counts[u]
        if n >= batch_size:
            groups.append(np.array(cur))
            cur, n = [], 0
    if cur:
        groups.append(np.array(cur))
    return groups


def batch_examples(module, seqs_np, select, device):
    """(hidden states, targets) of one batch: ``select(b, t)`` -> bool (B, L-1) mask of target positions t+1."""
    padded, lengths = pad(seqs_np, module.n_movies)
    s = torch.as_tensor(padded, device=device)
    means = module.prefix_means(s)[:, :-1]  # means[:, t] = mean of items 0..t -> predicts item t+1
    mask = torch.as_tensor(select(padded, lengths), device=device)
    return means[mask], s[:, 1:][mask]


def train_mask(min_length: int):
    def select(padded, lengths):
        L = padded.shape[1]
        t = np.arange(1, L)[None, :]  # target index
        return (t >= min_length) & (t < lengths[:, None])
    return select


def flag_mask(flags_np):
    def select(padded, lengths):
        out = np.zeros((padded.shape[0], max(padded.shape[1] - 1, 0)), bool)
        for i, f in enumerate(flags_np):
            out[i, :len(f) - 1] = f[1:]
        return out
    return select


@torch.no_grad()
def val_loss(module, seqs, flags, device, batch_size) -> float | None:
    counts = np.array([int(flags[u][1:].sum()) for u in range(len(seqs))])
    if counts.sum() == 0:
        return None
    module.eval()
    total, n = 0.0, 0
    for g in example_batches(counts, batch_size):
        h, y = batch_examples(module, [seqs[u] for u in g], flag_mask([flags[u] for u in g]), device)
        total += float(nn.functional.cross_entropy(module.logits(h), y, reduction="sum"))
        n += len(y)
    return total / n


class SequenceModel:
    """A loaded (or just trained) sequential model; it ranks movies, it does not predict ratings."""

    kind = "next-movie"

    def __init__(self, module: MeanSequence, histories: list[np.ndarray] | None, meta: dict[str, Any],
                 device="cpu", dataset=None):
        self.module = module.to(device).eval()
        self.meta = meta
        self.config = meta.get("config", {})
        self.name = NAME
        self.device = torch.device(device)
        self.n_movies = module.n_movies
        self._histories = histories
        self._dataset = dataset

    @property
    def histories(self) -> list[np.ndarray]:
        """Each user's training + validation movies in time order (the input for scoring)."""
        if self._histories is None:
            from mfrec.neural.common import dataset_of

            ds = self._dataset or dataset_of(self.meta)
            self._histories = sequences(ds, with_val=True)[0]
        return self._histories

    @torch.no_grad()
    def score_histories(self, histories: list[np.ndarray]) -> np.ndarray:
        """Scores (logits) of every movie after each given history (lists of movie indices)."""
        self.module.eval()
        padded, lengths = pad([np.asarray(h, np.int64) for h in histories], self.n_movies)
        out = self.module(torch.as_tensor(padded, device=self.device), torch.as_tensor(lengths, device=self.device))
        return out.cpu().numpy().astype(np.float32)

    def score_users(self, users) -> np.ndarray:
        h = self.histories
        return self.score_histories([h[int(u)] for u in users])

    def __repr__(self) -> str:
        return f"SequenceModel({self.n_movies} movies)"


def _val_ranking(model: SequenceModel, train_seqs, val_targets, dataset, k=10) -> tuple[float | None, float | None]:
    from mfrec.evaluation.ranking import evaluate_ranking
    from mfrec.kernels.csr import csr_from_pairs

    users = np.array([u for u in range(dataset.n_users) if len(val_targets[u])])
    if len(users) == 0:
        return None, None
    hist = csr_from_pairs(np.repeat(np.arange(dataset.n_users), [len(s) for s in train_seqs]),
                          np.concatenate(train_seqs), dataset.n_users)
    tgt = csr_from_pairs(np.repeat(np.arange(dataset.n_users), [len(s) for s in val_targets]),
                         np.concatenate(val_targets), dataset.n_users)
    g = dataset.movie_genres
    res = evaluate_ranking(lambda b: model.score_histories([train_seqs[u] for u in b]), dataset.n_movies, users,
                           hist, tgt, (np.asarray(g.indptr), np.asarray(g.indices)), len(dataset.genres), k=k)
    d = res.as_dict()
    return d[f"hit@{k}"], d[f"ndcg@{k}"]


def fit(dataset, opts: dict[str, Any], config: dict[str, Any], run, device, gen, callback=None) -> dict[str, Any]:
    """Train sequential into ``run`` (driven by ``mfrec.training``); returns the summary facts."""
    from mfrec.evaluation.protocols import ranking_protocol

    rng = np.random.default_rng(int(opts["seed"]))
    min_len = int(opts["min_length"])
    if min_len < 1:
        raise DataError(f"{NAME}: min_length (--set min_length=N) must be at least 1, got {min_len}")
    train_seqs = sequences(dataset, with_val=False)[0]
    all_seqs, all_flags = sequences(dataset, with_val=True)
    val_targets = [s[f] for s, f in zip(all_seqs, all_flags)]
    counts = np.array([max(len(s) - min_len, 0) for s in train_seqs])
    n_examples = int(counts.sum())
    if n_examples == 0:
        raise DataError(f"{NAME}: no user of {dataset.name!r} has more than {min_len} training ratings")
    arch = {"n_movies": dataset.n_movies, "factors": int(opts["factors"]), "dropout": float(opts["dropout"])}
    module = MeanSequence(**arch).to(device)
    model = SequenceModel(module, train_seqs, {"config": config}, device)
    optim = torch.optim.Adam(module.parameters(), lr=float(opts["lr"]))
    groups = example_batches(counts, int(opts["batch_size"]))
    run.log(f"{NAME}: {n_examples:,} training examples from {int((counts > 0).sum()):,} users, "
            f"{len(groups)} batches, {sum(p.numel() for p in module.parameters()):,} parameters on {device}")
    epochs = int(opts["epochs"])
    losses: dict[int, tuple[float, float | None]] = {}
    best = BestEpoch(opts.get("patience"), higher_is_better=True)
    timer = Timer()
    select = train_mask(min_len)
    for epoch in range(1, epochs + 1):
        te = Timer()
        module.train()
        total = 0.0
        for gi in rng.permutation(len(groups)):
            h, y = batch_examples(module, [train_seqs[u] for u in groups[gi]], select, device)
            loss = nn.functional.cross_entropy(module.logits(h), y)
            total += optimizer_step(optim, loss, NAME, epoch) * len(y)
            emit(callback, Step(1, epochs * len(groups), NAME, " batches"))
        train_loss = total / n_examples
        vl = val_loss(module, all_seqs, all_flags, device, int(opts["batch_size"]))
        model.module.eval()
        vh, vn = _val_ranking(model, train_seqs, val_targets, dataset)
        secs = te()
        save_checkpoint(run, module, epoch)
        losses[epoch] = (train_loss, vl)
        note = (f"train CE {train_loss:.4f} val CE {fmt(vl)} val Hit@10 {fmt(vh)} val NDCG@10 {fmt(vn)} "
                f"({secs:.1f}s)")
        if end_epoch(callback, best, module, epoch, vn if vn is not None else float(epoch), vn is not None, note,
                     seconds=secs, train_loss=train_loss, val_loss=vl, **{"val_hit@10": vh, "val_ndcg@10": vn}):
            run.log(f"stopping: no better validation NDCG@10 for {best.patience} epochs")
            epochs = epoch
            break
    best.restore(module)
    seconds = timer()
    model = SequenceModel(module, all_seqs, {"config": config}, device)
    if dataset.test is not None and len(dataset.test):
        ranking = ranking_protocol(model, dataset, strict=False)
        run.log(f"best epoch {best.epoch}; test Hit@10 {ranking['hit@10']:.4f} NDCG@10 {ranking['ndcg@10']:.4f} "
                f"genre consistency {ranking['genre_consistency@10']:.4f}")
    else:
        ranking = None
        run.log(f"best epoch {best.epoch}; no test split, so no test ranking metrics")
    save_weights(run, module, {"model": NAME, "arch": arch, "config": config, "n_users": dataset.n_users,
                               "n_movies": dataset.n_movies, "dataset": dataset.name,
                               "data_path": config["data_path"], "best_epoch": best.epoch})
    facts = {
        "epochs_run": epochs, "best_epoch": best.epoch, "train_rmse": None, "val_rmse": None, "test_rmse": None,
        "test_mae": None, "train_seconds": seconds, "seconds_per_epoch": seconds / max(epochs, 1),
        "train_loss": losses[best.epoch][0], "val_loss": losses[best.epoch][1],
        # the full-ranking test metrics, under the same names `mfrec evaluate` writes
        **({key: ranking[key] for key in RANKING_KEYS} if ranking else {}),
        "ranking_split": ranking["split"] if ranking else None,
    }
    return facts


def load(folder, meta, device="cpu"):
    module = MeanSequence(**meta["arch"])
    module.load_state_dict(load_state(folder / meta["weights"], device))
    return SequenceModel(module, None, meta, device)
