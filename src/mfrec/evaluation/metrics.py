"""Rating-prediction metrics: RMSE and MAE with predictions clipped to the rating scale."""

from __future__ import annotations

import numpy as np


def _errors(predictions, ratings, scale=None) -> np.ndarray:
    p = np.asarray(predictions, dtype=np.float64)
    r = np.asarray(ratings, dtype=np.float64)
    if p.shape != r.shape:
        raise ValueError(f"predictions and ratings differ in shape: {p.shape} vs {r.shape}")
    if scale is not None:
        p = np.clip(p, scale[0], scale[1])
    return p - r


def rmse(predictions, ratings, scale=None) -> float:
    """Root mean squared error; ``scale`` = (lo, hi) clips the predictions first. NaN when empty."""
    e = _errors(predictions, ratings, scale)
    return float(np.sqrt(np.mean(e * e))) if e.size else float("nan")


def mae(predictions, ratings, scale=None) -> float:
    """Mean absolute error; ``scale`` = (lo, hi) clips the predictions first. NaN when empty."""
    e = _errors(predictions, ratings, scale)
    return float(np.mean(np.abs(e))) if e.size else float("nan")
