"""``manifest.json`` of a prepared dataset: what it holds, validated on load, and the file check.

The manifest describes a ``Training_data/<name>/`` folder (see :mod:`mfrec.data.store` for the
layout) and records the size and SHA-256 of every file in it. :meth:`Manifest.read` turns a
damaged manifest (not JSON, empty, a missing or wrong-typed field, an unknown format version)
into one :class:`~mfrec.errors.DataError` sentence naming the file and the fault;
:meth:`Manifest.check_files` compares the folder's files with what was recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mfrec.errors import DataError

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
AGAIN = "prepare the dataset again"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _doc(text: str, **kw: Any) -> Any:
    return field(metadata={"doc": text}, **kw)


@dataclass(frozen=True)
class Manifest:
    """The contents of one ``manifest.json``; ``to_dict`` gives back what ``from_dict`` was given."""

    name: str = _doc("the dataset's name (its folder under Training_data/)")
    counts: dict[str, int] = _doc("users, movies, ratings, per split and what prepare dropped")
    genres: tuple[str, ...] = _doc("genre names; genre_indices.npy indexes into this list")
    rating_scale: tuple[float, float] = _doc("lowest and highest rating of the source")
    split_offsets: dict[str, tuple[int, int]] = _doc("split name -> [start, stop) in the rating arrays")
    format_version: int = _doc("layout version of the folder", default=FORMAT_VERSION)
    checksums: dict[str, str] = _doc("file name -> SHA-256 (hex) as written", default_factory=dict)
    sizes: dict[str, int] = _doc("file name -> size in bytes as written (absent before sizes were recorded)",
                                 default_factory=dict)
    dataset: str | None = _doc("source dataset kind: synthetic, ml-100k, ...", default=None)
    source: str | None = _doc("where the ratings were read from", default=None)
    created: str | None = _doc("local time the folder was written (ISO 8601)", default=None)
    rating_step: float | None = _doc("rating granularity (1 or 0.5)", default=None)
    seed: int | None = _doc("seed of the split", default=None)
    split: dict[str, Any] = _doc("how the ratings were split (method, fractions, cut-offs)", default_factory=dict)
    filters: dict[str, Any] = _doc("minimum ratings per user and per movie", default_factory=dict)
    extra: dict[str, Any] = _doc("facts the reader or generator recorded about the source", default_factory=dict)
    imdb: dict[str, Any] | None = _doc("the IMDB join (files used, match counts) when prepared with --imdb",
                                       default=None)
    other: dict[str, Any] = _doc("fields this version does not know, kept as they were", default_factory=dict)

    # -- dict <-> Manifest ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str | os.PathLike = "manifest.json") -> "Manifest":
        """A validated manifest; a fault raises one DataError sentence naming ``source``."""
        if not isinstance(data, dict):
            raise _damaged(source, f"it holds {_kind(data)} instead of a JSON object")
        if "format_version" not in data:
            raise _damaged(source, "it has no format_version")
        version = _get(data, "format_version", "integer", source)
        if version != FORMAT_VERSION:
            raise DataError(f"{source} has format version {version}; this mfrec reads version {FORMAT_VERSION}: {AGAIN}")
        missing = [k for k in ("name", "counts", "genres", "rating_scale", "split_offsets") if k not in data]
        if missing:
            raise _damaged(source, f"the field{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                                   f"{'are' if len(missing) > 1 else 'is'} missing")
        name = _get(data, "name", "string", source)
        counts = _get(data, "counts", "object", source)
        for key, value in counts.items():
            _want(value, "count", f"counts.{key}", source)
        for key in ("users", "movies"):
            if key not in counts:
                raise _damaged(source, f"counts.{key} is missing")
        genres = _get(data, "genres", "list", source)
        for i, g in enumerate(genres):
            _want(g, "string", f"genres[{i}]", source)
        scale = _get(data, "rating_scale", "list", source)
        if len(scale) != 2:
            raise _damaged(source, f"rating_scale should be [lowest, highest], found {len(scale)} numbers")
        lo, hi = (_want(v, "number", f"rating_scale[{i}]", source) for i, v in enumerate(scale))
        if not lo < hi:
            raise _damaged(source, f"rating_scale [{lo}, {hi}] is not increasing")
        offsets = _offsets(_get(data, "split_offsets", "object", source), counts.get("ratings"), source)
        checksums = _get(data, "checksums", "object", source, {})
        for fname, digest in checksums.items():
            _file_name(fname, "checksums", source)
            if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
                raise _damaged(source, f"checksums.{fname} should be 64 hex digits, found {_kind(digest)}")
        sizes = _get(data, "sizes", "object", source, {})
        for fname, size in sizes.items():
            _file_name(fname, "sizes", source)
            _want(size, "count", f"sizes.{fname}", source)
        known = {f.name for f in fields(cls)} - {"other"}
        return cls(
            name=name, counts=dict(counts), genres=tuple(genres), rating_scale=(lo, hi), split_offsets=offsets,
            format_version=version, checksums=dict(checksums), sizes=dict(sizes),
            dataset=_get(data, "dataset", "string", source, None),
            source=_get(data, "source", "string", source, None),
            created=_get(data, "created", "string", source, None),
            rating_step=_get(data, "rating_step", "number", source, None),
            seed=_get(data, "seed", "integer", source, None),
            split=_get(data, "split", "object", source, {}),
            filters=_get(data, "filters", "object", source, {}),
            extra=_get(data, "extra", "object", source, {}),
            imdb=_get(data, "imdb", "object", source, None),
            other={k: v for k, v in data.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to manifest.json (optional fields left out when unset)."""
        out: dict[str, Any] = {"format_version": self.format_version, "name": self.name}
        for key in ("dataset", "source", "created"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out["rating_scale"] = list(self.rating_scale)
        for key in ("rating_step", "seed"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("split", "filters"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out["counts"] = dict(self.counts)
        if self.extra:
            out["extra"] = self.extra
        out["genres"] = list(self.genres)
        out["split_offsets"] = {k: list(v) for k, v in self.split_offsets.items()}
        out["checksums"] = dict(self.checksums)
        if self.sizes:
            out["sizes"] = dict(self.sizes)
        if self.imdb is not None:
            out["imdb"] = self.imdb
        out.update(self.other)
        return out

    # -- files ------------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | os.PathLike) -> "Manifest":
        """Read and validate ``path``; any fault is one DataError sentence naming the file."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise DataError(f"{path} is missing: {path.parent} is not a prepared dataset; {AGAIN}") from None
        except OSError as e:
            raise DataError(f"{path} cannot be read ({e.strerror or e}); {AGAIN}") from None
        except UnicodeDecodeError as e:
            raise _damaged(path, f"byte {e.start} is not UTF-8 text") from None
        if not text.strip():
            raise _damaged(path, "it is empty")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise _damaged(path, f"it is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
        return cls.from_dict(data, source=path)

    def write(self, path: str | os.PathLike) -> Path:
        """Write manifest.json atomically."""
        from mfrec.io import write_json

        return write_json(path, self.to_dict())

    def with_files(self, folder: str | os.PathLike, names: list[str]) -> "Manifest":
        """A copy recording the current size and SHA-256 of ``folder``'s files ``names``."""
        folder = Path(folder)
        checksums = {**self.checksums, **{n: sha256(folder / n) for n in names}}
        sizes = {**self.sizes, **{n: (folder / n).stat().st_size for n in names}}
        return replace(self, checksums=dict(sorted(checksums.items())), sizes=dict(sorted(sizes.items())))

    def check_files(self, folder: str | os.PathLike, full: bool | str = False) -> None:
        """Check the files recorded in the manifest against ``folder``.

        Every file must be there with its recorded size (manifests without sizes skip this). The
        SHA-256 is computed when ``full`` or when a size differs; a file whose hash matches is
        accepted. ``full="auto"`` hashes only when some file's size or modification time differs
        from the last check that passed (recorded in ``.verified.json``, see :func:`check_cached`).
        A fault raises one DataError sentence: which file, expected vs found, what to do.
        """
        if full == "auto":
            return check_cached(self, folder)
        if full not in (True, False):
            raise ValueError(f"verify should be True, False or 'auto', not {full!r}")
        folder = Path(folder)
        for fname in sorted(set(self.checksums) | set(self.sizes)):
            f = folder / fname
            try:
                size = f.stat().st_size
            except FileNotFoundError:
                raise missing_file(f) from None
            want_size = self.sizes.get(fname)
            want_hash = self.checksums.get(fname)
            size_differs = want_size is not None and size != want_size
            if size_differs and want_hash is None:
                raise DataError(f"{f} has {size:,} bytes but manifest.json records {want_size:,}: "
                                f"the file was changed or damaged; {AGAIN}")
            if want_hash is None or not (full or size_differs):
                continue
            got = sha256(f)
            if got != want_hash:
                expected = f"SHA-256 {want_hash[:16]}..."
                if want_size is not None:
                    expected = f"{want_size:,} bytes, {expected}"
                raise DataError(f"{f} does not match manifest.json (expected {expected}, found {size:,} bytes, "
                                f"SHA-256 {got[:16]}...): the file was changed or damaged; {AGAIN}")


VERIFIED = ".verified.json"  # in the dataset folder: (size, mtime_ns) of each file when its hashes last matched


def _stamps(manifest: Manifest, folder: Path) -> dict[str, list[int]] | None:
    """[size, mtime_ns] of manifest.json and every recorded file (None when one is missing)."""
    out = {}
    for fname in ["manifest.json", *sorted(set(manifest.checksums) | set(manifest.sizes))]:
        try:
            st = (folder / fname).stat()
        except OSError:
            return None
        out[fname] = [st.st_size, st.st_mtime_ns]
    return out


def check_cached(manifest: Manifest, folder: str | os.PathLike) -> None:
    """The full SHA-256 check of ``folder``, skipped when no file changed since the last one passed.

    "Changed" means another size or modification time (nanoseconds) than ``.verified.json``
    records, so this catches damage, edits and replaced files, not a rewrite that restores the old
    time stamp (``verify=True`` hashes regardless). After a check that passes the stamps, taken
    before hashing, are written atomically; a folder that cannot be written is hashed every time.
    """
    folder = Path(folder)
    before = _stamps(manifest, folder)
    cache = folder / VERIFIED
    try:
        if before is not None and json.loads(cache.read_text()).get("files") == before:
            manifest.check_files(folder, full=False)  # the cheap check still runs
            return
    except (OSError, ValueError, AttributeError):  # no cache yet, or a damaged one: hash
        pass
    manifest.check_files(folder, full=True)
    if before is not None:
        from mfrec.io import write_json

        try:
            write_json(cache, {"files": before})
        except OSError:  # a read-only dataset: nothing is cached
            pass


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def missing_file(f: Path) -> DataError:
    return DataError(f"{f} is missing: the prepared dataset is incomplete; {AGAIN}")


# -- validation helpers ----------------------------------------------------------------------------
_MISSING = object()


def _damaged(source: str | os.PathLike, what: str) -> DataError:
    return DataError(f"{source} is damaged: {what}; {AGAIN}")


def _kind(value: Any) -> str:
    """How a JSON value reads in a sentence: 'a string "abc"', 'null', 'an integer 3'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"an integer {value}"
    if isinstance(value, float):
        return f"a number {value:g}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string {json.dumps(shown)}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_CHECKS = {
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a non-negative integer"),
    "number": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "string": (lambda v: isinstance(v, str), "a string"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "object": (lambda v: isinstance(v, dict), "an object"),
}


def _want(value: Any, kind: str, where: str, source: str | os.PathLike) -> Any:
    ok, wanted = _CHECKS[kind]
    if not ok(value):
        raise _damaged(source, f"{where} should be {wanted}, found {_kind(value)}")
    return value


def _get(data: dict, key: str, kind: str, source: str | os.PathLike, default: Any = _MISSING) -> Any:
    """``data[key]`` checked to be of ``kind``; an optional field (``default`` given) may be absent or null."""
    value = data.get(key)
    if value is None and default is not _MISSING:
        return default
    return _want(value, kind, key, source)


def _file_name(name: str, where: str, source: str | os.PathLike) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise _damaged(source, f"{where} names {json.dumps(name)}, which is not a file name in the dataset folder")


def _offsets(raw: dict, n_ratings: int | None, source: str | os.PathLike) -> dict[str, tuple[int, int]]:
    if "train" not in raw:
        raise _damaged(source, "split_offsets has no train split")
    out = {}
    for split, pair in raw.items():
        where = f"split_offsets.{split}"
        if split not in SPLITS:
            raise _damaged(source, f"{where} is not one of {', '.join(SPLITS)}")
        if not (isinstance(pair, list) and len(pair) == 2):
            raise _damaged(source, f"{where} should be [start, stop], found {_kind(pair)}")
        start, stop = (_want(v, "count", where, source) for v in pair)
        limit = n_ratings if n_ratings is not None else stop
        if not start <= stop <= limit:
            raise _damaged(source, f"{where} [{start}, {stop}] is not a range within the {limit:,} ratings")
        out[split] = (start, stop)
    return out
