"""Neural baselines (the optional ``torch`` extra): ``pip install -e ".[torch]"``.

Importing this package never imports torch; training or loading a neural model without torch
raises ``TorchMissingError`` naming the install command.

Models (``python Main.py --model NAME``):

- ``neumf``            rating prediction: user and movie embeddings, element-wise product, linear output.
- ``sequential``       next-movie prediction from the mean embedding of the movies watched so far.
- ``genre-embedding``  movie embeddings learned from movie-genre association, then a rating model
                       that starts from them.
- ``attention``        pair-of-users rating model over sliding windows of each user's history.

``resolve(dataset, model_name, options)`` gives the full options and the run config;
``fit(dataset, model_name, opts, config, run, callback)`` trains into a run folder (``mfrec.training``
creates it, writes metrics.csv, logs and plots from the epoch reports, and saves the summary) and
returns the model's summary facts; ``load_model(run_folder)`` loads it back.
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


def resolve(dataset, model_name: str, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options, config): the model's defaults overridden by every given option (not None), checked;
    and the run's config (model, dataset, data_path and the options)."""
    module = _module(model_name)
    from mfrec.neural.common import base_config, resolve_options

    opts = resolve_options(dict(options or {}), module.DEFAULTS, model_name)
    return opts, base_config(dataset, model_name, opts)


def fit(dataset, model_name: str, opts: dict[str, Any], config: dict[str, Any], run, callback=None) -> dict[str, Any]:
    """Train ``model_name`` into ``run`` (its ``path`` and ``log``) with options from :func:`resolve`;
    every epoch goes to ``callback`` as ``mfrec.callbacks.EpochReport``. Returns the summary facts."""
    module = _module(model_name)
    from mfrec.neural.common import device_of, seed_all

    device = device_of(opts["device"])
    generator = seed_all(opts["seed"])
    return module.fit(dataset, opts, config, run, device, generator, callback=callback)


def default_options(model_name: str) -> dict[str, Any]:
    """The model's options and their defaults (what ``Main.py --set KEY=VALUE`` may change)."""
    return dict(_module(model_name).DEFAULTS)


def load_model(path):
    """The trained neural model of a run folder (weights.pt + model.json)."""
    require_torch()
    from mfrec.neural.common import load_model as _load

    return _load(path)


__all__ = ["MODELS", "INSTALL_HINT", "TorchMissingError", "default_options", "extra_columns", "fit", "load_model",
           "require_torch", "resolve"]
