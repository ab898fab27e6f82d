"""mfrec: fast NumPy/Numba matrix-factorization recommenders for MovieLens-style rating data.

The public API is imported lazily so that ``import mfrec`` (and the CLI's ``--help``) stays fast:

- ``mfrec.data.load(name_or_path)``: a prepared dataset from ``Training_data/``.
- ``mfrec.train(dataset, config, callback=...)``: fit a model.
- ``mfrec.load_experiment(path)``: a trained run for notebooks and inference.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_dataset": ("mfrec.data", "load"),
    "train": ("mfrec.models", "train"),
    "load_experiment": ("mfrec.inference.api", "load_experiment"),
}


# subpackages reachable as attributes after a plain ``import mfrec`` (e.g. ``mfrec.data.load``)
_SUBPACKAGES = ("data", "models", "experiments", "inference", "evaluation", "analysis", "plots", "kernels", "neural",
                "training", "callbacks", "io")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    if name in _SUBPACKAGES:
        return import_module(f"mfrec.{name}")
    raise AttributeError(f"module 'mfrec' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY, *_SUBPACKAGES]
