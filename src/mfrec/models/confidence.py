"""ials confidences: how much a rating counts as "watched" (``mfrec.models.ials``).

Pure functions of the ratings, their place in time and the run's settings, kept apart from the fit
loop so that ``FactorModel`` (fold-in) and ``mfrec.inference`` (explanations) use them without
importing the training code.
"""

from __future__ import annotations

import numpy as np


def confidences(ratings, top: float, alpha: float, power: float, recent=None, recency: float = 0.0,
                scale: float = 0.1) -> np.ndarray:
    """The confidence of each rated pair (float32, > 1)::

        1 + alpha * (rating / top) ** power * (1 + recency * exp(-(1 - t) / scale)) / (1 + recency)

    ``recent`` (t) is each rating's place in its user's history by time, 0 = oldest .. 1 = latest
    (None: every rating is current, t = 1, as for a made-up user's ratings)."""
    r = np.clip(np.asarray(ratings, np.float64) / float(top), 0.0, None)
    w = r ** power
    if recent is not None and recency > 0:
        t = np.asarray(recent, np.float64)
        w = w * (1.0 + recency * np.exp(-(1.0 - t) / scale)) / (1.0 + recency)
    return (1.0 + alpha * w).astype(np.float32)


def places_in_history(users, timestamps, n_users: int) -> np.ndarray:
    """Each rating's place in its user's history by time: 0 = the user's oldest .. 1 = latest (a user
    with one rating: 1); ties keep the given order."""
    users = np.asarray(users, np.int64)
    order = np.lexsort((np.arange(len(users)), np.asarray(timestamps), users))
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(users)) - np.repeat(starts, counts)
    out = np.empty(len(users), np.float64)
    out[order] = np.where(np.repeat(counts, counts) > 1, rank / np.maximum(np.repeat(counts, counts) - 1, 1), 1.0)
    return out


def confidence_of(model, ratings, recent=None) -> np.ndarray:
    """The confidences an ials ``model`` gives these ratings (placed in time by ``recent``, else all
    current), from the settings it was trained with."""
    c = model.config
    return confidences(ratings, float(c["rating_top"]), float(c["alpha"]), float(c["rating_power"]), recent,
                       float(c.get("recency", 0.0)), float(c.get("recency_scale", 0.1)))
