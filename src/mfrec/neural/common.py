"""What the neural models share: options, devices, seeding, the end-of-epoch report, weights on disk.

Training a neural model is driven by ``mfrec.training`` like every other model: the fit loops here
report each epoch as a ``mfrec.callbacks.EpochReport`` (metrics.csv rows, log lines and the progress
bar are written from those up there) and write only the model's own files into the run folder.

Weights are saved as ``weights.pt`` (``torch.save`` of the module's state dict, loaded with
``weights_only=True``) next to ``model.json`` (model name, constructor arguments, dataset, best
epoch); ``checkpoints/epoch_NNN.pt`` hold one state dict per epoch.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfrec.callbacks import EarlyStopping, EpochReport, emit
from mfrec.callbacks import fmt as fmt  # noqa: F401  (re-exported for the fit loops)
from mfrec.errors import MfrecError, ModelError
from mfrec.io import atomic_path, write_json

WEIGHTS = "weights.pt"
META = "model.json"
CHECKPOINTS = "checkpoints"


# -- options -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """What one numeric option accepts: whole numbers or any finite number from ``low`` to ``high``
    (each end excluded when ``low_open`` / ``high_open``); ``text`` says it in the error."""

    whole: bool
    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = True
    text: str = ""

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        if self.whole and not isinstance(value, (int, np.integer)):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below


_AT_LEAST_ONE = Rule(True, 1, text="a whole number >= 1")
_WHOLE = Rule(True, 0, text="a whole number >= 0")
_POSITIVE = Rule(False, 0.0, low_open=True, text="a finite number > 0")
_NON_NEGATIVE = Rule(False, 0.0, text="a finite number >= 0")

# every numeric option of every neural model (tests/test_neural_options.py checks each DEFAULTS key has one)
OPTION_RULES: dict[str, Rule] = {
    **dict.fromkeys(("epochs", "factors", "batch_size", "heads", "hidden", "window", "step", "genre_epochs",
                     "negatives", "min_length"), _AT_LEAST_ONE),
    **dict.fromkeys(("seed", "threads", "patience"), _WHOLE),
    **dict.fromkeys(("lr", "genre_lr", "init_std"), _POSITIVE),
    **dict.fromkeys(("reg", "weight_decay"), _NON_NEGATIVE),
    "dropout": Rule(False, 0.0, 1.0, text="a number from 0 up to (not including) 1"),
    "self_pair": Rule(False, 0.0, 1.0, high_open=False, text="a number from 0 to 1"),
}
# options the command line takes directly; the others are given with --set KEY=VALUE
_FLAGS = ("epochs", "factors", "batch_size", "seed", "threads", "patience", "lr", "reg")


def option_name(key: str) -> str:
    """How the user gives ``key``: ``--batch-size`` for a command-line option, else ``--set key=...``."""
    return f"--{key.replace('_', '-')}" if key in _FLAGS else f"{key} (--set {key}=...)"


def resolve_options(options: dict[str, Any], defaults: dict[str, Any], model_name: str) -> dict[str, Any]:
    """Defaults overridden by every option that is given (not None); unknown keys are kept as given.

    Every numeric option (``OPTION_RULES``) must be finite and in its range: NaN, infinities, negative
    penalties or a fractional epoch count are one ``MfrecError`` naming the option and the value."""
    out = dict(defaults)
    for key, value in options.items():
        if value is not None:
            out[key] = value
    for key, rule in OPTION_RULES.items():
        if out.get(key) is not None and not rule.accepts(out[key]):
            raise MfrecError(f"{model_name}: {option_name(key)} must be {rule.text}, got {out[key]!r}")
    if out.get("train_metrics") is not None and not isinstance(out["train_metrics"], bool):
        raise MfrecError(f"{model_name}: train_metrics must be true, false or null (--train-metrics, "
                         f"--no-train-metrics), got {out['train_metrics']!r}")
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
    with atomic_path(path) as tmp:  # an interrupt mid-save leaves no torn checkpoint
        torch.save(module.state_dict(), tmp)
    return path


def save_weights(run, module: torch.nn.Module, meta: dict[str, Any]) -> None:
    """weights.pt (state dict) and model.json (everything needed to rebuild the module)."""
    path = Path(run.path)
    with atomic_path(path / WEIGHTS) as tmp:
        torch.save(module.state_dict(), tmp)
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

    from mfrec.neural import MODELS

    folder = Path(path)
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


# -- the end of an epoch -------------------------------------------------------------------------
def check_finite(loss: torch.Tensor, model_name: str, epoch: int) -> None:
    if not torch.isfinite(loss):
        raise ModelError(f"{model_name}: the training loss became {loss.item()} in epoch {epoch}; lower --lr")


def optimizer_step(optim, loss: torch.Tensor, model_name: str, epoch: int, objective: torch.Tensor | None = None) -> float:
    """One minibatch update: gradients of ``objective`` (default ``loss``, e.g. loss plus a penalty),
    a step, a check that ``loss`` is finite; returns the loss as a float."""
    optim.zero_grad(set_to_none=True)
    (loss if objective is None else objective).backward()
    optim.step()
    check_finite(loss, model_name, epoch)
    return float(loss.detach())


class BestEpoch(EarlyStopping):
    """``EarlyStopping`` that also keeps a copy of the best epoch's weights (``restore`` puts them back)."""

    def __init__(self, patience: Any = None, higher_is_better: bool = False):
        super().__init__(patience, higher_is_better)
        self.state: dict[str, Any] | None = None

    def keep(self, score: float, epoch: int, module) -> bool:
        better = self.update(score, epoch)
        if better:
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        return better

    def restore(self, module) -> None:
        module.load_state_dict(self.state)


def train_metrics_on(opts: dict[str, Any], dataset) -> bool:
    """Whether a rating model measures its training RMSE every epoch: the ALS models' rule
    (``mfrec.models.epoch_eval.train_metrics_on``): the ``train_metrics`` option (``--train-metrics``),
    or when it is None, only without a validation split. The per-epoch evaluation never reads the
    test split: the fit measures it once, on the kept weights, after the last epoch."""
    from mfrec.models.epoch_eval import train_metrics_on as rule

    return rule(opts, dataset)


def epoch_note(train_loss_text: str, seconds: float, **rmse: float | None) -> str:
    """An epoch's log line: the loss, then each RMSE that was measured (``train_rmse``, ``val_rmse``)."""
    measured = " ".join(f"{k} {fmt(v)}" for k, v in rmse.items() if v is not None)
    return f"{train_loss_text}{' ' + measured if measured else ''} ({seconds:.1f}s)"


def end_epoch(callback, best: BestEpoch, module, epoch: int, score: float, validated: bool, note: str,
              train_rmse=None, val_rmse=None, seconds=None, **metrics) -> bool:
    """What every neural loop does after an epoch: keep the weights if ``score`` is the best so far,
    report the epoch to ``callback`` (metrics.csv, log and progress bar are written from it), and
    return whether early stopping ends the fit. An epoch never reports a test RMSE: the fit measures
    the test split once, on the kept weights."""
    best.keep(score, epoch, module)
    stop = best.should_stop(epoch, validated)
    emit(callback, EpochReport(epoch, train_rmse, val_rmse, None, seconds, best.epoch, stop, metrics,
                               f"epoch {epoch}: {note}"))
    return stop


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def export_factors(run, dataset, arrays: dict[str, np.ndarray]) -> Path:
    """``factors.npz``: the model's factors as a ``FactorModel`` (the schema every factor model
    saves), so inference, ``mfrec plot`` and notebooks read a neural run as they read an ALS run.

    ``arrays`` holds mu, user_bias, movie_bias, user_factors, movie_factors; ``mfrec.training``
    draws the movie map from the saved file after the fit.
    """
    from mfrec.models.factor import FactorModel

    path = Path(run.path)
    cfg = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    k = int(np.asarray(arrays["movie_factors"]).shape[1])
    model = FactorModel(arrays["mu"], arrays["user_bias"], arrays["movie_bias"], arrays["user_factors"],
                        arrays["movie_factors"], user_ids=dataset.user_ids.ids, movie_ids=dataset.movie_ids.ids,
                        config={**cfg, "factors": k, "exported_from": cfg.get("model"),
                                "rating_scale": [float(x) for x in dataset.rating_scale]})
    return model.save(path / "factors.npz")
