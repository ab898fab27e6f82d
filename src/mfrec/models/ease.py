"""EASE (Steck 2019, "Embarrassingly shallow autoencoders for sparse data"): a closed-form item-item model.

With X the users x movies training matrix (1 where the user rated the movie, or the rating itself
with ``weighting="rating"``) and one penalty λ::

    P = (XᵀX + λI)⁻¹,    B = I − P · diagMat(1 / diag(P)),  so B_jj = 0 and B_ji = −P_ji / P_ii

is the ridge regression of every movie's column on all the other columns, with the constraint that
a movie never predicts itself. A user with row x scores every movie at once: ``score = x · B``;
``score_i = Σ_j x_j B_ji`` is already a sum of one term per watched movie, so a made-up user needs
no fitting (the "fold-in" is the product) and every explanation is exact.

**Recency.** An existing user's history is in time order, and what they watch next follows what they
watched last: their x weighs the movie r places before their latest by 1 + boost · exp(−r / scale)
(``recency_boost`` 4, ``recency_scale`` 5, chosen on the ml-100k user-last validation split: NDCG@10
0.1373 plain, 0.1704 with them). B is the same; ``recency_boost=0`` is plain EASE. A made-up user's
movies have no order and all count alike.

Scores are not ratings: they are on no scale and are only for ranking.

**Cost.** B is dense n_movies x n_movies float32: memory n_movies² · 4 bytes (ml-100k: 11 MB;
ml-1m: 55 MB; ml-25m's 59k movies: 14 GB), time O(n_movies³) for the inversion (one float32 LAPACK
Cholesky + inverse in place, B the same buffer transposed: the peak is about one such matrix plus
X; 10,677 movies took 136 s and 907 MiB on 2 shared cores). :func:`ease_memory_bytes` is what
``fit`` checks against the memory the machine has free, refusing with the size it would need.

**Persistence** (``ease.npz``, loaded with ``allow_pickle=False`` by :meth:`EaseModel.load`): ``B``,
the training rows of X as a CSR (``x_indptr``, ``x_indices``, ``x_values``, so existing users score
without the dataset), ``user_ids``, ``movie_ids``, ``config_json``, ``format_version`` and
``kind`` ("ease").
"""

from __future__ import annotations

import json
import os
import time
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mfrec.errors import DataError, ModelError

FORMAT_VERSION = 1
EASE_FILE = "ease.npz"
NPZ_KEYS = ("B", "x_indptr", "x_indices", "x_values", "user_ids", "movie_ids", "config_json", "format_version", "kind")
WEIGHTINGS = ("binary", "rating")


@dataclass(frozen=True)
class EaseConfig:
    """Hyperparameters of an EASE model."""

    reg: float = field(
        default=200.0,
        metadata={"doc": "λ, the L2 penalty added to the diagonal of XᵀX (larger = smoother, more popular movies)."},
    )
    weighting: str = field(
        default="binary",
        metadata={"doc": "What a rated movie is in X: binary (1, every rating alike) or rating (the rating value)."},
    )
    recency_boost: float = field(
        default=4.0,
        metadata={"doc": "Scoring an existing user: their latest movie weighs 1 + this in x, decaying to 1 for older "
                         "ones (0 = plain EASE; B does not change)."},
    )
    recency_scale: float = field(
        default=5.0,
        metadata={"doc": "How many movies back the recency boost decays by a factor e: weight 1 + boost * exp(-r / scale), "
                         "r = 0 for the latest."},
    )
    model: str = field(default="ease", metadata={"doc": "The model kind (always ease)."})

    def validate(self) -> "EaseConfig":
        """Raise ModelError naming the first bad field; return self."""
        if self.model != "ease":
            raise ModelError(f"config field model must be 'ease' for an EASE config, got {self.model!r}")
        reg = self.reg
        if isinstance(reg, bool) or not isinstance(reg, (int, float)) or not (0 < reg < float("inf")):
            raise ModelError(f"config field reg must be a positive finite number, got {reg!r}")
        if self.weighting not in WEIGHTINGS:
            raise ModelError(f"config field weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        for name, low in (("recency_boost", "a finite number >= 0"), ("recency_scale", "a positive finite number")):
            v = getattr(self, name)
            ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and v == v and v < float("inf")
                  and (v >= 0 if name == "recency_boost" else v > 0))
            if not ok:
                raise ModelError(f"config field {name} must be {low}, got {v!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EaseConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names and v is not None})


def ease_config_docs() -> dict[str, str]:
    return {f.name: f.metadata["doc"] for f in fields(EaseConfig) if f.name != "model"}


GRAM_BLOCK = 2048  # columns of XᵀX built at a time


def ease_memory_bytes(n_movies: int) -> int:
    """What fitting needs beyond the data: the dense float32 n_movies x n_movies Gram matrix, inverted
    and turned into B in place (4 bytes per entry), a one-byte-per-entry finiteness check, and one
    block of columns while XᵀX is built. Measured: 10,677 movies, B 435 MiB, peak RSS 907 MiB with
    10M ratings in X."""
    n = int(n_movies)
    return n * n * 5 + n * GRAM_BLOCK * 4


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no check)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_memory(n_movies: int, available: int | None = None) -> None:
    """Raise ModelError, with the size it would need, when B for ``n_movies`` does not fit in memory."""
    need = ease_memory_bytes(n_movies)
    have = available_memory_bytes() if available is None else available
    if have is not None and need > have:
        raise ModelError(f"EASE needs a dense {n_movies:,} x {n_movies:,} float32 matrix ({n_movies:,}² x 4 bytes, "
                         f"about {_gib(need)} with working space) but only {_gib(have)} of memory is free: "
                         f"use a smaller catalogue (e.g. drop rarely rated movies) or a factor model (ials, mf)")


def interaction_matrix(indptr, indices, values, n_movies: int, weighting: str):
    """X as a scipy CSR (float32): 1 per rating (binary) or the rating itself."""
    import scipy.sparse as sp

    indptr = np.asarray(indptr, np.int64)
    data = np.ones(len(indices), np.float32) if weighting == "binary" else np.asarray(values, np.float32)
    return sp.csr_matrix((data, np.asarray(indices, np.int32), indptr), shape=(len(indptr) - 1, n_movies))


def solve_ease(X, reg: float, block: int = GRAM_BLOCK, callback: Callable[[Any], Any] | None = None) -> np.ndarray:
    """B = I − P·diagMat(1/diag(P)), P = (XᵀX + λI)⁻¹, diag(B) = 0, as C-contiguous float32.

    XᵀX is built densely in column blocks (a sparse product of a dense-ish result would hold 16
    bytes per entry); the inverse is LAPACK's float32 Cholesky (spotrf) and inverse (spotri) in
    place. ``callback`` receives a ``mfrec.callbacks.Step`` per block of XᵀX and one for the solve.
    """
    from scipy.linalg import lapack

    from mfrec.callbacks import Step, emit

    n = X.shape[1]
    Xc = X.tocsc()
    XT = X.T.tocsr()
    G = np.empty((n, n), np.float32, order="F")  # symmetric: Fortran order for LAPACK, no copy
    steps = (n + block - 1) // block + 1
    for a in range(0, n, block):
        b = min(a + block, n)
        G[:, a:b] = (XT @ Xc[:, a:b]).toarray()
        emit(callback, Step(1, steps, "EASE: X^T X", " blocks"))
    G[np.diag_indices(n)] += np.float32(reg)
    c, info = lapack.spotrf(G, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise ModelError(f"EASE: X^T X + {reg:g} I is not positive definite in float32 (LAPACK spotrf info {info}); "
                         f"use a larger reg")
    P, info = lapack.spotri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise ModelError(f"EASE: inverting X^T X + {reg:g} I failed (LAPACK spotri info {info}); use a larger reg")
    for a in range(0, n, block):  # spotri fills the upper triangle only: mirror it, a block of rows at a time
        b = min(a + block, n)
        P[a:b, :a] = P[:a, a:b].T
        P[a:b, a:b] = np.triu(P[a:b, a:b]) + np.triu(P[a:b, a:b], 1).T
    d = np.diag(P).copy()
    if not np.all(np.isfinite(d)) or np.any(d <= 0):
        raise ModelError(f"EASE: the inverse of X^T X + {reg:g} I is not finite and positive; use a larger reg")
    B = P.T  # P is symmetric: its transpose is the same matrix, C-contiguous, with no copy
    B /= -d[None, :]  # B_ji = -P_ji / P_ii
    B[np.diag_indices(n)] = 0.0
    if not np.all(np.isfinite(B)):
        raise ModelError(f"EASE: the inverse of X^T X + {reg:g} I is not finite; use a larger reg")
    emit(callback, Step(1, steps, "EASE: X^T X", " blocks"))  # the solve, as the last step
    return B


def _readonly(a, dtype, ndim: int, name: str, where: str) -> np.ndarray:
    out = np.array(a, dtype=dtype, order="C", copy=True)
    if out.ndim != ndim:
        raise ModelError(f"{where}: {name} has {out.ndim} dimensions, expected {ndim}")
    out.setflags(write=False)
    return out


class EaseModel:
    """A fitted EASE model: the item-item weights ``B`` and the users' training rows (read-only)."""

    kind = "ease"
    exported_from = None

    def __init__(self, B, x_indptr, x_indices, x_values, user_ids=None, movie_ids=None,
                 config: dict[str, Any] | None = None, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else None
        where = str(self.path or "the EASE model")
        self.B = _readonly(B, np.float32, 2, "B", where)
        self.x_indptr = _readonly(x_indptr, np.int64, 1, "x_indptr", where)
        self.x_indices = _readonly(x_indices, np.int32, 1, "x_indices", where)
        self.x_values = _readonly(x_values, np.float32, 1, "x_values", where)
        nm = self.B.shape[0]
        nu = len(self.x_indptr) - 1
        self.user_ids = _readonly(np.arange(nu) if user_ids is None else user_ids, np.int64, 1, "user_ids", where)
        self.movie_ids = _readonly(np.arange(nm) if movie_ids is None else movie_ids, np.int64, 1, "movie_ids", where)
        self.config: dict[str, Any] = dict(config or {})
        self.settings = EaseConfig.from_dict(self.config).validate()
        if self.B.shape != (nm, nm) or len(self.movie_ids) != nm or len(self.user_ids) != nu or nu < 0:
            raise ModelError(f"{where} has inconsistent array shapes: B {self.B.shape}, {len(self.movie_ids)} movie ids, "
                             f"{len(self.x_indptr)} row pointers, {len(self.user_ids)} user ids")
        p, ix = self.x_indptr, self.x_indices
        if (len(p) == 0 or p[0] != 0 or np.any(np.diff(p) < 0) or p[-1] != len(ix) or len(self.x_values) != len(ix)
                or (len(ix) and (ix.min() < 0 or ix.max() >= nm))):
            raise ModelError(f"{where}: the training rows (x_indptr, x_indices, x_values) are not a valid CSR "
                             f"over {nm} movies")
        if not np.all(np.isfinite(self.B)) or np.any(np.diag(self.B) != 0):
            raise ModelError(f"{where}: B is not finite with a zero diagonal: the file is damaged")

    # -- facts ---------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_movies(self) -> int:
        return len(self.movie_ids)

    @property
    def weighting(self) -> str:
        return self.settings.weighting

    @property
    def reg(self) -> float:
        return float(self.settings.reg)

    # -- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(cls, dataset, config: EaseConfig | None = None, callback: Callable[[Any], Any] | None = None,
            log: Callable[[str], None] | None = None) -> "EaseModel":
        """B from the dataset's training split (``dataset.train_by_user``)."""
        config = (config or EaseConfig()).validate()
        n_movies = int(dataset.n_movies)
        check_memory(n_movies)
        csr = dataset.train_by_user
        t0 = time.perf_counter()
        X = interaction_matrix(csr.indptr, csr.indices, csr.values, n_movies, config.weighting)
        B = solve_ease(X, float(config.reg), callback=callback)
        seconds = time.perf_counter() - t0
        if log is not None:
            log(f"EASE: B = {n_movies:,} x {n_movies:,} float32 ({_gib(B.nbytes)}) from {X.nnz:,} training ratings "
                f"({config.weighting} X, reg {config.reg:g}) in {seconds:.2f} s")
        facts = {**config.to_dict(), "fit_seconds": seconds}
        return cls(B, csr.indptr, csr.indices, csr.values, dataset.user_ids.ids, dataset.movie_ids.ids, facts)

    # -- scoring -------------------------------------------------------------------------------
    def row_weights(self, values) -> np.ndarray:
        """A history's entries of x before recency: 1 per movie (binary) or the ratings (rating)."""
        values = np.asarray(values, np.float32)
        return np.ones_like(values) if self.weighting == "binary" else values

    def recency(self, from_end) -> np.ndarray:
        """The recency factor 1 + boost · exp(−r / scale) of entries ``r`` places before a history's latest."""
        s = self.settings
        return (1.0 + s.recency_boost * np.exp(-np.asarray(from_end, np.float64) / s.recency_scale)).astype(np.float32)

    def history_weights(self, values, in_time_order: bool) -> np.ndarray:
        """x over one history: ``row_weights``, times the recency factor when the history is in time
        order (an existing user's); a made-up user's movies all count as recent (no order)."""
        w = self.row_weights(values)
        return w * self.recency(np.arange(len(w))[::-1]) if in_time_order else w

    def score_history(self, movies, values=None, in_time_order: bool = False) -> np.ndarray:
        """x · B for one history (movie indices, ratings; oldest first when ``in_time_order``): a score
        per movie (float32, not a rating)."""
        movies = np.asarray(movies, np.int64)
        if len(movies) and (movies.min() < 0 or movies.max() >= self.n_movies):
            raise DataError(f"movie indices must lie in 0..{self.n_movies - 1}")
        if values is None:
            values = np.ones(len(movies), np.float32)
        w = self.history_weights(values, in_time_order)
        return (w @ self.B[movies]).astype(np.float32) if len(movies) else np.zeros(self.n_movies, np.float32)

    def contributions(self, movies, values, targets, in_time_order: bool = False) -> np.ndarray:
        """(len(targets), len(movies)) terms x_j B_ji: row t sums to the score of targets[t], exactly."""
        movies = np.asarray(movies, np.int64)
        w = self.history_weights(values if values is not None else np.ones(len(movies)), in_time_order)
        return (self.B[np.ix_(movies, np.asarray(targets, np.int64))] * w[:, None]).T.astype(np.float64)

    def user_row(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.x_indptr[u]), int(self.x_indptr[u + 1])
        return self.x_indices[a:b], self.x_values[a:b]

    def score_rows(self, indptr, indices, values, users) -> np.ndarray:
        """x_u · B for the rows ``users`` of a history CSR (movie indices, ratings; each row oldest first):
        (len(users), n_movies) float32, with the recency factor on each entry. The ranking protocol passes
        each user's train (+ val) history in time order, as for the sequential model."""
        import scipy.sparse as sp

        indptr = np.asarray(indptr, np.int64)
        users = np.asarray(users, np.int64)
        if len(users) and (users.min() < 0 or users.max() >= len(indptr) - 1):
            raise DataError(f"user indices must lie in 0..{len(indptr) - 2}")
        counts = np.diff(indptr)
        from_end = np.repeat(indptr[1:], counts) - 1 - np.arange(indptr[-1])  # 0 = each row's latest
        w = self.row_weights(values) * self.recency(from_end)
        rows = sp.csr_matrix((w, np.asarray(indices, np.int32), indptr), shape=(len(indptr) - 1, self.n_movies))[users]
        return np.asarray(rows @ self.B, dtype=np.float32)

    def score_users(self, users) -> np.ndarray:
        """x_u · B for each user index from their training rows: (len(users), n_movies) float32."""
        return self.score_rows(self.x_indptr, self.x_indices, self.x_values, users)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        from mfrec.io import write_npz

        return write_npz(path, {
            "B": self.B, "x_indptr": self.x_indptr, "x_indices": self.x_indices, "x_values": self.x_values,
            "user_ids": self.user_ids, "movie_ids": self.movie_ids,
            "config_json": np.array(json.dumps(self.config)), "format_version": np.array(FORMAT_VERSION),
            "kind": np.array("ease"),
        })

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EaseModel":
        """An ``ease.npz`` (or a run folder holding one); a missing or damaged file is one ModelError."""
        path = Path(path)
        if path.is_dir():
            path = path / EASE_FILE
        if not path.is_file():
            raise ModelError(f"{path} does not exist: an EASE run keeps its model in {EASE_FILE}")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in NPZ_KEYS if k not in z.files]
                if missing:
                    raise ModelError(f"{path} is not an EASE model file: it lacks {', '.join(missing)}")
                arrays = {k: z[k] for k in NPZ_KEYS}
        except ModelError:
            raise
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise ModelError(f"{path} is damaged and cannot be read as an EASE model ({type(e).__name__}: {e})") from None
        if str(arrays["kind"]) != "ease":
            raise ModelError(f"{path} holds a {str(arrays['kind'])!r} model, not an EASE one")
        version = int(arrays["format_version"])
        if version > FORMAT_VERSION:
            raise ModelError(f"{path} was written by a newer mfrec (EASE format {version}; this one reads up to "
                             f"{FORMAT_VERSION}): upgrade mfrec")
        try:
            config = json.loads(str(arrays["config_json"]))
        except json.JSONDecodeError:
            raise ModelError(f"{path} is damaged: its config_json is not JSON") from None
        if not isinstance(config, dict):
            raise ModelError(f"{path} is damaged: its config_json is not a JSON object")
        return cls(arrays["B"], arrays["x_indptr"], arrays["x_indices"], arrays["x_values"], arrays["user_ids"],
                   arrays["movie_ids"], config, path=path)

    def __repr__(self) -> str:
        return f"EaseModel({self.n_users} users x {self.n_movies} movies, reg={self.reg:g}, {self.weighting} X)"
