"""Per-epoch evaluation of a rating model: a callback the fit loop calls after every epoch.

The ALS fit loops (``mfrec.models.als.fit``, the Dask engine) do not decide what to measure. After
each epoch they hand an ``EpochState`` (the model as it stands) to an evaluation callback, which
returns the epoch's metrics by metrics.csv column name (``val_rmse``, ``train_rmse``, ...); early
stopping follows ``val_rmse`` when the callback reports it.

The default, ``RatingEvaluation.for_run(dataset, config)``:

- validation RMSE, when the dataset has a validation split;
- training RMSE only when ``config.train_metrics`` is true, or, when it is null (the default), when
  there is no validation split: then the training curve is the only account of how training went;
- never the test split. Its RMSE is measured once, on the kept model (the last epoch's, or the
  early-stopped best), by whoever holds the test split after the fit (``mfrec.training``); a fit
  that looked at test ratings every epoch would invite choosing on them, and pay a pass for it.

Each RMSE is one pass over its ratings (``mfrec.kernels.predict``), the predictions clipped to the
rating scale as ``FactorModel.evaluate`` clips them, so the numbers equal what the saved model gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class EpochState:
    """The model after an epoch, as an evaluation callback sees it (read the arrays, do not change them).

    ``movie_factors`` is the effective movie side (q_i plus the genre part for mf-genre), what the
    model scores with; ``rating_scale`` (lo, hi) clips predictions, None leaves them unclipped.
    """

    epoch: int
    mu: float
    user_bias: np.ndarray
    movie_bias: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray
    rating_scale: Optional[tuple[float, float]]


Evaluation = Callable[[EpochState], dict[str, Any]]


def train_metrics_on(config, dataset) -> bool:
    """Whether a fit records a training metric every epoch: ``config.train_metrics`` (a key of a
    dict config, the neural models' options), or when that is None, whether the dataset lacks a
    validation split."""
    flag = config.get("train_metrics") if isinstance(config, dict) else getattr(config, "train_metrics", None)
    if flag is not None:
        return bool(flag)
    val = getattr(dataset, "val", None)
    return val is None or len(val) == 0


def split_rmse(state: EpochState, split) -> float | None:
    """RMSE of the state's predictions on a split (user, movie, rating arrays); None when it is empty."""
    from mfrec.kernels.predict import error_sums

    if split is None or len(split.rating) == 0:
        return None
    sq, _ = error_sums(split.user, split.movie, split.rating, np.float32(state.mu), state.user_bias,
                       state.movie_bias, state.user_factors, state.movie_factors, state.rating_scale)
    return float(np.sqrt(sq / len(split.rating)))


def train_rmse(state: EpochState, by_user) -> float | None:
    """RMSE of the state's predictions on the training ratings, read through their user CSR (``by_user``)."""
    from mfrec.kernels.predict import error_sums_csr

    n = len(by_user.values)
    if n == 0:
        return None
    sq, _ = error_sums_csr(by_user.indptr, by_user.indices, by_user.values, np.float32(state.mu), state.user_bias,
                           state.movie_bias, state.user_factors, state.movie_factors, state.rating_scale)
    return float(np.sqrt(sq / n))


class RatingEvaluation:
    """An evaluation callback: ``evaluation(state)`` is ``{"<split>_rmse": value}`` for each split asked.

    ``splits``: names among train, val, test, each read from ``dataset`` when first evaluated (the
    training ratings through ``dataset.train_by_user``). A split the dataset lacks, or an empty one,
    is left out of the result. Asking for test every epoch is allowed (a notebook studying
    overfitting may want the curve), but no fit in mfrec does so.

    >>> model = mfrec.models.als.fit(ds, config, evaluate=RatingEvaluation(ds, ("val", "train")))
    """

    def __init__(self, dataset, splits: tuple[str, ...] = ("val",)):
        unknown = [s for s in splits if s not in SPLITS]
        if unknown:
            raise ValueError(f"unknown split {unknown[0]!r}: evaluate train, val or test")
        self.dataset = dataset
        self.splits = tuple(dict.fromkeys(splits))

    @classmethod
    def for_run(cls, dataset, config) -> "RatingEvaluation":
        """The default of a fit (module docstring): validation when there is a split, training when
        ``train_metrics_on(config, dataset)``, never test."""
        has_val = dataset.val is not None and len(dataset.val) > 0
        return cls(dataset, (("val",) if has_val else ()) + (("train",) if train_metrics_on(config, dataset) else ()))

    def __call__(self, state: EpochState) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in self.splits:
            value = (train_rmse(state, self.dataset.train_by_user) if name == "train"
                     else split_rmse(state, getattr(self.dataset, name)))
            if value is not None:
                out[f"{name}_rmse"] = value
        return out

    def __repr__(self) -> str:
        return f"RatingEvaluation({', '.join(self.splits) or 'nothing'})"
