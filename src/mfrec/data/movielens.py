"""Readers for every MovieLens release, each from its real on-disk format.

=================  ==========================================================================
ml-100k            ``u.data`` (tabs), ``u.item`` (pipes, ISO-8859-1, 19 genre flags),
                   ``u.user`` (pipes), canonical splits ``u1..u5/ua/ub .base/.test``
ml-1m              ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``, ISO-8859-1)
ml-10m             ``ratings.dat`` (half stars), ``movies.dat``; no users file
ml-20m ... latest  ``ratings.csv``, ``movies.csv`` (quoted titles, ``|`` genres), no users file
=================  ==========================================================================

Ratings files go through the parallel Numba parser ``mfrec.kernels.parse.parse_ratings`` (a
25M-line ``ratings.csv`` takes seconds) into a polars frame, or, with ``engine="polars"``, become a
lazy Polars scan (:mod:`mfrec.data.lazy`) that ``prepare`` runs; the small movie and user tables are
parsed line by line so every error names its line. Text is read as bytes and
decoded explicitly: UTF-8 where it is valid, ISO-8859-1 for any line that is not (the ml-100k and
ml-1m files are ISO-8859-1; a stray byte elsewhere never crashes the reader).

Every problem (missing, empty or truncated file, malformed line, value out of range, corrupt zip)
raises :class:`~mfrec.errors.DataError` with one sentence naming the file and the line or value.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from mfrec.data.raw import ML_GENRES, NO_GENRES, RawData
from mfrec.errors import DataError

ML100K_GENRES = ("unknown", *ML_GENRES)
CANONICAL_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
# the year in a title's last "(YYYY)" (or "(YYYY-YYYY)"), which may be followed by tags like "(V)"
_YEAR = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)(?:\s*\([^()]*\))*\s*$")


@dataclass(frozen=True)
class Format:
    """Where a release keeps its files and what its ratings look like."""

    layout: str  # "100k" | "dat" | "csv"
    ratings: str
    movies: str
    users: str | None
    scale: tuple[float, float]
    step: float


FORMATS: dict[str, Format] = {
    "ml-100k": Format("100k", "u.data", "u.item", "u.user", (1.0, 5.0), 1.0),
    "ml-1m": Format("dat", "ratings.dat", "movies.dat", "users.dat", (1.0, 5.0), 1.0),
    "ml-10m": Format("dat", "ratings.dat", "movies.dat", None, (0.5, 5.0), 0.5),
    "ml-20m": Format("csv", "ratings.csv", "movies.csv", None, (0.5, 5.0), 0.5),
    "ml-25m": Format("csv", "ratings.csv", "movies.csv", None, (0.5, 5.0), 0.5),
    "ml-32m": Format("csv", "ratings.csv", "movies.csv", None, (0.5, 5.0), 0.5),
    "ml-latest-small": Format("csv", "ratings.csv", "movies.csv", None, (0.5, 5.0), 0.5),
    "ml-latest": Format("csv", "ratings.csv", "movies.csv", None, (0.5, 5.0), 0.5),
}
DATASETS = tuple(FORMATS)


# -- entry points ------------------------------------------------------------------------------
def read_dataset(
    dataset: str,
    source: str | Path | None = None,
    data_dir: str | Path = "Data",
    progress: Callable[[str], None] | None = None,
    base_url: str | None = None,
    callback: Callable[[object], None] | None = None,
    engine: str = "numba",
) -> RawData:
    """Read a MovieLens release from ``source`` (an extracted folder or the GroupLens zip).

    Without ``source`` the zip is downloaded into ``data_dir`` (or reused from there) first. With
    ``engine="polars"`` or ``"stream"`` the ratings of a folder are a lazy Polars scan (:mod:`mfrec.data.lazy`),
    read when ``prepare`` runs; a zip's ratings are parsed at once (its extracted copy is temporary).
    """
    say = progress or (lambda _msg: None)
    if dataset not in FORMATS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of: synthetic, {', '.join(DATASETS)}")
    if source is None:
        from mfrec.data.download import download

        source = download(dataset, data_dir=data_dir, base_url=base_url, callback=callback)
        say(f"using {source}")
    src = Path(source)
    if not src.exists():
        raise DataError(f"--source {src} does not exist (give an extracted {dataset} folder or the GroupLens {dataset}.zip)")
    fmt = FORMATS[dataset]
    if src.is_file() and src.name in (fmt.ratings, fmt.movies, fmt.users):  # one of its files: read its folder
        return _read_folder(dataset, src.parent, str(src.parent), say, lazy=engine in ("polars", "stream"))
    if src.is_file():
        return _read_zip(dataset, src, say)
    return _read_folder(dataset, _find_root(dataset, src), str(src), say, lazy=engine in ("polars", "stream"))


def canonical_test_pairs(raw: RawData, split_name: str):
    """The (userId, movieId) pairs of ml-100k's canonical ``<split>.test``, checked against ``.base``.

    ``<split>.base`` and ``<split>.test`` must be disjoint and together hold every rating of u.data.
    """
    import polars as pl

    if split_name not in CANONICAL_SPLITS:
        raise DataError(f"{split_name!r} is not a canonical ml-100k split; choose one of: {', '.join(CANONICAL_SPLITS)}")
    if split_name not in raw.canonical_splits:
        raise DataError(
            f"split {split_name} needs {split_name}.base and {split_name}.test, which {raw.source} does not have"
            if raw.dataset == "ml-100k"
            else f"split {split_name} is one of ml-100k's canonical files and needs --dataset ml-100k"
        )
    base, test = raw.canonical_splits[split_name]
    ratings = raw.ratings
    if isinstance(ratings, pl.LazyFrame):  # the Polars engine's scan: ml-100k's u.data is small, read it
        ratings = raw.rescan() if raw.rescan is not None else ratings.collect()
    total = ratings.height
    if base.height + test.height != total:
        raise DataError(
            f"{split_name}.base ({base.height:,} ratings) and {split_name}.test ({test.height:,}) do not add up to "
            f"the {total:,} ratings of {raw.ratings_file}"
        )
    pairs = test.select("userId", "movieId")
    overlap = pairs.join(base.select("userId", "movieId"), on=["userId", "movieId"], how="semi")
    if overlap.height:
        u, m = overlap.row(0)
        raise DataError(f"{split_name}.test and {split_name}.base both hold user {u}'s rating of movie {m}")
    missing = pairs.join(ratings.select("userId", "movieId"), on=["userId", "movieId"], how="anti")
    if missing.height:
        u, m = missing.row(0)
        raise DataError(f"{split_name}.test has user {u}'s rating of movie {m}, which is not in {raw.ratings_file}")
    return pairs.with_columns(pl.col("userId").cast(pl.Int64), pl.col("movieId").cast(pl.Int64))


def read_id_template(folder: str | Path):
    """The movies and users tables of an ML-1M-style folder (movies.dat and users.dat; no ratings needed)."""
    root = Path(folder)
    movies_path, users_path = root / "movies.dat", root / "users.dat"
    for p in (movies_path, users_path):
        if not p.is_file():
            raise DataError(f"--ids-from {root} has no {p.name} (it needs an ML-1M movies.dat and users.dat)")
    movies, _ = read_dat_movies(movies_path, str(movies_path))
    return movies, read_dat_users(users_path, str(users_path))


# -- finding the files -------------------------------------------------------------------------
def _find_root(dataset: str, folder: Path) -> Path:
    """The folder holding the release's files: ``folder`` itself or its single subfolder."""
    fmt = FORMATS[dataset]
    if (folder / fmt.ratings).exists():
        return folder
    subs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
    hits = [d for d in subs if (d / fmt.ratings).exists()]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        names = ", ".join(d.name for d in sorted(hits))
        raise DataError(f"{folder} holds several folders with a {fmt.ratings} ({names}); give the {dataset} one as --source")
    raise DataError(
        f"{folder} has no {fmt.ratings}: give the extracted {dataset} folder (or the folder that contains it) or the GroupLens zip"
    )


def _read_zip(dataset: str, path: Path, say: Callable[[str], None]) -> RawData:
    fmt = FORMATS[dataset]
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is not a readable zip file ({e}); download it again or pass the extracted folder") from None
    with zf, tempfile.TemporaryDirectory(prefix="mfrec-zip-") as tmp:
        members = {}
        for info in zf.infolist():
            if info.is_dir():
                continue
            parts = info.filename.split("/")
            if len(parts) <= 2 and parts[-1]:
                members.setdefault(parts[-1], info)
        if fmt.ratings not in members:
            raise DataError(f"{path} has no {fmt.ratings}; is it the GroupLens {dataset}.zip?")
        wanted = [fmt.ratings, fmt.movies] + ([fmt.users] if fmt.users else [])
        if fmt.layout == "100k":
            wanted += ["u.genre"] + [f"{s}.{part}" for s in CANONICAL_SPLITS for part in ("base", "test")]
        say(f"extracting {', '.join(w for w in wanted if w in members)} from {path.name}")
        for name in wanted:
            info = members.get(name)
            if info is None:
                continue
            try:
                with zf.open(info) as src, open(Path(tmp) / name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
            except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError, NotImplementedError) as e:
                raise DataError(f"{path} is corrupt: {info.filename} cannot be extracted ({e}); download it again") from None
        return _read_folder(dataset, Path(tmp), str(path), say, display=path.name)


def _read_folder(dataset: str, root: Path, source: str, say: Callable[[str], None], display: str | None = None,
                 lazy: bool = False) -> RawData:
    fmt = FORMATS[dataset]
    where = display or str(root)

    def need(name: str) -> Path:
        p = root / name
        if not p.is_file():
            raise DataError(f"{where} has no {name}, which {dataset} needs")
        return p

    extra: dict[str, Any] = {}
    canonical: dict[str, tuple[Any, Any]] = {}
    ratings_path = need(fmt.ratings)
    movies_path = need(fmt.movies)
    users_path = need(fmt.users) if fmt.users else None
    label = lambda p: f"{display}:{p.name}" if display else str(p)  # noqa: E731
    say(f"{'scanning' if lazy else 'reading'} {label(ratings_path)}")
    rescan = None
    if lazy:
        from mfrec.data.lazy import scan_ratings

        sep, header = _LAYOUTS[fmt.layout]
        rescan = lambda: read_ratings(ratings_path, label(ratings_path), fmt, sep, header)  # noqa: E731
        ratings = scan_ratings(ratings_path, label(ratings_path), sep, header)
    if fmt.layout == "100k":
        if not lazy:
            ratings = read_tab_ratings(ratings_path, label(ratings_path), fmt)
        genre_names = read_u_genre(root / "u.genre", label(root / "u.genre")) if (root / "u.genre").is_file() else ML100K_GENRES
        movies, enc = read_u_item(movies_path, label(movies_path), genre_names)
        users = read_u_user(users_path, label(users_path))  # type: ignore[arg-type]
        for s in CANONICAL_SPLITS:
            b, t = root / f"{s}.base", root / f"{s}.test"
            if b.is_file() and t.is_file():
                canonical[s] = (read_tab_ratings(b, label(b), fmt), read_tab_ratings(t, label(t), fmt))
    elif fmt.layout == "dat":
        if not lazy:
            ratings = read_dat_ratings(ratings_path, label(ratings_path), fmt)
        movies, enc = read_dat_movies(movies_path, label(movies_path))
        users = read_dat_users(users_path, label(users_path)) if users_path else None
    else:
        if not lazy:
            ratings = read_csv_ratings(ratings_path, label(ratings_path), fmt)
        movies, enc = read_csv_movies(movies_path, label(movies_path))
        users = None
    if enc != "utf-8":
        extra["movies_encoding"] = enc
    counted = "" if lazy else f"{ratings.height:,} ratings, "
    say(f"read {counted}{movies.height:,} movies" + (f", {users.height:,} users" if users is not None else ""))
    return RawData(
        dataset=dataset,
        ratings=ratings,
        movies=movies,
        users=users,
        rating_scale=fmt.scale,
        rating_step=fmt.step,
        source=source,
        ratings_file=label(ratings_path),
        canonical_splits=canonical,
        extra=extra,
        rescan=rescan,
    )


# -- text helpers ------------------------------------------------------------------------------
def _read_bytes(path: Path, label: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{label} cannot be read ({e.strerror or e})") from None
    if not data.strip():
        raise DataError(f"{label} is empty")
    return data


def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes to text: UTF-8 when the whole file is valid UTF-8, else ISO-8859-1 for the lines that are not.

    Returns the text and the encoding used ("utf-8", "iso-8859-1" or "mixed").
    """
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    out, n_latin = [], 0
    lines = data.split(b"\n")
    for line in lines:
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode("latin-1"))
            n_latin += 1
    non_ascii_utf8 = sum(1 for line in out if not line.isascii()) - n_latin
    return "\n".join(out), ("iso-8859-1" if non_ascii_utf8 == 0 else "mixed")


def _lines(text: str):
    """(line number, line) for the non-empty lines; a blank line anywhere but the end is malformed."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    for i, line in enumerate(lines, 1):
        yield i, line.rstrip("\r")


def parse_year(title: str) -> int | None:
    m = _YEAR.search(title)
    return int(m.group(1)) if m else None


def _int(value: str, label: str, lineno: int, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise DataError(f"{label} line {lineno}: {what} {value!r} is not a whole number") from None


def _movies_frame(ids: list[int], titles: list[str], genres: list[list[str]], label: str):
    import polars as pl

    _check_unique(ids, label, "movie")
    frame = pl.DataFrame(
        {
            "movieId": ids,
            "title": titles,
            "year": [parse_year(t) for t in titles],
            # joined and split again by polars: much faster than building a list column from Python lists
            "genres": ["|".join(gs) for gs in genres],
        },
        schema={"movieId": pl.Int64, "title": pl.String, "year": pl.Int32, "genres": pl.String},
    )
    return frame.with_columns(pl.col("genres").str.split("|").list.eval(pl.element().filter(pl.element() != "")))


def _split_genres(field: str) -> list[str]:
    field = field.strip()
    if field in NO_GENRES:
        return []
    return [g for g in field.split("|") if g and g not in NO_GENRES]


# -- movies and users --------------------------------------------------------------------------
def read_u_genre(path: Path, label: str) -> tuple[str, ...]:
    text, _ = decode_text(_read_bytes(path, label))
    names = []
    for lineno, line in _lines(text):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 2:
            raise DataError(f"{label} line {lineno}: expected 'genre|index', got {line!r}")
        name, idx = parts
        if _int(idx, label, lineno, "genre index") != len(names):
            raise DataError(f"{label} line {lineno}: genre index {idx} is out of order")
        names.append(name)
    return tuple(names)


def read_u_item(path: Path, label: str, genre_names: tuple[str, ...] = ML100K_GENRES):
    """ml-100k's u.item: id|title|release date|video release date|IMDb URL|one 0/1 flag per genre."""
    text, enc = decode_text(_read_bytes(path, label))
    n_fields = 5 + len(genre_names)
    ids, titles, genres = [], [], []
    for lineno, line in _lines(text):
        parts = line.split("|")
        if len(parts) != n_fields:
            raise DataError(f"{label} line {lineno}: expected {n_fields} '|'-separated fields, got {len(parts)}")
        ids.append(_int(parts[0], label, lineno, "movie id"))
        titles.append(parts[1])
        flags = parts[5:]
        gs = []
        for name, flag in zip(genre_names, flags):
            if flag not in ("0", "1"):
                raise DataError(f"{label} line {lineno}: genre flag {flag!r} for {name} is not 0 or 1")
            if flag == "1" and name not in NO_GENRES:
                gs.append(name)
        genres.append(gs)
    return _movies_frame(ids, titles, genres, label), enc


def read_u_user(path: Path, label: str):
    """ml-100k's u.user: id|age|gender|occupation (a name)|zip."""
    import polars as pl

    text, _ = decode_text(_read_bytes(path, label))
    uid, age, gender, occ, zips = [], [], [], [], []
    for lineno, line in _lines(text):
        parts = line.split("|")
        if len(parts) != 5:
            raise DataError(f"{label} line {lineno}: expected 5 '|'-separated fields (id|age|gender|occupation|zip), got {len(parts)}")
        uid.append(_int(parts[0], label, lineno, "user id"))
        age.append(_int(parts[1], label, lineno, "age"))
        if parts[2] not in ("M", "F"):
            raise DataError(f"{label} line {lineno}: gender {parts[2]!r} is not M or F")
        gender.append(parts[2])
        occ.append(parts[3])
        zips.append(parts[4])
    _check_unique(uid, label, "user")
    return pl.DataFrame(
        {"userId": uid, "gender": gender, "age": age, "occupation": occ, "zip": zips},
        schema={"userId": pl.Int64, "gender": pl.String, "age": pl.Int32, "occupation": pl.String, "zip": pl.String},
    )


def read_dat_users(path: Path, label: str):
    """ml-1m's users.dat: UserID::Gender::Age::Occupation (a code 0-20)::Zip-code."""
    import polars as pl

    text, _ = decode_text(_read_bytes(path, label))
    uid, age, gender, occ, zips = [], [], [], [], []
    for lineno, line in _lines(text):
        parts = line.split("::")
        if len(parts) != 5:
            raise DataError(f"{label} line {lineno}: expected 5 '::'-separated fields (UserID::Gender::Age::Occupation::Zip-code), got {len(parts)}")
        uid.append(_int(parts[0], label, lineno, "user id"))
        if parts[1] not in ("M", "F"):
            raise DataError(f"{label} line {lineno}: gender {parts[1]!r} is not M or F")
        gender.append(parts[1])
        age.append(_int(parts[2], label, lineno, "age"))
        occ.append(_int(parts[3], label, lineno, "occupation"))
        zips.append(parts[4])
    _check_unique(uid, label, "user")
    return pl.DataFrame(
        {"userId": uid, "gender": gender, "age": age, "occupation": occ, "zip": zips},
        schema={"userId": pl.Int64, "gender": pl.String, "age": pl.Int32, "occupation": pl.Int32, "zip": pl.String},
    )


def _check_unique(ids: list[int], label: str, kind: str) -> None:
    seen: set[int] = set()
    for i in ids:
        if i in seen:
            raise DataError(f"{label}: {kind} id {i} appears twice")
        seen.add(i)


def read_dat_movies(path: Path, label: str):
    """ml-1m / ml-10m movies.dat: MovieID::Title::Genres (``|``-separated)."""
    text, enc = decode_text(_read_bytes(path, label))
    ids, titles, genres = [], [], []
    for lineno, line in _lines(text):
        head, sep1, rest = line.partition("::")
        title, sep2, gfield = rest.rpartition("::")
        if not sep1 or not sep2:
            raise DataError(f"{label} line {lineno}: expected MovieID::Title::Genres, got {line!r}")
        ids.append(_int(head, label, lineno, "movie id"))
        titles.append(title)
        genres.append(_split_genres(gfield))
    return _movies_frame(ids, titles, genres, label), enc


def read_csv_movies(path: Path, label: str):
    """ml-20m and later movies.csv: movieId,title,genres with RFC-4180 quoting."""
    import csv

    text, enc = decode_text(_read_bytes(path, label))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    ids, titles, genres = [], [], []
    try:
        header = next(reader)
        if [h.strip().lstrip("\ufeff") for h in header] != ["movieId", "title", "genres"]:
            raise DataError(f"{label} line 1: expected the header movieId,title,genres, got {','.join(header)!r}")
        for row in reader:
            lineno = reader.line_num
            if not row:
                raise DataError(f"{label} line {lineno} is empty")
            if len(row) != 3:
                raise DataError(f"{label} line {lineno}: expected 3 fields movieId,title,genres, got {len(row)}")
            ids.append(_int(row[0], label, lineno, "movie id"))
            titles.append(row[1])
            genres.append(_split_genres(row[2]))
    except csv.Error as e:
        raise DataError(f"{label} line {reader.line_num}: {e}") from None
    if not ids:
        raise DataError(f"{label} has a header but no movies")
    return _movies_frame(ids, titles, genres, label), enc


# -- ratings -----------------------------------------------------------------------------------
_LAYOUTS = {"100k": (b"\t", None), "dat": (b"::", None), "csv": (b",", "userId,movieId,rating,timestamp")}


def read_tab_ratings(path: Path, label: str, fmt: Format):
    """ml-100k u.data (and u1.base ...): user id, item id, rating, timestamp separated by tabs."""
    return read_ratings(path, label, fmt, sep=b"\t", header=None)


def read_dat_ratings(path: Path, label: str, fmt: Format):
    """ml-1m / ml-10m ratings.dat: UserID::MovieID::Rating::Timestamp."""
    return read_ratings(path, label, fmt, sep=b"::", header=None)


def read_csv_ratings(path: Path, label: str, fmt: Format):
    """ml-20m and later ratings.csv: header userId,movieId,rating,timestamp."""
    return read_ratings(path, label, fmt, sep=b",", header="userId,movieId,rating,timestamp")


_WHAT = {
    1: "the user id is not a whole number",
    2: "the movie id is not a whole number",
    3: "the rating is not a number",
    4: "the timestamp is not a whole number",
    5: "there is more on the line than four fields",
    7: "a user or movie id is negative or above 2,147,483,647",
    8: "the timestamp is beyond \u00b19,223,372,036,854,775,807 (a 64-bit integer)",
    9: "the rating is above 9,223,372,036,854,775,807, far off any rating scale",
}
_CUT_SHORT = (1, 2, 3, 4)  # a field missing or malformed: on the last line, the file may be truncated


def _ratings_window(path: Path, label: str, header: str | None) -> tuple[int, int, int]:
    """(first byte of the ratings, lines before it, end of the ratings without trailing whitespace).

    Raises DataError when the file cannot be read, holds only whitespace, has the wrong header or no
    ratings after it.
    """
    import numpy as np

    from mfrec.kernels.parse import content_end

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            first = f.readline()
    except OSError as e:
        raise DataError(f"{label} cannot be read ({e.strerror or e})") from None
    if size == 0:
        raise DataError(f"{label} is empty")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    end = content_end(buf, 0, size)
    del buf
    if end == 0:
        raise DataError(f"{label} is empty")
    start, skip = 0, 0
    if header is not None:
        got = first.decode("utf-8", "replace").strip().lstrip("\ufeff")
        if got.split(",")[:4] != header.split(","):
            raise DataError(f"{label} line 1: expected the header {header}, got {got[:80]!r}")
        start, skip = len(first), 1
    if end <= start:
        raise DataError(f"{label} has no ratings" + (" (only the header)" if header else ""))
    return start, skip, end


def read_ratings(path: Path, label: str, fmt: Format, sep: bytes, header: str | None):
    """Parse a ratings file of four numeric fields per line with the Numba parser (in parallel chunks).

    Returns a polars frame userId Int32, movieId Int32, rating Float32, timestamp Int64 (built on
    the parsed NumPy arrays without a copy). Trailing whitespace and blank lines are ignored. Any
    malformed line, a number too large for its column, or a rating off the dataset's scale raises
    DataError naming the file and the line.
    """
    import numpy as np
    import polars as pl

    from mfrec.kernels.parse import EMPTY_LINE, first_bad_rating, parse_ratings

    start, skip, end = _ratings_window(path, label, header)
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    user, movie, rating, ts, failure = parse_ratings(buf, sep, start, end)
    if failure is not None:
        lineno = skip + failure.line + 1
        text = bytes(buf[failure.pos:min(failure.end, failure.pos + 100)]).decode("utf-8", "replace").rstrip("\r\n")
        code = failure.code
        n = len(user)
        del buf
        if code == EMPTY_LINE:
            raise DataError(f"{label} line {lineno} is empty")
        fields = sep.decode().join(["userId", "movieId", "rating", "timestamp"]).replace("\t", "<tab>")
        last = lineno == skip + n
        raise DataError(
            f"{label} line {lineno}: {_WHAT.get(code, 'malformed')} (expected {fields}, got {text!r})"
            + (" - is the file truncated?" if last and code in _CUT_SHORT else "")
        )
    del buf
    lo, hi = fmt.scale
    bad = first_bad_rating(rating, lo, hi, fmt.step)
    if bad >= 0:
        steps = "whole stars" if fmt.step == 1 else "half stars"
        raise DataError(f"{label} line {bad + 1 + skip}: rating {float(rating[bad]):g} is not on the {lo:g}..{hi:g} scale in {steps}")
    return pl.DataFrame({"userId": user, "movieId": movie, "rating": rating, "timestamp": ts})
