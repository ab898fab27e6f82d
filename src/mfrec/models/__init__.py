"""Models: ``train(dataset, config, callback=...)`` -> a fitted :class:`FactorModel`.

``FactorModel`` (``mfrec.models.factor``) is the one persisted-model contract: every model kind that
ends in user and movie factors (the ALS models, the neural exports) saves, loads, scores and folds in
new users through it.

>>> import mfrec
>>> ds = mfrec.data.load("ml-100k-u1")
>>> model = mfrec.train(ds, "mf-genre")                 # the model's defaults
>>> model = mfrec.train(ds, {"model": "mf", "factors": 64})
>>> model.predict(ds.test.user, ds.test.movie); model.save("model.npz")
>>> model = mfrec.load_model("model.npz")               # = mfrec.models.load_model
"""

from __future__ import annotations

import os
from typing import Any, Callable

from mfrec.callbacks import EpochReport
from mfrec.models.als import (
    NonFiniteFactorsError,
    ThreadOversubscriptionWarning,
    check_threads,
    fit,
)
from mfrec.models.config import MODEL_DEFAULTS, MODELS, ALSConfig
from mfrec.models.factor import FORMAT_VERSION, NPZ_KEYS, FactorModel, FoldInSettings
from mfrec.models import ials  # the ials loop, public as mfrec.models.ials.fit beside als.fit (light: no kernels at import)


def load_model(path: str | os.PathLike) -> FactorModel:
    """A saved model back: a ``model.save(path)`` file, a run's ``model.npz`` / ``factors.npz``, or a run
    folder (its model.npz, else its factors.npz). A damaged or missing file is one ``ModelError``.

    >>> model = mfrec.train(ds, "mf"); model.save("mf.npz")
    >>> same = mfrec.load_model("mf.npz")
    >>> same.predict(ds.test.user, ds.test.movie)
    """
    return FactorModel.load(path)


def make_config(config: ALSConfig | dict[str, Any] | str) -> ALSConfig:
    """An ALSConfig from a config, a dict (missing fields take the model's defaults) or a model name."""
    if isinstance(config, ALSConfig):
        return config
    if isinstance(config, str):
        return ALSConfig.for_model(config)
    if isinstance(config, dict):
        d = dict(config)
        model = d.pop("model", "mf")
        known = set(ALSConfig.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            from mfrec.errors import ModelError

            raise ModelError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return ALSConfig.for_model(model, **d)
    raise TypeError(f"config must be an ALSConfig, a dict or a model name, not {type(config).__name__}")


def train(dataset, config: ALSConfig | dict[str, Any] | str = "mf",
          callback: Callable[[Any], Any] | None = None, log: Callable[[str], None] | None = None) -> FactorModel:
    """Fit an ALS model (bias, mf, mf-genre, or the implicit-feedback ials) on ``dataset``;
    ``callback(EpochReport)`` after each epoch.

    ``config``: a model name (its defaults), a dict of ``ALSConfig`` fields, or an ``ALSConfig``.

    >>> ds = mfrec.data.load("ml-100k-u1")
    >>> model = mfrec.train(ds, {"model": "mf-genre", "factors": 32}, callback=print)
    >>> model.predict(ds.test.user, ds.test.movie)
    """
    config = make_config(config)
    if config.model == "ials":  # implicit feedback: its own loop (mfrec.models.ials)
        return ials.fit(dataset, config, callback=callback, log=log)
    return fit(dataset, config, callback=callback, log=log)


__all__ = [
    "ALSConfig", "EpochReport", "FORMAT_VERSION", "FactorModel", "FoldInSettings", "MODELS", "MODEL_DEFAULTS", "NPZ_KEYS", "NonFiniteFactorsError",
    "ThreadOversubscriptionWarning", "check_threads", "fit", "load_model", "make_config", "train",
]
