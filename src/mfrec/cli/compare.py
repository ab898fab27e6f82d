"""``mfrec compare``: several runs in one table (terminal + CSV), grouped by dataset, and one figure of their curves."""

from __future__ import annotations

import glob
from pathlib import Path

import click

from mfrec.cli.common import RUNS_ROOT_OPTION, Command, friendly_errors

_FLOAT_FORMATS = {"reg": "{:g}", "reg_bias": "{:g}", "seconds": "{:,.1f}"}


def resolve_runs(patterns, root) -> list[Path]:
    """Run folders from paths, names under ``root``, training --names, or globs (``'Experiments_/mf-*'``);
    duplicates dropped, order kept. Folders a glob matches that are not runs are skipped."""
    from mfrec.errors import MfrecError
    from mfrec.experiments import find_run

    out: list[Path] = []
    for pat in patterns:
        if any(ch in pat for ch in "*?[") and not Path(pat).exists():
            matches = sorted(glob.glob(pat)) or sorted(glob.glob(str(Path(root) / pat)))
            runs = [Path(m) for m in matches if Path(m).is_dir()
                    and ((Path(m) / "config.json").is_file() or (Path(m) / "summary.json").is_file())]
            if not runs:
                raise MfrecError(f"no runs match {pat!r}")
        else:
            runs = [find_run(pat, root)]
        for r in runs:
            if r.resolve() not in {p.resolve() for p in out}:
                out.append(r)
    return out


def format_table(frame) -> list[str]:
    """The comparison frame as aligned text lines (numbers right-aligned, '-' for missing)."""
    cols = [c for c in frame.columns if c != "dataset" or frame["dataset"].n_unique() > 1]
    cells = []
    for row in frame.select(cols).iter_rows(named=True):
        line = []
        for c in cols:
            v = row[c]
            if v is None:
                line.append("-")
            elif isinstance(v, float):
                line.append(_FLOAT_FORMATS.get(c, "{:.4f}").format(v))
            else:
                line.append(str(v))
        cells.append(line)
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(cols)]
    numeric = [frame[c].dtype.is_numeric() for c in cols]

    def fmt(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return [fmt(cols), fmt(["-" * w for w in widths]), *(fmt(r) for r in cells)]


def group_by_dataset(frame) -> list:
    """The comparison frame split by its ``dataset`` column, datasets in name order (runs without one
    last), each part keeping the frame's order (best test RMSE first)."""
    if "dataset" not in frame.columns or frame["dataset"].n_unique() <= 1:
        return [frame]
    parts = frame.partition_by("dataset", maintain_order=True)
    return sorted(parts, key=lambda part: (part["dataset"][0] is None, part["dataset"][0] or ""))


def _dataset(group) -> str:
    from mfrec.plots.compare import UNKNOWN_DATASET

    return group["dataset"][0] or UNKNOWN_DATASET


@click.command(cls=Command, renamed={"--root": "--runs-root"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("runs", nargs=-1, required=True)
@RUNS_ROOT_OPTION
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Where the table goes [default: <runs-root>/comparison.csv].")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Figure of the runs' validation/test RMSE curves [default: <runs-root>/comparison.png].")
@friendly_errors
def compare(runs, runs_root, csv_path, out):
    """Compare training runs: a table (model, k, reg, epochs, test RMSE/MAE, seconds, and ranking
    metrics such as hit@10 where runs have them) and one figure of their RMSE curves and ranking
    metrics. Runs on different datasets do not compare: each dataset gets its own table and its own
    row of panels.

    \b
    RUNS are run folders, names under --runs-root, training --names or quoted globs:
      mfrec compare 'Experiments_/ml-100k-u1-*' ml-100k-user-last-mf

    A run with a damaged file is left out and listed (on stderr) with what is wrong.
    """

    import polars as pl

    from mfrec.analysis.runs import comparison_table
    from mfrec.errors import MfrecError
    from mfrec.plots.compare import comparison_figure

    paths = resolve_runs(runs, runs_root)
    skipped: list = []
    table = comparison_table(paths, skipped=skipped)
    if len(skipped) == len(paths) == 1:
        raise MfrecError(skipped[0][1])
    for path, why in skipped:
        click.secho(f"skipped {path.name}: {why}", fg="yellow", err=True)
    if not table.height:
        raise MfrecError(f"none of the {len(paths)} runs could be read (each is listed above with what is wrong)")
    left_out = {p for p, _ in skipped}
    paths = [p for p in paths if p not in left_out]
    groups = group_by_dataset(table)
    if len(groups) == 1:
        click.secho(f"{len(paths)} run{'s' if len(paths) != 1 else ''} (best test RMSE first)", bold=True)
    else:  # RMSEs on different datasets do not compare: one table (and one row of the figure) per dataset
        click.secho(f"{len(paths)} runs on {len(groups)} datasets: their numbers compare only within a dataset, "
                    "so each dataset gets its own table and its own row in the figure", fg="yellow", err=True)
        table = pl.concat(groups)
    for i, group in enumerate(groups):
        if len(groups) > 1:
            if i:
                click.echo()
            click.secho(f"dataset {_dataset(group)}: {group.height} run{'s' if group.height != 1 else ''} "
                        "(best test RMSE first)", bold=True)
            # a column no run of this dataset has (ranking metrics, say) says nothing here
            group = group.select([c for c in group.columns if group[c].null_count() < group.height])
        for line in format_table(group):
            click.echo(line)
    csv_path = Path(csv_path) if csv_path else Path(runs_root) / "comparison.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    from mfrec.io import atomic_path

    with atomic_path(csv_path) as tmp:
        table.write_csv(tmp)
    click.echo(f"table: {csv_path}")
    by_name = {p.name: p for p in paths}
    ordered = [by_name[name] for name in table["run"].to_list() if name in by_name]  # best first, as in the table
    fig = comparison_figure(ordered, Path(out) if out else Path(runs_root) / "comparison.png")
    click.echo(f"figure: {fig}" if fig else "figure: none (no run has RMSE curves or ranking metrics)")
