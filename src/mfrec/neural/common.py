"""What the neural models share: options, devices, seeding, the run folder, weights on disk, plots.

Weights are saved as ``weights.pt`` (``torch.save`` of the module's state dict, loaded with
``weights_only=True``) next to ``model.json`` (model name, constructor arguments, dataset, best
epoch); ``checkpoints/epoch_NNN.pt`` hold one state dict per epoch.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from mfrec.errors import MfrecError, ModelError
from mfrec.experiments.run import write_json

WEIGHTS = "weights.pt"
META = "model.json"
CHECKPOINTS = "checkpoints"


# -- options -------------------------------------------------------------------------------------
def resolve_options(options: dict[str, Any], defaults: dict[str, Any], model_name: str) -> dict[str, Any]:
    """Defaults overridden by every option that is given (not None); unknown keys are kept as given."""
    out = dict(defaults)
    for key, value in options.items():
        if value is not None:
            out[key] = value
    for key in ("epochs", "factors", "batch_size"):
        if key in out and (not isinstance(out[key], (int, np.integer)) or out[key] < 1):
            raise MfrecError(f"{model_name}: --{key.replace('_', '-')} must be a positive integer, got {out[key]!r}")
    if "lr" in out and not (isinstance(out["lr"], (int, float)) and out["lr"] > 0):
        raise MfrecError(f"{model_name}: --lr must be positive, got {out['lr']!r}")
    out["device"] = str(out.get("device") or "cpu")
    if out.get("threads"):
        torch.set_num_threads(int(out["threads"]))
    return out


def device_of(name: str) -> torch.device:
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise MfrecError(f"--device must be cpu or cuda, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MfrecError("--device cuda was asked for, but this PyTorch build sees no CUDA GPU; use --device cpu")
    return torch.device(name)


def seed_all(seed: int) -> torch.Generator:
    """Seed torch (and return a CPU generator for shuffling and sampling)."""
    torch.manual_seed(int(seed))
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def ensure_columns(run, columns: tuple[str, ...]) -> None:
    """Make sure metrics.csv has the model's extra columns (rewrites the header while it has no rows)."""
    missing = [c for c in columns if c not in run.columns]
    if not missing:
        return
    f = Path(run.path) / "metrics.csv"
    lines = f.read_text().splitlines() if f.is_file() else []
    if len(lines) > 1:
        raise MfrecError(f"{f} already has rows without the columns {', '.join(missing)}")
    run.columns = tuple(run.columns) + tuple(missing)
    f.write_text(",".join(run.columns) + "\n")


def base_config(dataset, model_name: str, opts: dict[str, Any]) -> dict[str, Any]:
    return {"model": model_name, "dataset": dataset.name, "data_path": str(Path(dataset.path).resolve()), **opts}


# -- data ----------------------------------------------------------------------------------------
def split_tensors(split, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    if split is None or len(split) == 0:
        return None
    return (
        torch.as_tensor(np.array(split.user, np.int64), device=device),
        torch.as_tensor(np.array(split.movie, np.int64), device=device),
        torch.as_tensor(np.array(split.rating, np.float32), device=device),
    )


def batches(n: int, batch_size: int, generator: torch.Generator | None):
    """Index batches over range(n), shuffled when a generator is given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for a in range(0, n, batch_size):
        yield order[a:a + batch_size]


# -- files ---------------------------------------------------------------------------------------
def save_checkpoint(run, module: torch.nn.Module, epoch: int) -> Path:
    d = Path(run.path) / CHECKPOINTS
    d.mkdir(exist_ok=True)
    path = d / f"epoch_{epoch:03d}.pt"
    torch.save(module.state_dict(), path)
    return path


def save_weights(run, module: torch.nn.Module, meta: dict[str, Any]) -> None:
    """weights.pt (state dict) and model.json (everything needed to rebuild the module)."""
    path = Path(run.path)
    tmp = path / f".{WEIGHTS}.tmp"
    torch.save(module.state_dict(), tmp)
    tmp.replace(path / WEIGHTS)
    write_json(path / META, {**meta, "weights": WEIGHTS, "torch": torch.__version__})


def load_state(path: Path, device="cpu") -> dict[str, torch.Tensor]:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path} is missing") from None
    except Exception as e:  # a truncated or foreign file
        raise ModelError(f"{path} is not a readable weights file ({type(e).__name__})") from None


def load_model(path, device: str = "cpu"):
    """Rebuild a neural model from a run folder: the model module's ``load(folder, meta, device)``."""
    import importlib

    from mfrec.experiments.run import find_run
    from mfrec.neural import MODELS

    folder = find_run(path)
    meta_file = folder / META
    if not meta_file.is_file():
        raise ModelError(f"{folder} has no {META}: it is not a finished neural run")
    meta = json.loads(meta_file.read_text())
    name = meta.get("model")
    if name not in MODELS:
        raise ModelError(f"{meta_file}: unknown neural model {name!r}")
    return importlib.import_module(f"mfrec.neural.{name.replace('-', '_')}").load(folder, meta, device)


def dataset_of(meta: dict[str, Any]):
    from mfrec.data import load

    p = meta.get("data_path")
    if p and (Path(p) / "manifest.json").is_file():
        return load(p)
    return load(meta["dataset"])


# -- progress, logging, plots --------------------------------------------------------------------
def progress(total: int, label: str, enabled: bool = True, lines: int = 20):
    """The CLI's progress bar; when stderr is not a terminal, at most about ``lines`` plain lines."""
    from mfrec.cli.common import Progress

    class _Sparse(Progress):
        def update(self, n: int = 1, postfix: str | None = None) -> None:
            if self.tty or not self.total:
                return super().update(n, postfix)
            step = max(1, self.total // lines)
            before = self.done
            self.done += n
            if postfix is not None:
                self.postfix = postfix
            if self.enabled and (self.done // step > before // step or self.done >= self.total):
                self.done -= n
                super().update(n)
            # else: counted silently

    return _Sparse(total, label, enabled=enabled)


def fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4f}"


def plot_curves(run, epochs: list[int], series: dict[str, list[float | None]], ylabel: str, title: str,
                fname: str) -> Path | None:
    """One PNG of per-epoch curves (None values are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    drawn = False
    for label, ys in series.items():
        pts = [(e, y) for e, y in zip(epochs, ys) if y is not None and math.isfinite(y)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=label)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(run.path) / "plots" / fname
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def finish(run, summary: dict[str, Any]) -> dict[str, Any]:
    run.log("summary: " + ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in summary.items()
                                    if k not in ("config", "test_ranking")))
    return run.save_summary(summary)


def train_guarded(dataset, options: dict[str, Any], run, name: str, defaults: dict[str, Any],
                  fit: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """What every neural model's ``train`` shares: resolve the options, then, inside the failure guard,
    give metrics.csv the model's columns, save config.json, pick the device and seed torch, call
    ``fit(dataset, opts, config, run, device, generator)`` for the model's own facts, and save them
    with the dataset/model/config into summary.json."""
    from mfrec.neural.columns import EXTRA_COLUMNS

    opts = resolve_options(options, defaults, name)
    config = base_config(dataset, name, opts)
    base = {"dataset": dataset.name, "model": name, "config": config}

    def go() -> dict[str, Any]:
        ensure_columns(run, EXTRA_COLUMNS[name])
        run.save_config(config)
        device = device_of(opts["device"])
        generator = seed_all(opts["seed"])
        return finish(run, {**base, **fit(dataset, opts, config, run, device, generator)})

    return run_guarded(run, go, base)


def run_guarded(run, fn: Callable[[], dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    """Run training; on an error mark the run failed (error in train.log) and re-raise."""
    try:
        return fn()
    except BaseException as e:
        run.fail(e, base)
        raise


def check_finite(loss: torch.Tensor, model_name: str, epoch: int) -> None:
    if not torch.isfinite(loss):
        raise ModelError(f"{model_name}: the training loss became {loss.item()} in epoch {epoch}; lower --lr")


class BestEpoch:
    """The best epoch so far, its weights, and the early-stopping rule the neural loops share.

    ``update`` keeps a copy of the weights when ``score`` beats the best (lower is better unless
    ``higher_is_better``); ``should_stop`` is true once ``patience`` epochs passed without a better
    validation score (never without a validation score, or with patience 0/None); ``restore`` puts
    the best weights back.
    """

    def __init__(self, higher_is_better: bool = False):
        self.higher_is_better = higher_is_better
        self.score = -math.inf if higher_is_better else math.inf
        self.epoch = 0
        self.state: dict[str, Any] | None = None

    def update(self, score: float, epoch: int, module) -> None:
        if (score > self.score) if self.higher_is_better else (score < self.score):
            self.score, self.epoch = score, epoch
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def should_stop(self, epoch: int, patience: Any, validated: bool) -> bool:
        return bool(patience) and validated and epoch - self.epoch >= int(patience)

    def restore(self, module) -> None:
        module.load_state_dict(self.state)


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def export_factors(run, dataset, arrays: dict[str, np.ndarray], maps: dict[str, np.ndarray] | None = None) -> list[Path]:
    """``factors.npz`` (every key of the ALS ``model.npz`` contract, pickle-free) and movie maps.

    ``arrays`` holds mu, user_bias, movie_bias, user_factors, movie_factors; ``maps`` names extra movie
    embeddings to draw (file stem -> (n_movies, k) array). The figures use the same PCA map as
    ``mfrec plot`` draws for ALS runs.
    """
    path = Path(run.path)
    full = {k: np.asarray(v) for k, v in arrays.items()}
    k = full["movie_factors"].shape[1]
    # the remaining keys of the ALS model.npz contract, so ALS tools can read this file as it is
    full.setdefault("genre_factors", np.zeros((0, k), np.float32))
    full.setdefault("genre_indptr", np.asarray(dataset.movie_genres.indptr, np.int64))
    full.setdefault("genre_indices", np.asarray(dataset.movie_genres.indices, np.int32))
    full.setdefault("user_ids", np.asarray(dataset.user_ids.ids, np.int64))
    full.setdefault("movie_ids", np.asarray(dataset.movie_ids.ids, np.int64))
    cfg = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    full.setdefault("config_json", np.array(json.dumps({**cfg, "factors": int(k), "exported_from": cfg.get("model")})))
    tmp = path / ".factors.tmp.npz"
    np.savez(tmp, **full)
    tmp.replace(path / "factors.npz")
    written = []
    try:
        from mfrec.plots.run import movie_map_figure
    except ImportError:  # the plotting part is absent: the arrays are still saved
        return written
    for stem, q in {"movie_map": full["movie_factors"], **(maps or {})}.items():
        try:
            out = movie_map_figure({"movie_factors": np.asarray(q, np.float64)}, dataset, path / "plots" / f"{stem}.png", run.name)
        except Exception as e:  # a figure must not fail a finished training run
            run.log(f"{stem}.png not drawn: {type(e).__name__}: {e}")
            continue
        if out is not None:
            written.append(Path(out))
    return written
