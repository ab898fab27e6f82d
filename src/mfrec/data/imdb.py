"""IMDB enrichment: runtime, IMDB genres and directors for a prepared dataset's movies.

MovieLens' ``links.csv`` (ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small; not ml-100k, ml-1m or
ml-10m) maps ``movieId`` to ``imdbId``; IMDB's public TSV files are keyed by ``tconst`` = ``"tt"`` +
the imdbId zero-padded to 7 digits (``114709`` -> ``tt0114709``; longer ids keep all their digits).
From the IMDB folder (``.tsv`` or ``.tsv.gz``):

- ``title.basics``: ``tconst``, ``runtimeMinutes``, ``genres`` (comma-separated), ``\\N`` = missing;
- ``title.crew``: ``tconst``, ``directors`` (comma-separated ``nconst``);
- ``name.basics`` (optional): ``nconst``, ``primaryName`` — director names instead of nconst ids.

The result is ``Training_data/<name>/imdb.parquet`` (movie, movieId, imdbId, tconst, runtime
minutes (null when unknown), imdb_genres list, directors list), recorded in manifest.json with its
size and checksum and an ``imdb`` entry (files used and match counts). The attention model uses runtime and director when
the file is there.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from mfrec.data.manifest import Manifest
from mfrec.data.store import read_parquet
from mfrec.errors import DataError
from mfrec.io import atomic_path

IMDB_FILE = "imdb.parquet"
NO_LINKS = ("ml-100k", "ml-1m", "ml-10m", "synthetic")


def tconst(imdb_id: int) -> str:
    """IMDB's title key for a links.csv imdbId: tt + zero-padded 7 digits."""
    if imdb_id < 0:
        raise DataError(f"imdbId {imdb_id} is negative")
    return f"tt{int(imdb_id):07d}"


def find_links(source: str | os.PathLike | None, dataset: str) -> tuple[str, bytes]:
    """(label, bytes) of the dataset's links.csv from a MovieLens folder or zip; a clear error without one."""
    if source is None:
        why = "is generated and" if dataset == "synthetic" else "was read without --source, so it"
        raise DataError(f"--imdb needs MovieLens' links.csv, but dataset {dataset} {why} has no links.csv; "
                        "give --source a MovieLens folder or zip that has one (ml-20m, ml-25m, ml-32m, ml-latest-small)")
    src = Path(source)
    if src.is_file() and zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "links.csv"]
            if names:
                return f"{src}:{names[0]}", zf.read(names[0])
    elif src.is_dir():
        for cand in [src / "links.csv", *sorted(src.glob("*/links.csv"))]:
            if cand.is_file():
                return str(cand), cand.read_bytes()
    hint = f" ({dataset} ships without one)" if dataset in NO_LINKS else ""
    raise DataError(f"{source} has no links.csv{hint}: IMDB enrichment needs MovieLens' movieId -> imdbId links "
                    "(ml-20m, ml-25m, ml-32m and ml-latest(-small) have them)")


def read_links(label: str, data: bytes):
    """links.csv -> polars (movieId Int64, imdbId Int64); rows without an imdbId are dropped."""
    import polars as pl

    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or "movieId" not in header or "imdbId" not in header:
        raise DataError(f"{label} line 1: expected a header with movieId and imdbId, got {header}")
    im, ii = header.index("movieId"), header.index("imdbId")
    mids, iids = [], []
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) <= max(im, ii):
            raise DataError(f"{label} line {lineno}: expected {len(header)} comma-separated fields, got {len(row)}")
        if not row[ii].strip():
            continue
        try:
            mids.append(int(row[im]))
            iids.append(int(row[ii]))
        except ValueError:
            raise DataError(f"{label} line {lineno}: movieId {row[im]!r} / imdbId {row[ii]!r} is not a whole number") from None
    return pl.DataFrame({"movieId": mids, "imdbId": iids}, schema={"movieId": pl.Int64, "imdbId": pl.Int64})


def _tsv(folder: Path, stem: str, required: bool = True) -> Path | None:
    for name in (f"{stem}.tsv", f"{stem}.tsv.gz"):
        if (folder / name).is_file():
            return folder / name
    if required:
        raise DataError(f"{folder} has no {stem}.tsv or {stem}.tsv.gz (IMDB's public files: datasets.imdbws.com)")
    return None


def _read_tsv(path: Path, columns: list[str], keys, key: str):
    """Columns of an IMDB TSV, only the rows whose ``key`` is in ``keys`` (``\\N`` = null)."""
    import gzip

    import polars as pl

    opts = dict(separator="\t", quote_char=None, null_values="\\N", infer_schema=False)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                frame = pl.read_csv(f.read(), **opts)
        else:
            frame = pl.read_csv(path, **opts)
    except (pl.exceptions.PolarsError, OSError, EOFError) as e:
        raise DataError(f"{path} is not a readable IMDB TSV file ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path} line 1: missing column(s) {', '.join(missing)} (has {', '.join(frame.columns)})")
    return frame.select(columns).filter(pl.col(key).is_in(pl.Series(list(keys)).implode()))


def imdb_table(movies, links, imdb_dir: str | os.PathLike):
    """Per movie index: movieId, imdbId, tconst, runtime, imdb_genres, directors (from the IMDB files)."""
    import polars as pl

    folder = Path(imdb_dir)
    if not folder.is_dir():
        raise DataError(f"--imdb {imdb_dir} is not a folder")
    base = (movies.select("movie", "movieId").join(links, on="movieId", how="inner")
            .with_columns(pl.col("imdbId").map_elements(tconst, return_dtype=pl.String).alias("tconst")))
    keys = set(base["tconst"].to_list())
    basics = _read_tsv(_tsv(folder, "title.basics"), ["tconst", "runtimeMinutes", "genres"], keys, "tconst")
    crew = _read_tsv(_tsv(folder, "title.crew"), ["tconst", "directors"], keys, "tconst")
    bad = basics.filter(pl.col("runtimeMinutes").is_not_null() & pl.col("runtimeMinutes").cast(pl.Int64, strict=False).is_null())
    if bad.height:
        raise DataError(f"{_tsv(folder, 'title.basics')}: runtimeMinutes {bad['runtimeMinutes'][0]!r} of {bad['tconst'][0]} is not a whole number")
    basics = basics.select(
        "tconst",
        pl.col("runtimeMinutes").cast(pl.Int32).alias("runtime"),
        pl.col("genres").fill_null("").str.split(",").list.eval(pl.element().filter(pl.element() != "")).alias("imdb_genres"),
    )
    crew = crew.select("tconst", pl.col("directors").fill_null("").str.split(",")
                       .list.eval(pl.element().filter(pl.element() != "")).alias("directors"))
    names_file = _tsv(folder, "name.basics", required=False)
    if names_file is not None:
        wanted = set(d for ds in crew["directors"].to_list() for d in ds)
        names = dict(_read_tsv(names_file, ["nconst", "primaryName"], wanted, "nconst").iter_rows())
        crew = crew.with_columns(pl.col("directors").map_elements(lambda ds: [names.get(d, d) for d in ds],
                                                                  return_dtype=pl.List(pl.String)))
    out = (base.join(basics, on="tconst", how="left").join(crew, on="tconst", how="left")
           .with_columns(pl.col("imdb_genres").fill_null(pl.lit([], pl.List(pl.String))),
                         pl.col("directors").fill_null(pl.lit([], pl.List(pl.String))))
           .sort("movie"))
    return out, {"title.basics": str(_tsv(folder, "title.basics")), "title.crew": str(_tsv(folder, "title.crew")),
                 "name.basics": str(names_file) if names_file else None}


def enrich_dataset(dataset_dir: str | os.PathLike, imdb_dir: str | os.PathLike, links_label: str, links_bytes: bytes,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write imdb.parquet into a prepared dataset folder and record the join in its manifest."""

    say = progress or (lambda _m: None)
    folder = Path(dataset_dir)
    manifest_file = folder / "manifest.json"
    if not manifest_file.is_file():
        raise DataError(f"{folder} is not a prepared dataset (no manifest.json)")
    manifest = Manifest.read(manifest_file)
    movies = read_parquet(folder / "movies.parquet")
    links = read_links(links_label, links_bytes)
    table, files = imdb_table(movies, links, imdb_dir)
    info = {
        "links": links_label,
        **files,
        "movies": movies.height,
        "linked": table.height,
        "with_runtime": int(table["runtime"].is_not_null().sum()),
        "with_directors": int((table["directors"].list.len() > 0).sum()),
    }
    with atomic_path(folder / IMDB_FILE) as tmp:
        table.write_parquet(tmp)
    replace(manifest, imdb=info).with_files(folder, [IMDB_FILE]).write(manifest_file)
    say(f"IMDB: {info['linked']:,} of {info['movies']:,} movies linked, {info['with_runtime']:,} with runtime, "
        f"{info['with_directors']:,} with directors")
    return info


def load_imdb(dataset):
    """The dataset's imdb.parquet as a polars frame, or None when it was prepared without --imdb."""
    f = Path(dataset.path) / IMDB_FILE
    if not f.is_file():
        return None
    return read_parquet(f)
