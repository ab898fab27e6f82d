"""``Data_processing.py`` / ``mfrec prepare``: a MovieLens or synthetic dataset into Training_data/."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from mfrec.cli.common import DATA_ROOT_OPTION, Command, echo_table, friendly_errors

# written beside --write-raw files: their ratings are generated, whichever reader reads them back
SYNTHETIC_MARKER = "mfrec-synthetic.json"

DATASETS = (
    "synthetic", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small", "ml-latest",
)
SPLITS = ("random", "user-last", "time", "none", "u1", "u2", "u3", "u4", "u5", "ua", "ub")


@click.command(cls=Command, renamed={"--root": "--data-root"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dataset", type=click.Choice(DATASETS), default="synthetic", show_default=True,
              help="Which dataset. 'synthetic' is generated here and needs no files.")
@click.option("--source", type=click.Path(), default=None,
              help="An extracted MovieLens folder or the GroupLens zip. Without it, the dataset is downloaded into --data-dir.")
@click.option("--data-dir", type=click.Path(), default="Data", show_default=True, help="Where downloads go.")
@click.option("--split", "split_method", type=click.Choice(SPLITS), default="random", show_default=True,
              help="random: by --test-fraction; user-last: each user's latest --holdout ratings; "
                   "time: a global --cutoff; u1..u5, ua, ub: ml-100k's canonical files; none: all train.")
@click.option("--test-fraction", type=float, default=0.2, show_default=True, help="Test share (random, time).")
@click.option("--val-fraction", type=float, default=0.0, show_default=True,
              help="Validation share (random, time, and of the .base file for ml-100k u1..ub), or with user-last a validation block as large as the test one.")
@click.option("--holdout", type=float, default=1.0, show_default=True,
              help="user-last: ratings per user held out (>= 1) or a fraction of each user's ratings (< 1).")
@click.option("--cutoff", type=float, default=None, help="time: unix timestamp; ratings at or after it are test.")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed for the split and the synthetic generator.")
@click.option("--name", default=None, help="Folder name under --data-root: letters, digits, . _ - (default: DATASET-SPLIT).")
@DATA_ROOT_OPTION
@click.option("--min-user-ratings", type=int, default=0, show_default=True, help="Drop users with fewer ratings (iterated with the movie filter).")
@click.option("--min-movie-ratings", type=int, default=0, show_default=True, help="Drop movies with fewer ratings.")
@click.option("--shape", type=click.Choice(["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m"]), default="ml-1m",
              show_default=True, help="synthetic: size preset (users, movies, ratings) of a real dataset.")
@click.option("--ratings", "n_ratings", type=int, default=None, help="synthetic: number of ratings (overrides --shape).")
@click.option("--users", "n_users", type=int, default=None, help="synthetic: number of users (overrides --shape).")
@click.option("--movies", "n_movies", type=int, default=None, help="synthetic: number of movies (overrides --shape).")
@click.option("--half-stars/--whole-stars", default=None,
              help="synthetic: ratings 0.5..5 in half stars (default for ml-20m shapes and larger) or 1..5.")
@click.option("--write-raw", type=click.Path(), default=None,
              help="synthetic: also write the raw files into this folder in --raw-format, so the real readers can be exercised.")
@click.option("--raw-format", type=click.Choice(["ml-25m", "ml-1m"]), default="ml-25m", show_default=True,
              help="Layout for --write-raw: ml-25m CSV files or ml-1m '::' .dat files.")
@click.option("--ids-from", type=click.Path(), default=None,
              help="synthetic: take movie ids, titles, genres and user ids, demographics from this ML-1M folder's "
                   "movies.dat and users.dat, so --write-raw --raw-format ml-1m writes a ratings.dat over the real ids.")
@click.option("--imdb", "imdb_dir", type=click.Path(), default=None,  # IMDB enrichment (mfrec.data.imdb)
              help="Folder with IMDB's title.basics / title.crew (/ name.basics) TSVs: add runtime, IMDB genres and "
                   "directors through the dataset's links.csv (ml-20m and later).")
@click.option("--blocks", "n_blocks", type=click.IntRange(1), default=None,
              help="Also write W user and movie block files (blocks-W/) that Main.py --engine dask --blocks W workers read.")
@click.option("--engine", type=click.Choice(["auto", "numba", "polars", "stream"]), default="auto", show_default=True,
              help="numba: the parallel parser and counting sorts (fastest); polars: a lazy Polars scan and "
                   "expressions run by its streaming engine; stream: passes over user partitions on disk, in memory "
                   "bounded by --memory-budget, for a ratings file larger than memory; auto: stream when the "
                   "ratings file would need more memory than is available (~2.5x its size) or --memory-budget is "
                   "given, else numba. All write the same dataset.")
@click.option("--memory-budget", default=None, metavar="SIZE",
              help="--engine stream: memory for the ratings at a time, e.g. 512MB or 2GB [half the available memory].")
@click.option("--analyze", is_flag=True, help="Afterwards, print statistics and write figures (same as `mfrec analyze`).")
@click.option("--quiet", is_flag=True, help="Only the summary.")
@friendly_errors
def prepare(dataset, source, data_dir, split_method, test_fraction, val_fraction, holdout, cutoff, seed, name, data_root,
            min_user_ratings, min_movie_ratings, shape, n_ratings, n_users, n_movies, half_stars, write_raw,
            raw_format, ids_from, analyze, quiet, imdb_dir=None, n_blocks=None, engine="auto", memory_budget=None):
    """Prepare a dataset into Training_data/<name>/ (--data-root) and print a short summary.

    \b
    Examples:
      python Data_processing.py                                  # ~1M synthetic ratings (ML-1M shape)
      python Data_processing.py --dataset ml-100k --source path/to/ml-100k --split u1   # -> ml-100k-u1
      python Data_processing.py --dataset ml-1m --source ml-1m.zip --split user-last --holdout 5   # -> ml-1m-user-last
      python Data_processing.py --shape ml-25m --write-raw Data/synth-25m   # 25M ratings + raw CSVs
    """
    import time

    from mfrec.data.names import plain_name
    from mfrec.data.prepare import prepare as run_prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.store import SCRATCH_RESERVE
    from mfrec.errors import DataError

    if name is not None:  # before the long part; the store checks again
        plain_name(name, "--name", SCRATCH_RESERVE, data_root)
    engine_note = None
    if engine == "auto" and memory_budget is not None:  # a budget asks for the engine that keeps to one
        engine = "stream"
    elif engine == "auto":
        from mfrec.data.stream import choose_engine

        engine, engine_note = choose_engine(_ratings_file(dataset, source))
    if memory_budget is not None:
        from mfrec.data.stream import parse_size

        if engine != "stream":
            raise DataError("--memory-budget goes with --engine stream")
        parse_size(memory_budget)

    t0 = time.perf_counter()
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(f"[{time.perf_counter() - t0:6.1f}s] {msg}", err=True))
    spec = SplitSpec(split_method, test_fraction, val_fraction, holdout, cutoff, seed)
    spec.validate()
    canonical_test = None
    if dataset == "synthetic":
        from mfrec.data.synthetic import SHAPES, SyntheticSpec, generate

        if source is not None:
            raise DataError("--source is for MovieLens datasets; the synthetic dataset is generated")
        su, sm, sr = SHAPES[shape]
        hs = half_stars if half_stars is not None else shape in ("ml-20m", "ml-25m", "ml-32m")
        template_movies = template_users = None
        if ids_from is not None:
            from mfrec.data.movielens import read_id_template

            if n_users is not None or n_movies is not None:
                raise DataError("--ids-from takes the users and movies from its files; leave out --users and --movies")
            template_movies, template_users = read_id_template(ids_from)
            su, sm = template_users.height, template_movies.height
        synth = SyntheticSpec(n_users or su, n_movies or sm, n_ratings or sr, seed, half_stars=hs)
        try:
            synth.validate()
        except ValueError as e:
            raise DataError(str(e)) from None
        say(f"generating {synth.n_ratings:,} synthetic ratings ({synth.n_users:,} users, {synth.n_movies:,} movies)")
        raw = generate(synth, movies=template_movies, users=template_users)
        if ids_from is not None:
            raw = replace(raw, source=f"{raw.source} over the movie and user ids of {ids_from}")
        if write_raw:
            from mfrec.data.writers import write_raw as write_raw_files
            from mfrec.io import write_json

            path = write_raw_files(raw, write_raw, raw_format)
            write_json(path / SYNTHETIC_MARKER, {"synthetic": True, "source": raw.source, "format": raw_format})
            say(f"wrote raw {raw_format} files to {path} (marked synthetic by {SYNTHETIC_MARKER})")
    else:
        from mfrec.data.movielens import canonical_test_pairs, read_dataset

        if write_raw or ids_from:
            raise DataError("--write-raw and --ids-from are for the synthetic dataset")
        from mfrec.cli.common import ProgressBar

        with ProgressBar(enabled=not quiet) as bar:
            raw = read_dataset(dataset, source=source, data_dir=data_dir, progress=say, callback=bar, engine=engine)
        canonical_test = lambda split_name: canonical_test_pairs(raw, split_name)  # noqa: E731
    links = None
    if imdb_dir:  # IMDB enrichment: find links.csv before the long part, so a dataset without one fails early
        from mfrec.data.imdb import find_links

        links = find_links(raw.source if dataset != "synthetic" else source, dataset)  # raw.source: also a downloaded zip
    if dataset != "synthetic":
        generated = synthetic_origin(raw.source)
        if generated is not None:  # files --write-raw wrote: say so in the name and the manifest's source
            raw = replace(raw, source=f"synthetic ratings in {dataset} files at {raw.source} ({generated})")
            name = name or f"synthetic-{dataset}-{split_method}"
    out, summary = run_prepare(
        raw, spec, name=name, root=data_root, min_user_ratings=min_user_ratings, min_movie_ratings=min_movie_ratings,
        canonical_test=canonical_test, progress=say, engine=engine, memory_budget=memory_budget,
    )
    rows = [
        ("dataset", f"{summary['dataset']} ({raw.source})"),
        ("users", f"{summary['users']:,}"),
        ("movies", f"{summary['movies']:,}"),
        ("ratings", f"{summary['ratings']:,}"),
        ("density", f"{summary['density']:.4%}"),
        ("rating scale", f"{summary['rating_scale']}, mean {summary['mean_rating']:.3f}"),
        ("genres", f"{summary['genres']}"),
        ("split", f"{summary['split']}: train {summary['train']:,} / val {summary['val']:,} / test {summary['test']:,}"),
        ("duplicates dropped", f"{summary['duplicates_dropped']:,}"),
        ("filtered out", f"{summary['filtered_out']:,}"),
        ("engine", summary["engine"] + (f" ({engine_note})" if engine_note else "")),
        ("seconds", f"{time.perf_counter() - t0:.1f}"),
    ]
    if links is not None:  # IMDB enrichment
        from mfrec.data.imdb import enrich_dataset

        info = enrich_dataset(out, imdb_dir, *links, progress=say)
        rows.insert(-1, ("IMDB", f"{info['linked']:,} movies linked, {info['with_runtime']:,} with runtime, "
                                 f"{info['with_directors']:,} with directors"))
    if n_blocks:
        from mfrec.data import load
        from mfrec.data.blocks import write_blocks

        rows.insert(-1, ("blocks", str(write_blocks(load(out), n_blocks, progress=say))))
    echo_table(rows, title=f"Prepared {out}")
    if analyze:
        from mfrec.cli.analyze import run_analysis

        run_analysis(str(out))


def _ratings_file(dataset: str, source) -> Path | None:
    """The ratings file of a MovieLens folder given as --source (None for a zip, a download or synthetic data)."""
    if dataset == "synthetic" or source is None:
        return None
    from mfrec.data.movielens import FORMATS, _find_root
    from mfrec.errors import DataError

    src = Path(source)
    if src.is_file():
        return src.parent / FORMATS[dataset].ratings if src.name != f"{dataset}.zip" and not src.suffix == ".zip" else None
    try:
        return _find_root(dataset, src) / FORMATS[dataset].ratings
    except (DataError, OSError):
        return None  # the reader says what is wrong


def synthetic_origin(source) -> str | None:
    """The generator's description when ``source`` (a folder of raw files) was written by ``--write-raw``."""
    marker = Path(str(source)) / SYNTHETIC_MARKER
    if not marker.is_file():
        return None
    import json

    try:
        return str(json.loads(marker.read_text()).get("source") or "generated by mfrec")
    except (OSError, ValueError, AttributeError):
        return "generated by mfrec"
