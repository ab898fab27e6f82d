"""mfrec: fast NumPy/Numba matrix-factorization recommenders for MovieLens-style rating data.

Everything a saved file is read back with (``import mfrec`` stays fast: these load on first use)::

    import mfrec
    ds = mfrec.data.load("ml-100k-u1")          # a Training_data/ folder (Data_processing.py)
    model = mfrec.train(ds, "mf-genre")         # -> mfrec.models.FactorModel
    model.save("by-hand.npz")
    model = mfrec.load_model("by-hand.npz")     # a model.npz / factors.npz, or a run folder
    exp = mfrec.load_experiment("ml-100k-u1-mf-genre")   # an Experiments_/ run folder (Main.py)
    exp.recommend(like=["Star Wars"])
    net = mfrec.neural.load_model("Experiments_/RUN")    # a neural run's weights (the torch extra)

``help(mfrec.train)`` (and the others) shows each with an example.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public functions, imported on first use: name -> (module, attribute)
_LAZY = {
    "load_dataset": ("mfrec.data", "load"),
    "train": ("mfrec.models", "train"),
    "load_model": ("mfrec.models", "load_model"),
    "load_experiment": ("mfrec.inference.api", "load_experiment"),
}


# subpackages reachable as attributes after a plain ``import mfrec`` (e.g. ``mfrec.data.load``)
_SUBPACKAGES = ("data", "models", "experiments", "inference", "evaluation", "analysis", "plots", "kernels", "neural",
                "training", "callbacks", "io", "errors")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(import_module(module), attr)
        globals()[name] = value  # resolved once; later lookups skip this hook
        return value
    if name in _SUBPACKAGES:
        return import_module(f"mfrec.{name}")
    raise AttributeError(f"module 'mfrec' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY, *_SUBPACKAGES]


def __dir__() -> list[str]:
    """What tab completion offers: the public names above, resolved or not yet."""
    return sorted(set(globals()) | set(__all__))
