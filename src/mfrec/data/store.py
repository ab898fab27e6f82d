"""The ``Training_data/<name>/`` store: writing a prepared dataset atomically and loading it back.

Layout (format version 1)::

    manifest.json          source, counts, split, seed, rating scale, genres, offsets, and the
                           size and SHA-256 of every other file (see mfrec.data.manifest)
    user.npy   int32       user index of every rating        \\
    movie.npy  int32       movie index                        | sorted by (split, user, timestamp):
    rating.npy float32     rating                             | each split is one contiguous slice,
    timestamp.npy int64    seconds since the epoch            / train first, then val, then test
    train_user_indptr.npy  int64 (n_users+1)   CSR of the train split by user: the train slice of
                                               movie.npy / rating.npy are its indices / values
    train_movie_indptr.npy int64 (n_movies+1)  CSR of the train split by movie:
    train_movie_user.npy   int32                 user indices, sorted by user within a movie
    train_movie_rating.npy float32               ratings
    genre_indptr.npy       int64 (n_movies+1)  movie x genre incidence (CSR)
    genre_indices.npy      int32               genre indices into manifest["genres"]
    movies.parquet         movie, movieId, title, year, genres (list of str)
    users.parquet          user, userId, and gender/age/occupation/zip where the source has them
    .verified.json         (not in the manifest) size and mtime of each file when its SHA-256 last
                           matched, written by ``load(..., verify="auto")``

Everything is ``.npy`` so that ``load`` memory-maps it; the split arrays are views of the mapped
files, not copies.

Replacing a dataset (``write_dataset``) is crash-safe: the new folder is written complete under
``.<name>.tmp-<pid>-<hex>``, then, holding a lock on the root folder, the old folder is renamed to
``.<name>.old-<pid>-<hex>`` and the new one to ``<name>``. An interrupt between those two renames
puts the old folder back at once; a kill there leaves it aside, and ``recover`` renames it back at
the next prepare under that root or the next load of that name. Scratch folders whose process is
gone are deleted by the next prepare; they are never listed as datasets.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from mfrec.data.manifest import AGAIN, FORMAT_VERSION, SPLITS, Manifest, missing_file, sha256
from mfrec.data.names import is_plain, plain_name
from mfrec.errors import DataError, UnknownIdError, renamed_keywords
from mfrec.io import json_safe

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
DEFAULT_ROOT = Path("Training_data")

_RATING_ARRAYS = {"user": np.int32, "movie": np.int32, "rating": np.float32, "timestamp": np.int64}


class IdMap:
    """Original ids (``userId``/``movieId``) <-> contiguous indices.

    ``ids[index]`` is the original id; ``index_of`` raises ``UnknownIdError`` for an id it does not
    know rather than returning -1.
    """

    def __init__(self, ids: np.ndarray, kind: str = "id"):
        ids = np.asarray(ids, dtype=np.int64)
        self.ids = ids
        self.kind = kind
        self._order = np.argsort(ids, kind="stable")
        self._sorted = ids[self._order]

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, original_id: object) -> bool:
        try:
            self.index_of(original_id)  # type: ignore[arg-type]
        except (UnknownIdError, TypeError, ValueError):
            return False
        return True

    def index_of(self, original_ids: Any) -> Any:
        """Index (or array of indices) of original id(s); raises on any unknown id."""
        scalar = np.ndim(original_ids) == 0
        query = np.atleast_1d(np.asarray(original_ids, dtype=np.int64))
        pos = np.searchsorted(self._sorted, query)
        pos_clipped = np.minimum(pos, len(self._sorted) - 1)
        ok = (pos < len(self._sorted)) & (self._sorted[pos_clipped] == query) if len(self._sorted) else np.zeros(len(query), bool)
        if not np.all(ok):
            bad = query[~ok][:5].tolist()
            raise UnknownIdError(f"unknown {self.kind} id{'s' if len(bad) > 1 else ''}: {', '.join(map(str, bad))}")
        idx = self._order[pos_clipped].astype(np.int32)
        return int(idx[0]) if scalar else idx


@dataclass(frozen=True)
class Split:
    """One split of the ratings: parallel arrays of user index, movie index, rating, timestamp."""

    name: str
    user: np.ndarray
    movie: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return len(self.rating)


@dataclass(frozen=True)
class CSR:
    """Compressed rows: row r's entries are ``indices[indptr[r]:indptr[r+1]]`` with ``values``."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_counts(self) -> np.ndarray:
        return np.diff(self.indptr)


class Dataset:
    """A prepared dataset loaded from ``Training_data/<name>/``; arrays are memory-mapped.

    Loading checks manifest.json (see :class:`~mfrec.data.manifest.Manifest`), the size of every
    file it records, and each array's dtype and length; ``verify=True`` also checks every file's
    SHA-256, ``verify="auto"`` does so only when a file's size or modification time changed since
    the last check that passed. Any fault is one :class:`~mfrec.errors.DataError` sentence.
    """

    def __init__(self, path: str | os.PathLike, mmap: bool = True, verify: bool | str = False):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise DataError(f"{self.path} is not a prepared dataset (no manifest.json); run Data_processing.py first")
        self.manifest = Manifest.read(manifest_path)
        self.manifest.check_files(self.path, full=verify)
        mode = "r" if mmap else None
        self.name: str = self.manifest.name
        self.n_users: int = int(self.manifest.counts["users"])
        self.n_movies: int = int(self.manifest.counts["movies"])
        self.genres: list[str] = list(self.manifest.genres)
        self.rating_scale: tuple[float, float] = self.manifest.rating_scale
        n_ratings = self.manifest.counts.get("ratings")
        arrays = {}
        for k, dtype in _RATING_ARRAYS.items():
            arrays[k] = self._npy(f"{k}.npy", mode, dtype, n_ratings)
            n_ratings = len(arrays[k])
        self._splits: dict[str, Split] = {}
        for split in SPLITS:
            if split in self.manifest.split_offsets:
                a, b = self.manifest.split_offsets[split]
                if b > n_ratings:
                    raise DataError(f"{manifest_path} puts the {split} split at ratings {a:,}..{b:,} but user.npy holds "
                                    f"{n_ratings:,}: the dataset is damaged; {AGAIN}")
                self._splits[split] = Split(split, *(arrays[k][a:b] for k in _RATING_ARRAYS))
        self.ratings = Split("all", *(arrays[k] for k in _RATING_ARRAYS))
        train = self._splits["train"]
        self.train_by_user = CSR(self._npy("train_user_indptr.npy", mode, np.int64, self.n_users + 1), train.movie, train.rating)
        self.train_by_movie = CSR(
            self._npy("train_movie_indptr.npy", mode, np.int64, self.n_movies + 1),
            self._npy("train_movie_user.npy", mode, np.int32, len(train)),
            self._npy("train_movie_rating.npy", mode, np.float32, len(train)),
        )
        self.movie_genres = CSR(
            self._npy("genre_indptr.npy", mode, np.int64, self.n_movies + 1),
            self._npy("genre_indices.npy", mode, np.int32),
            np.ones(0, np.float32),
        )
        self._movies = None
        self._users = None
        self._user_ids: IdMap | None = None
        self._movie_ids: IdMap | None = None

    def verify(self, full: bool | str = True) -> None:
        """Check every file's SHA-256 against manifest.json (what ``load(..., verify=True)`` does);
        ``full="auto"`` hashes only files whose size or modification time changed since the last check."""
        self.manifest.check_files(self.path, full=full)

    # -- arrays -------------------------------------------------------------------------------
    def _npy(self, fname: str, mode: str | None, dtype: Any, length: int | None = None) -> np.ndarray:
        """A 1-D array of ``dtype`` (and ``length`` when given) from ``fname``, else a DataError."""
        f = self.path / fname
        if not f.is_file():
            raise missing_file(f)
        try:
            a = np.load(f, mmap_mode=mode, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{f} is not a readable .npy file ({e}); {AGAIN}") from None
        if a.dtype != dtype or a.ndim != 1 or (length is not None and len(a) != length):
            want = f"{np.dtype(dtype)} x {length:,}" if length is not None else f"1-D {np.dtype(dtype)}"
            raise DataError(f"{f} holds {a.dtype} {'x'.join(f'{n:,}' for n in a.shape) or 'scalar'} where the "
                            f"dataset needs {want}: the file is damaged; {AGAIN}")
        return a

    @property
    def train(self) -> Split:
        return self._splits["train"]

    @property
    def test(self) -> Split | None:
        return self._splits.get("test")

    @property
    def val(self) -> Split | None:
        return self._splits.get("val")

    def split(self, name: str) -> Split | None:
        return self._splits.get(name)

    validation_in_train = False  # True on the copy train_with_validation returns

    def train_with_validation(self) -> "Dataset":
        """A copy whose training split (and its CSRs) also holds the validation ratings, and that has no
        validation split: for retraining a tuned model on every rating it may learn from. The test
        split is untouched. Without a validation split, the dataset itself."""
        import copy

        from mfrec.kernels.csr import csr_from_rows, transpose_csr

        val = self.val
        if val is None or len(val) == 0:
            return self
        fields = ("user", "movie", "rating", "timestamp")
        parts = [np.concatenate([np.asarray(getattr(self.train, f)), np.asarray(getattr(val, f))]) for f in fields]
        order = np.argsort(parts[0], kind="stable")  # by user; a user's training ratings, then validation
        merged = Split("train", *(p[order] for p in parts))
        out = copy.copy(self)
        out._splits = {k: v for k, v in self._splits.items() if k != "val"}
        out._splits["train"] = merged
        out.train_by_user = CSR(csr_from_rows(merged.user, self.n_users), merged.movie, merged.rating)
        out.train_by_movie = CSR(*transpose_csr(merged.user, merged.movie, merged.rating, self.n_movies))
        out.validation_in_train = True
        return out

    @property
    def genre_matrix(self):
        """The movie x genre incidence as a ``scipy.sparse.csr_matrix`` of float32 ones."""
        import scipy.sparse as sp

        g = self.movie_genres
        return sp.csr_matrix(
            (np.ones(len(g.indices), np.float32), np.asarray(g.indices), np.asarray(g.indptr)),
            shape=(self.n_movies, len(self.genres)),
        )

    # -- tables -------------------------------------------------------------------------------
    @property
    def movies(self):
        """Polars table: movie (index), movieId, title, year, genres (list of str)."""
        if self._movies is None:
            self._movies = self._parquet("movies.parquet")
        return self._movies

    @property
    def users(self):
        """Polars table: user (index), userId, and demographics where the source has them."""
        if self._users is None:
            self._users = self._parquet("users.parquet")
        return self._users

    def _parquet(self, fname: str):
        return read_parquet(self.path / fname)

    @property
    def user_ids(self) -> IdMap:
        if self._user_ids is None:
            self._user_ids = IdMap(self.users["userId"].to_numpy(), "user")
        return self._user_ids

    @property
    def movie_ids(self) -> IdMap:
        if self._movie_ids is None:
            self._movie_ids = IdMap(self.movies["movieId"].to_numpy(), "movie")
        return self._movie_ids

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={len(v):,}" for s, v in self._splits.items())
        return f"Dataset({self.name!r}: {self.n_users:,} users, {self.n_movies:,} movies, {parts})"


def resolve(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A dataset folder from a path, or a name under ``Training_data/``."""
    p = Path(name_or_path)
    if (p / "manifest.json").is_file():
        return p
    base = Path(root) if root is not None else DEFAULT_ROOT
    q = base / str(name_or_path)
    if not (q / "manifest.json").is_file() and is_plain(str(name_or_path)):
        recover(base, str(name_or_path))  # a replacement killed between its two renames
    if (q / "manifest.json").is_file():
        return q
    available = list_datasets(base)
    hint = f"; prepared datasets: {', '.join(available)}" if available else "; run Data_processing.py to prepare one"
    raise DataError(f"no prepared dataset {str(name_or_path)!r} (looked for {p} and {q}){hint}")


def list_datasets(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the prepared datasets under ``root`` (hidden scratch folders are never listed)."""
    base = Path(root) if root is not None else DEFAULT_ROOT
    if not base.is_dir():
        return []
    return sorted(d.name for d in base.iterdir() if not d.name.startswith(".") and (d / "manifest.json").is_file())


@renamed_keywords(root="data_root")
def load(name_or_path: str | os.PathLike, data_root: str | os.PathLike | None = None, mmap: bool = True,
         verify: bool | str = False) -> Dataset:
    """Load a prepared dataset by folder path or by name under ``data_root`` (default ``Training_data/``;
    ``--data-root`` on the command line).

    Every file's size is checked against manifest.json; ``verify=True`` also checks its SHA-256,
    ``verify="auto"`` (what Main.py does) once per version of the files: the hashes are computed
    again only when a file's size or modification time changed since the last check that passed.
    """
    return Dataset(resolve(name_or_path, data_root), mmap=mmap, verify=verify)


def read_parquet(f: Path):
    """A polars table from a dataset's parquet file; a missing or damaged file is a DataError."""
    import polars as pl

    if not f.is_file():
        raise missing_file(f)
    try:
        return pl.read_parquet(f)
    except (OSError, pl.exceptions.PolarsError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{f} is not a readable parquet file ({reason}); {AGAIN}") from None


# -- writing -----------------------------------------------------------------------------------


def write_dataset(
    out_dir: str | os.PathLike,
    *,
    user: np.ndarray,
    movie: np.ndarray,
    rating: np.ndarray,
    timestamp: np.ndarray,
    split: np.ndarray,
    n_users: int,
    n_movies: int,
    movies,
    users,
    genres: list[str],
    genre_indptr: np.ndarray,
    genre_indices: np.ndarray,
    manifest: dict[str, Any],
    presorted: bool = False,
) -> Path:
    """Write a dataset folder: everything goes to a scratch sibling, swapped in at the end.

    ``split`` holds 0/1/2 (train/val/test) per rating. Unless ``presorted``, the ratings are sorted
    by (split, user, timestamp) here. The dataset's name (``manifest["name"]``, else the folder's)
    must be a plain name (see :mod:`mfrec.data.names`). An existing ``out_dir`` is replaced only
    once the new folder is complete, and only when it is a prepared dataset (has a manifest.json);
    see the module's docstring for what an interrupt or a kill leaves behind.
    """
    def fill(tmp: Path, save: Callable[[str, np.ndarray], None]) -> tuple[dict[str, list[int]], int]:
        nonlocal user, movie, rating, timestamp, split
        if not presorted:
            order = np.lexsort((timestamp, user, split))
            user, movie, rating, timestamp, split = (a[order] for a in (user, movie, rating, timestamp, split))
        counts = np.bincount(split, minlength=3)
        offsets = split_offsets(counts)
        arrays = {
            "user": user.astype(np.int32, copy=False),
            "movie": movie.astype(np.int32, copy=False),
            "rating": rating.astype(np.float32, copy=False),
            "timestamp": timestamp.astype(np.int64, copy=False),
        }
        a, b = offsets["train"]
        tu, tm, tr = arrays["user"][a:b], arrays["movie"][a:b], arrays["rating"][a:b]
        from mfrec.kernels.csr import csr_from_rows, transpose_csr

        arrays["train_user_indptr"] = csr_from_rows(tu, n_users)
        mptr, muser, mrating = transpose_csr(tu, tm, tr, n_movies)
        arrays["train_movie_indptr"], arrays["train_movie_user"], arrays["train_movie_rating"] = mptr, muser, mrating
        for key, arr in arrays.items():
            save(key, arr)
        return offsets, len(rating)

    return write_dataset_with(out_dir, fill, n_users=n_users, n_movies=n_movies, movies=movies, users=users,
                              genres=genres, genre_indptr=genre_indptr, genre_indices=genre_indices, manifest=manifest)


def split_offsets(counts) -> dict[str, list[int]]:
    """Each split's [start, stop) in the (split, user, timestamp) order from its count (val only when it has ratings)."""
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    return {name: [int(bounds[c]), int(bounds[c + 1])] for name, c in SPLIT_CODES.items() if counts[c] or name != "val"}


RATING_FILES = ("user", "movie", "rating", "timestamp", "train_user_indptr", "train_movie_indptr",
                "train_movie_user", "train_movie_rating")


def write_dataset_with(
    out_dir: str | os.PathLike,
    fill: Callable[[Path, Callable[[str, np.ndarray], None]], tuple[dict[str, list[int]], int]],
    *,
    n_users: int,
    n_movies: int,
    movies,
    users,
    genres: list[str],
    genre_indptr: np.ndarray,
    genre_indices: np.ndarray,
    manifest: dict[str, Any],
) -> Path:
    """``write_dataset`` for ratings that are written by ``fill(tmp, save)`` rather than passed as arrays.

    ``fill`` writes ``<key>.npy`` for every key of ``RATING_FILES`` into the scratch folder ``tmp``,
    either itself (``mfrec.data.stream`` writes them in pieces, in bounded memory) or by calling
    ``save(key, array)``, and returns (split offsets, number of ratings). The rest (tables, hashes,
    manifest, atomic swap-in) is ``write_dataset``'s.
    """
    out_dir = Path(out_dir)
    root = out_dir.parent
    ds_name = plain_name(manifest.get("name") or out_dir.name, "dataset name", SCRATCH_RESERVE, root)
    plain_name(out_dir.name, "dataset folder name", SCRATCH_RESERVE, root)
    _check_replaceable(out_dir, ds_name)
    root.mkdir(parents=True, exist_ok=True)
    recover(root)  # what earlier, interrupted writes left here
    tmp = _scratch(root, out_dir.name, "tmp")
    tmp.mkdir()
    try:
        from concurrent.futures import ThreadPoolExecutor

        # hash each file in a worker thread while the next one is written (hashlib releases the GIL)
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            hashes = {}

            def save(key: str, arr: np.ndarray) -> None:
                f = tmp / f"{key}.npy"
                np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
                hashes[f.name] = pool.submit(sha256, f)
                _swap_point("writing")

            offsets, n_ratings = fill(tmp, save)
            save("genre_indptr", np.asarray(genre_indptr, np.int64))
            save("genre_indices", np.asarray(genre_indices, np.int32))
            for key in RATING_FILES:  # the ones fill wrote itself
                f = tmp / f"{key}.npy"
                if f.name not in hashes:
                    if not f.is_file():
                        raise DataError(f"{f} was not written: the dataset writer left out {key}.npy")
                    hashes[f.name] = pool.submit(sha256, f)
            movies.write_parquet(tmp / "movies.parquet")
            users.write_parquet(tmp / "users.parquet")
            for f in (tmp / "movies.parquet", tmp / "users.parquet"):
                hashes[f.name] = pool.submit(sha256, f)
            checksums = {name: hashes[name].result() for name in sorted(hashes)}
        full = Manifest.from_dict({
            "format_version": FORMAT_VERSION,
            **json_safe(manifest),
            "name": ds_name,
            "counts": {
                "users": int(n_users),
                "movies": int(n_movies),
                "ratings": int(n_ratings),
                **{name: stop - start for name, (start, stop) in offsets.items()},
                **json_safe(manifest.get("counts", {})),
            },
            "genres": list(genres),
            "split_offsets": offsets,
            "checksums": checksums,
            "sizes": {name: (tmp / name).stat().st_size for name in checksums},
        }, source="the manifest to write")
        full.write(tmp / "manifest.json")
        _swap_point("written")
        old = _swap_in(tmp, out_dir, ds_name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        _remove(old)
    return out_dir


# -- the swap and what an interrupted one leaves ---------------------------------------------------
SCRATCH_RESERVE = 25  # bytes a scratch name adds to the dataset's name: "." ".old-" pid(<=10) "-" 8 hex
_SCRATCH = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?:(?P<pid>\d{1,10})-)?[0-9a-f]{8}")


def _swap_point(stage: str) -> None:
    """Called at each step of ``write_dataset`` ("writing", "written", "locked", "aside", "swapped");
    the crash tests replace it to kill the process there."""


def _scratch(root: Path, name: str, kind: str) -> Path:
    """A new scratch folder name beside the dataset: ``.<name>.<kind>-<pid>-<8 hex>``."""
    return root / f".{name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def _check_replaceable(out_dir: Path, name: str) -> None:
    """Refuse to replace anything but a prepared dataset: the store deletes only what it created."""
    if (out_dir.exists() or out_dir.is_symlink()) and not (out_dir / "manifest.json").is_file():
        raise DataError(f"{out_dir} exists and is not a prepared dataset (no manifest.json), so it is left as it "
                        f"is: move it away or prepare under another name than {name!r}")


def _swap_in(tmp: Path, out_dir: Path, name: str) -> Path | None:
    """Rename the complete ``tmp`` to ``out_dir``; the replaced dataset's scratch path (to delete), if any.

    Holding the root's lock, the old folder is renamed aside and ``tmp`` into its place. An exception
    (Ctrl-C) between the two renames puts the old folder back; a kill there is undone by ``recover``.
    """
    with _locked(out_dir.parent):
        _swap_point("locked")
        _check_replaceable(out_dir, name)  # again: another process may have made it meanwhile
        if not (out_dir / "manifest.json").is_file():
            tmp.rename(out_dir)
            return None
        old = _scratch(out_dir.parent, out_dir.name, "old")
        out_dir.rename(old)
        try:
            _swap_point("aside")
            tmp.rename(out_dir)
        except BaseException:
            if not out_dir.exists():
                old.rename(out_dir)
            raise
        _swap_point("swapped")
        return old


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder`` itself (no lock file is left); where the platform or
    the file system has none, go on unlocked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # pragma: no cover - a file system without flock
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def _alive(pid: str | None) -> bool:
    """Whether the process that named a scratch folder may still be writing it."""
    if pid is None:  # written by a version without the pid in the name, which took no lock
        return False
    if int(pid) == os.getpid() or os.name == "nt":  # this process; Windows cannot be asked safely
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def recover(root: str | os.PathLike, name: str | None = None) -> None:
    """Undo what interrupted ``write_dataset`` calls left under ``root`` (only for ``name`` when given).

    A dataset renamed aside (``.<name>.old-*``) whose ``<name>`` is missing is renamed back; then the
    scratch folders of processes that are gone are deleted. Nothing else is touched, and a folder that
    cannot be renamed or deleted (no permission) is left for a later run.
    """
    root = Path(root)
    if all(_alive(m["pid"]) for _, m in _leftovers(root, name)):
        return  # nothing, or only what running processes are writing: no need to wait for the lock
    with _locked(root):
        found = _leftovers(root, name)
        keep = set()  # names whose dataset is missing and could not be put back: delete none of theirs
        for ds in sorted({m["name"] for _, m in found}):
            target = root / ds
            if target.exists() or target.is_symlink():
                continue
            aside = [p for p, m in found if m["name"] == ds and m["kind"] == "old" and not _alive(m["pid"])
                     and (p / "manifest.json").is_file()]
            if aside:
                newest = max(aside, key=lambda p: (p / "manifest.json").stat().st_mtime_ns)
                try:
                    newest.rename(target)
                except OSError:
                    keep.add(ds)
        for p, m in found:
            if m["name"] not in keep and not _alive(m["pid"]):
                _remove(p)


def _remove(p: Path) -> None:
    """Delete a scratch folder (or the symlink a replaced dataset was); what cannot be deleted stays."""
    if p.is_symlink():
        p.unlink(missing_ok=True)
    else:
        shutil.rmtree(p, ignore_errors=True)


def _leftovers(root: Path, name: str | None) -> list[tuple[Path, dict]]:
    """The scratch folders under ``root`` (of ``name`` when given), each with its parsed name."""
    try:
        entries = list(os.scandir(root))
    except OSError:  # no such folder, or not readable
        return []
    out = []
    for e in entries:
        m = _SCRATCH.fullmatch(e.name)
        if m and (name is None or m["name"] == name) and (e.is_dir(follow_symlinks=False) or e.is_symlink()):
            out.append((Path(e.path), m.groupdict()))
    return out
