"""Numbers behind the run figures: 2-D maps of a run's factors, its curves, and comparison tables.

The factors themselves are a ``FactorModel`` (``mfrec.models.factor``) loaded from the run's
``model.npz`` or the ``factors.npz`` that neumf and genre-embedding runs export (same schema), so
nothing here needs torch.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mfrec.errors import MfrecError
from mfrec.experiments.run import read_config, read_metrics
from mfrec.experiments.summary import Summary

# where the rank and the regularisation may sit in a run's config, first match wins
K_KEYS = ("k", "factors", "n_factors", "rank", "dim", "embedding_dim")
REG_KEYS = ("reg", "regularization", "l2", "lambda_", "lam", "weight_decay")
_STANDARD = ("epoch", "train_rmse", "val_rmse", "test_rmse", "seconds")


def factors_file(run_path: str | os.PathLike) -> Path | None:
    """The run's factor file (model.npz, else a neural run's factors.npz), or None when it has neither."""
    from mfrec.models.factor import FACTOR_FILES

    for name in FACTOR_FILES:
        f = Path(run_path) / name
        if f.is_file():
            return f
    return None


def loss_curves(metrics) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-epoch training objectives (metrics.csv columns ending in ``_loss``, e.g. train_loss, val_loss).

    A run with a ``stage`` column (genre-embedding: stage 1 movie-genre BCE, stage 2 rating MSE) gets
    one series per stage, named ``train_loss (stage 1)`` and so on, since the stages' losses differ.
    """
    series = {k: v for k, v in curves(metrics).items() if k.endswith("_loss")}
    if "stage" not in metrics.columns or not series:
        return series
    out = {}
    for name in series:
        for stage in sorted({int(s) for s in metrics["stage"].drop_nulls().to_list()}):
            sub = metrics.filter(metrics["stage"] == stage).select("epoch", name).drop_nulls()
            if sub.height:
                out[f"{name} (stage {stage})"] = (sub["epoch"].to_numpy(), sub[name].to_numpy().astype(np.float64))
    return out


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of the rows of ``x`` (NumPy SVD of the centred matrix).

    Returns (coords (n, 2), share of the total variance each component explains (2,)). With
    fewer than two columns the missing component is zero. Signs are fixed so that the largest
    loading of each component is positive (the map does not flip between runs of the same model).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"pca_2d needs a non-empty 2-D array, got shape {x.shape}")
    xc = x - x.mean(axis=0)
    coords = np.zeros((x.shape[0], 2))
    explained = np.zeros(2)
    if x.shape[1] == 0:
        return coords, explained
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    m = min(2, s.size)
    for c in range(m):
        sign = np.sign(vt[c, np.argmax(np.abs(vt[c]))]) or 1.0
        coords[:, c] = u[:, c] * s[c] * sign
    total = float((s ** 2).sum())
    if total > 0:
        explained[:m] = s[:m] ** 2 / total
    return coords, explained


def tsne_available() -> bool:
    """Whether scikit-learn (which provides t-SNE) can be imported."""
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """t-SNE coordinates of the rows of ``x`` (needs scikit-learn; raises MfrecError without it)."""
    if not tsne_available():
        from mfrec.errors import MfrecError

        raise MfrecError("t-SNE needs scikit-learn: pip install scikit-learn (the PCA map needs nothing extra)")
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float64)
    perplexity = float(min(30.0, max(2.0, (x.shape[0] - 1) / 3.0)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def mapped_movies(train_counts: np.ndarray, min_ratings: int = 20, max_movies: int = 3000) -> np.ndarray:
    """Indices of the movies worth putting on a factor map: those with at least ``min_ratings``
    training ratings (rarely rated movies sit at the regularised origin), at most ``max_movies`` of
    the most rated; falls back to the most rated ones when too few pass the limit."""
    counts = np.asarray(train_counts)
    order = np.argsort(-counts, kind="stable")
    keep = order[counts[order] >= min_ratings][:max_movies]
    if keep.size < min(50, counts.size):
        keep = order[: min(max_movies, max(50, keep.size), counts.size)]
    return np.sort(keep)


def label_choice(coords: np.ndarray, counts: np.ndarray, n: int = 12) -> np.ndarray:
    """Which mapped points to label: the ``n`` most rated (the well-known titles), plus the most
    extreme point along each axis direction so the labels also explain the map's edges."""
    coords = np.asarray(coords)
    counts = np.asarray(counts)
    chosen = list(np.argsort(-counts, kind="stable")[:n])
    for c in range(coords.shape[1]):
        for idx in (int(np.argmin(coords[:, c])), int(np.argmax(coords[:, c]))):
            if idx not in chosen:
                chosen.append(idx)
    return np.array(chosen, np.int64)


# -- metrics and comparison ------------------------------------------------------------------------
def ranking_curves(metrics) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The per-epoch ranking metrics of a run (columns with "@" in the name, e.g. val_hit@10)."""
    return {k: v for k, v in curves(metrics).items() if "@" in k}


def curves(metrics) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Non-empty metric columns as (epochs, values), nulls dropped; ``seconds`` and ``epoch`` left out."""
    out = {}
    if "epoch" not in metrics.columns:
        return out
    for c in metrics.columns:
        if c in ("epoch", "seconds"):
            continue
        sub = metrics.select("epoch", c).drop_nulls()
        if sub.height:
            out[c] = (sub["epoch"].to_numpy(), sub[c].to_numpy().astype(np.float64))
    return out


def _first(d: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in d and d[key] is not None:
            return d[key]
    return None


def _whole(path: Path, config: dict[str, Any], cfg: dict[str, Any], keys: Sequence[str]) -> int | None:
    """The first of ``keys`` in ``cfg`` as a whole number; anything else names the file it came from."""
    for key in keys:
        v = cfg.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer():
            where = path / ("config.json" if key in config else "summary.json")
            raise MfrecError(f"{where} is damaged: {key} should be a whole number, found {str(v)[:40]!r}")
        return int(v)
    return None


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def run_row(run_path: str | os.PathLike) -> dict[str, Any]:
    """One comparison row for a run folder: run, status, model, dataset, k, reg, epochs, test_rmse,
    test_mae, val_rmse, seconds, plus any ranking metrics the run reports (names with "@": hit@10,
    val_ndcg@10, test_recall@10, ...)."""
    path = Path(run_path)
    config = read_config(path / "config.json")
    summary = Summary.read(path / "summary.json")
    cfg = {**(summary.get("config") or {}), **config}
    metrics = read_metrics(path)
    last = {}
    if metrics.height:
        for c in metrics.columns:
            col = metrics[c].drop_nulls()
            if col.len():
                last[c] = col[-1]
    epochs = summary.get("epochs_run")
    if epochs is None and metrics.height:
        epochs = int(metrics["epoch"].drop_nulls().max() or 0)
    row: dict[str, Any] = {
        "run": path.name,
        "status": summary.get("status", "unfinished"),
        "model": summary.get("model") or cfg.get("model"),
        "dataset": summary.get("dataset") or cfg.get("dataset"),
        "k": _whole(path, config, cfg, K_KEYS),
        # a bias model has no factors, so its factor penalty is unused: show none rather than a default
        "reg": None if (summary.get("model") or cfg.get("model")) == "bias" else _first(cfg, REG_KEYS),
        "reg_bias": _number(cfg.get("reg_bias")),
        "epochs": epochs,
        "test_rmse": _number(summary.get("test_rmse", last.get("test_rmse"))),
        "test_mae": _number(summary.get("test_mae")),
        "val_rmse": _number(summary.get("val_rmse", last.get("val_rmse"))),
        "seconds": _number(summary.get("train_seconds", metrics["seconds"].sum() if "seconds" in metrics.columns else None)),
    }
    # ranking metrics (hit@10, ndcg@10, ...): the summary's final values, then the last per-epoch value of
    # any other such metrics.csv column; losses and other model-specific columns are not comparable
    extras = [k for k, v in summary.items() if "@" in k and _number(v) is not None]
    extras += [c for c in metrics.columns if "@" in c and c not in extras]
    for c in extras:
        row[c] = _number(summary.get(c, last.get(c)))
    return row


def comparison_table(run_paths: Sequence[str | os.PathLike], skipped: list | None = None):
    """A polars frame with one :func:`run_row` per run, best test RMSE first (runs without one last).

    Columns absent from every run (say, ranking metrics when no run has them) are left out; a run
    lacking a column another run has gets a null there. A run with a damaged file raises its
    MfrecError sentence; with ``skipped`` (a list) it is left out and ``(path, sentence)`` is added there.
    """
    import polars as pl

    rows = []
    for p in run_paths:
        try:
            rows.append(run_row(p))
        except MfrecError as e:
            if skipped is None:
                raise
            skipped.append((Path(p), str(e)))
    if not rows:
        return pl.DataFrame()
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    data = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        if c in ("k", "epochs"):
            data[c] = pl.Series(c, [None if v is None else int(v) for v in values], dtype=pl.Int64)
        elif c in ("run", "status", "model", "dataset"):
            data[c] = pl.Series(c, [None if v is None else str(v) for v in values], dtype=pl.Utf8)
        else:
            data[c] = pl.Series(c, [_number(v) for v in values], dtype=pl.Float64)
    frame = pl.DataFrame(data)
    return frame.sort(["test_rmse", "run"], nulls_last=True)
