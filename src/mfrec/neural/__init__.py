"""Neural baselines (the optional ``torch`` extra): ``pip install -e ".[torch]"``.

Importing this package never imports torch; training or loading a neural model without torch
raises ``TorchMissingError`` naming the install command.

Models (``python Main.py --model NAME``):

- ``neumf``            rating prediction: user and movie embeddings, element-wise product, linear output.
- ``sequential``       next-movie prediction from the mean embedding of the movies watched so far.
- ``genre-embedding``  movie embeddings learned from movie-genre association, then a rating model
                       that starts from them.
- ``attention``        pair-of-users rating model over sliding windows of each user's history.

``train_neural(dataset, model_name, options, run)`` trains one into a run folder written by
``mfrec.experiments.Run`` and returns the summary; ``load_model(run_folder)`` loads it back.
"""

from __future__ import annotations

from typing import Any

from mfrec.errors import MfrecError

MODELS = ("neumf", "sequential", "genre-embedding", "attention")
INSTALL_HINT = 'pip install -e ".[torch]"'


class TorchMissingError(MfrecError, ImportError):
    """The neural baselines need PyTorch, which is not installed."""


def require_torch():
    """Import and return torch, or raise an error that says how to install it."""
    try:
        import torch
    except ImportError:
        raise TorchMissingError(
            f"the neural models need PyTorch, which is not installed; install the extra with: {INSTALL_HINT}"
        ) from None
    return torch


def _module(model_name: str):
    import importlib

    if model_name not in MODELS:
        raise MfrecError(f"unknown neural model {model_name!r}; choose one of: {', '.join(MODELS)}")
    require_torch()
    return importlib.import_module(f"mfrec.neural.{model_name.replace('-', '_')}")


def extra_columns(model_name: str) -> tuple[str, ...]:
    """metrics.csv columns a neural model adds after ``epoch,train_rmse,val_rmse,test_rmse,seconds``."""
    from mfrec.neural.columns import EXTRA_COLUMNS

    if model_name not in EXTRA_COLUMNS:
        raise MfrecError(f"unknown neural model {model_name!r}; choose one of: {', '.join(MODELS)}")
    return EXTRA_COLUMNS[model_name]


def train_neural(dataset, model_name: str, options: dict[str, Any], run) -> dict[str, Any]:
    """Train ``model_name`` on ``dataset`` into ``run`` (an ``mfrec.experiments.Run``); return the summary.

    ``options``: epochs, factors, lr, batch_size, device (cpu|cuda), seed, plus model-specific keys
    (see each module's ``DEFAULTS``); a missing or None value takes the model's default.
    """
    return _module(model_name).train(dataset, dict(options or {}), run)


def default_options(model_name: str) -> dict[str, Any]:
    """The model's options and their defaults (what ``Main.py --set KEY=VALUE`` may change)."""
    return dict(_module(model_name).DEFAULTS)


def load_model(path):
    """The trained neural model of a run folder (weights.pt + model.json)."""
    require_torch()
    from mfrec.neural.common import load_model as _load

    return _load(path)


__all__ = ["MODELS", "INSTALL_HINT", "TorchMissingError", "default_options", "extra_columns", "load_model", "require_torch", "train_neural"]
