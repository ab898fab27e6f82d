"""``mfrec analyze``: a prepared dataset's statistics in the terminal and its figures in figures/<name>/."""

from __future__ import annotations

import time
from pathlib import Path

import click

from mfrec.cli.common import DATA_ROOT_OPTION, VERIFY_OPTION, Command, echo_table, friendly_errors
from mfrec.errors import renamed_keywords


def _q(d: dict, unit: str = "", fmt: str = "{:,.0f}") -> str:
    if not d:
        return "-"
    f = lambda k: fmt.format(d[k])  # noqa: E731
    return (f"min {f('min')}, p5 {f('p5')}, p25 {f('p25')}, median {f('median')}, p75 {f('p75')}, "
            f"p95 {f('p95')}, max {f('max')}, mean {fmt.format(d['mean'])}{unit}")


def _date(ts: int | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def stats_rows(stats: dict) -> list[tuple[str, str]]:
    """The statistics table as (label, value) rows."""
    splits = " / ".join(f"{k} {v:,}" for k, v in stats["splits"].items())
    lo, hi = stats["rating_scale"]
    return [
        ("users", f"{stats['users']:,}"),
        ("movies", f"{stats['movies']:,} ({stats['movies_without_ratings']:,} without ratings)"),
        ("ratings", f"{stats['ratings']:,} ({splits})"),
        ("density", f"{stats['density']:.4%} of all user-movie pairs"),
        ("mean rating", f"{stats['mean_rating']:.3f} stars (sd {stats['std_rating']:.3f}, scale {lo:g}-{hi:g})"),
        ("ratings per user", _q(stats["ratings_per_user"])),
        ("ratings per movie", _q(stats["ratings_per_movie"])),
        ("long tail", f"top 20% of users hold {stats['top20_users_share']:.0%} of ratings, "
                      f"top 20% of movies {stats['top20_movies_share']:.0%}"),
        ("genres", f"{stats['genres']} ({stats['genres_per_movie']:.2f} per movie, "
                   f"{stats['movies_without_genre']:,} movies without one)"),
        ("time span", f"{_date(stats['first_rating'])} to {_date(stats['last_rating'])} ({stats['span_days']:,.0f} days)"),
        ("train sequence length", _q(stats["train_sequence_length"], " ratings per user")),
        ("days active per user", _q(stats["active_days_per_user"], " days", "{:,.1f}")),
        ("demographics", ", ".join(stats["demographics"]) or "none"),
    ]


@renamed_keywords(root="data_root")
def run_analysis(data: str, out: str | Path | None = None, data_root: str | None = None, echo=click.echo,
                 verify: bool = False) -> list[Path]:
    """Print the statistics of dataset ``data`` (name or path) and write its figures; returns the PNG paths.

    Figures go to ``out`` (default ``figures/<name>/``); ``verify`` checks every file's SHA-256
    first. ``Data_processing.py --analyze`` calls this.
    """
    from mfrec.analysis.dataset import dataset_stats
    from mfrec.data import load
    from mfrec.plots.dataset import plot_dataset

    ds = load(data, data_root=data_root, verify=verify)
    stats = dataset_stats(ds)
    echo_table(stats_rows(stats), title=f"Dataset {ds.name} ({ds.path})")
    out_dir = Path(out) if out is not None else Path("figures") / ds.name
    paths = plot_dataset(ds, out_dir)
    echo(f"wrote {len(paths)} figures to {out_dir}/: " + ", ".join(p.name for p in paths))
    return paths


@click.command(cls=Command, renamed={"--root": "--data-root"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", required=True, help="A prepared dataset: name under --data-root or a folder path.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Figure folder [default: figures/<name>].")
@DATA_ROOT_OPTION
@VERIFY_OPTION
@friendly_errors
def analyze(data, out, data_root, verify):
    """Print a dataset's statistics and write its figures (PNG).

    \b
    Figures: rating_distribution, long_tail (log-log), genre_ratings, genre_mean_rating,
    ratings_over_time, and demographics where the users table has gender/age.
    \b
    Example:
      mfrec analyze --data ml-100k-u1            # -> figures/ml-100k-u1/*.png
    """
    run_analysis(data, out, data_root=data_root, verify=verify)
