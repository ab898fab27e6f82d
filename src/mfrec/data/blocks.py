"""Block files of a prepared dataset for a cluster (``Data_processing.py --blocks W``).

``<dataset>/blocks-W/`` holds, per side, W contiguous row ranges with about equal numbers of
training ratings (``blocks_by_count``): ``users-BBB.npz`` / ``movies-BBB.npz`` with the range's
training CSR (``indptr`` from 0, ``indices``, ``values``), and ``blocks.json`` with the bounds and the
dataset's fingerprint. A Dask worker of ``Main.py --engine dask --blocks W`` then reads only its own
blocks' files (``read_block``) instead of memory-mapping the whole dataset; the files are written
one block at a time from the memory-mapped CSR, so writing them needs memory for one block only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mfrec.errors import DataError
from mfrec.io import write_json, write_npz

SIDES = {"user": "users", "movie": "movies"}


def blocks_by_count(indptr, n_blocks: int) -> np.ndarray:
    """Boundaries (n_blocks + 1) of contiguous row ranges with about equal numbers of entries; a
    range may be empty when there are fewer rows than blocks or one row outweighs a block."""
    indptr = np.asarray(indptr, np.int64)
    n_rows, total = len(indptr) - 1, int(indptr[-1])
    if n_blocks < 1:
        raise ValueError(f"n_blocks must be at least 1, got {n_blocks}")
    targets = np.arange(1, n_blocks) * (total / n_blocks)
    inner = np.searchsorted(indptr, targets, side="left")
    bounds = np.concatenate([[0], np.clip(inner, 0, n_rows), [n_rows]]).astype(np.int64)
    return np.maximum.accumulate(bounds)


def csr_block(csr, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Rows lo..hi of a CSR as its own CSR (indptr from 0), copied out of the memory map."""
    indptr = np.asarray(csr.indptr[lo:hi + 1], np.int64)
    a, b = int(indptr[0]), int(indptr[-1])
    return {"indptr": indptr - a, "indices": np.array(csr.indices[a:b], np.int32),
            "values": np.array(csr.values[a:b], np.float32)}


def blocks_dir(dataset_path: str | os.PathLike, n_blocks: int) -> Path:
    return Path(dataset_path) / f"blocks-{int(n_blocks)}"


def _identity(dataset) -> dict[str, Any]:
    checksums = getattr(getattr(dataset, "manifest", None), "checksums", None) or {}
    return {"n_users": int(dataset.n_users), "n_movies": int(dataset.n_movies), "n_train": int(len(dataset.train)),
            "checksums": dict(sorted(checksums.items()))}


def write_blocks(dataset, n_blocks: int, progress=None) -> Path:
    """Write ``<dataset>/blocks-W/`` for ``dataset`` (a loaded ``Dataset``), one block at a time;
    returns the folder. blocks.json is written last, so a folder without it is unfinished."""
    if n_blocks < 1:
        raise DataError(f"--blocks must be at least 1, got {n_blocks}")
    out = blocks_dir(dataset.path, n_blocks)
    out.mkdir(exist_ok=True)
    (out / "blocks.json").unlink(missing_ok=True)
    bounds = {}
    for side, csr in (("user", dataset.train_by_user), ("movie", dataset.train_by_movie)):
        b = blocks_by_count(csr.indptr, n_blocks)
        for i in range(n_blocks):
            write_npz(out / f"{SIDES[side]}-{i:03d}.npz", csr_block(csr, int(b[i]), int(b[i + 1])))
        bounds[side] = b.tolist()
        if progress:
            progress(f"wrote {n_blocks} {side} blocks to {out}")
    write_json(out / "blocks.json", {"n_blocks": int(n_blocks), "bounds": bounds, **_identity(dataset)})
    return out


def find_blocks(dataset, n_blocks: int) -> Path | None:
    """The dataset's ``blocks-W/`` folder when it is complete and was written from this version of
    the dataset; None otherwise (the engine then reads the dataset's own files)."""
    out = blocks_dir(dataset.path, n_blocks)
    try:
        info = json.loads((out / "blocks.json").read_text())
    except (OSError, ValueError):
        return None
    same = all(info.get(k) == v for k, v in _identity(dataset).items())
    return out if same and info.get("n_blocks") == n_blocks else None


def read_block(folder: str | os.PathLike, side: str, index: int) -> dict[str, np.ndarray]:
    """One block file's CSR; a missing or damaged file is a DataError naming it."""
    f = Path(folder) / f"{SIDES[side]}-{int(index):03d}.npz"
    try:
        with np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in ("indptr", "indices", "values")}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"{f} is not a readable block file ({e}); write the blocks again with "
                        "Data_processing.py --blocks") from None
