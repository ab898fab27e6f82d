"""The arrays inference needs, read from an ALS run's ``model.npz`` (the contract's keys).

``FactorModel`` is read-only: every inference function takes it and returns new arrays; nothing
here writes to the factors. ``item_factors`` is the movie side as the model scores it,
``q_i + |G_i|^-1/2 Σ_{g∈G_i} y_g`` for mf-genre (just ``q_i`` otherwise), computed once at load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfrec.errors import ModelError

NPZ_KEYS = (
    "mu", "user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors",
    "genre_indptr", "genre_indices", "user_ids", "movie_ids", "config_json",
)


def effective_item_factors(movie_factors, genre_factors, genre_indptr, genre_indices) -> np.ndarray:
    """``q_i + |G_i|^-1/2 Σ_{g∈G_i} y_g`` per movie (``q_i`` when there are no genre factors).

    The genre part comes from the training kernels' own ``genre_part``, so the fold-in sees the
    movie side exactly as the user half-step of training did.
    """
    q = np.array(movie_factors, dtype=np.float32, order="C", copy=True)
    y = np.asarray(genre_factors, dtype=np.float32)
    if y.shape[0] == 0 or q.shape[1] == 0:
        return q
    from mfrec.kernels.als import genre_part

    q += genre_part(genre_indptr, genre_indices, y)
    return q


@dataclass(frozen=True)
class FactorModel:
    """Biases and factors of a trained ALS model (``k = 0`` for the bias-only model)."""

    mu: float
    user_bias: np.ndarray
    movie_bias: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray
    genre_factors: np.ndarray
    genre_indptr: np.ndarray
    genre_indices: np.ndarray
    user_ids: np.ndarray
    movie_ids: np.ndarray
    config: dict[str, Any]
    item_factors: np.ndarray = field(repr=False)
    path: Path | None = None

    @property
    def k(self) -> int:
        return int(self.movie_factors.shape[1])

    @property
    def n_users(self) -> int:
        return int(self.user_bias.shape[0])

    @property
    def n_movies(self) -> int:
        return int(self.movie_bias.shape[0])

    @property
    def kind(self) -> str:
        return str(self.config.get("model", "mf"))

    @classmethod
    def from_arrays(cls, arrays: dict[str, Any], path: Path | None = None) -> "FactorModel":
        missing = [k for k in NPZ_KEYS if k not in arrays]
        if missing:
            where = path or "the model"
            raise ModelError(f"{where} lacks {', '.join(missing)}: it is not an ALS model.npz")
        cfg = arrays["config_json"]
        config = json.loads(str(cfg.item() if hasattr(cfg, "item") else cfg)) if cfg is not None else {}

        def f32(name, ndim):
            a = np.ascontiguousarray(arrays[name], dtype=np.float32)
            if a.ndim != ndim:
                raise ModelError(f"{path or 'model'}: {name} has {a.ndim} dimensions, expected {ndim}")
            a.setflags(write=False)
            return a

        user_factors = f32("user_factors", 2)
        movie_factors = f32("movie_factors", 2)
        genre_factors = f32("genre_factors", 2)
        user_bias, movie_bias = f32("user_bias", 1), f32("movie_bias", 1)
        if user_factors.shape[0] != user_bias.shape[0] or movie_factors.shape[0] != movie_bias.shape[0]:
            raise ModelError(f"{path or 'model'}: factor and bias shapes disagree")
        if user_factors.shape[1] != movie_factors.shape[1]:
            raise ModelError(f"{path or 'model'}: user factors have k={user_factors.shape[1]}, movie factors k={movie_factors.shape[1]}")
        genre_indptr = np.asarray(arrays["genre_indptr"], dtype=np.int64)
        genre_indices = np.asarray(arrays["genre_indices"], dtype=np.int32)
        item = effective_item_factors(movie_factors, genre_factors, genre_indptr, genre_indices)
        item.setflags(write=False)
        for name, a in (("user_factors", user_factors), ("movie_factors", movie_factors), ("item", item)):
            if not np.all(np.isfinite(a)):
                raise ModelError(f"{path or 'model'}: {name} holds NaN or infinite values")
        return cls(
            mu=float(np.asarray(arrays["mu"])), user_bias=user_bias, movie_bias=movie_bias,
            user_factors=user_factors, movie_factors=movie_factors, genre_factors=genre_factors,
            genre_indptr=genre_indptr, genre_indices=genre_indices,
            user_ids=np.asarray(arrays["user_ids"], dtype=np.int64),
            movie_ids=np.asarray(arrays["movie_ids"], dtype=np.int64),
            config=config, item_factors=item, path=path,
        )

    @classmethod
    def from_als(cls, als, path: Path | None = None) -> "FactorModel":
        """From a fitted ``mfrec.models.ALSModel`` (what ``Experiment.model`` returns for ALS runs)."""
        arrays = {name: getattr(als, name) for name in NPZ_KEYS if name != "config_json"}
        arrays["config_json"] = np.asarray(json.dumps(als.config_dict()))
        return cls.from_arrays(arrays, path)

    @classmethod
    def load(cls, path: str | Path) -> "FactorModel":
        path = Path(path)
        if path.is_dir():
            path = path / "model.npz"
        if not path.is_file():
            raise ModelError(f"{path} does not exist: recommendations need an ALS run's model.npz")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ModelError(f"{path} could not be read as a model ({e})") from None
        return cls.from_arrays(arrays, path)

    def predict(self, user_bias: float, user_vector: np.ndarray) -> np.ndarray:
        """Predicted rating of every movie for one user (bias + factors)."""
        if self.k == 0:
            return (self.movie_bias + np.float32(self.mu + user_bias)).astype(np.float32)
        from mfrec.kernels.topk import score_one

        return score_one(self.item_factors, user_vector, self.movie_bias, self.mu + user_bias)
