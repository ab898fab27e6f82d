"""``mfrec tune``: a grid or random search over a model's hyperparameters on the validation split
(``mfrec.tuning.tune``); prints the leaderboard and where the files are."""

from __future__ import annotations

import click

from mfrec.cli.common import DATA_ROOT_OPTION, RUNS_ROOT_OPTION, Command, friendly_errors, top_option

MODELS = ("bias", "mf", "mf-genre", "neumf", "sequential", "genre-embedding", "attention")


@click.command(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", required=True, metavar="NAME_OR_PATH",
              help="Prepared dataset with a validation split: a name under --data-root or a folder.")
@DATA_ROOT_OPTION
@click.option("--model", required=True, metavar="MODEL",
              help=f"The model to tune: {', '.join(MODELS)} (or any other model Main.py trains).")
@click.option("--grid", "grid_items", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="An option and the values to try, e.g. --grid factors=16,64 --grid reg=0.2,0.4,0.8; "
                   "every combination is one trial.")
@click.option("--random", "n_random", type=int, default=None,
              help="Train only this many settings of the grid, drawn at random with --seed.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help="An option fixed for every trial, e.g. --set epochs=15.")
@click.option("--metric", default=None,
              help="The summary.json number that decides [val_rmse; ranking models: val_ndcg@10]; "
                   "names with rmse/mae/loss are minimised, others maximised.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: trials in processes on this machine; dask: on a Dask cluster (needs the dask extra).")
@click.option("--workers", type=int, default=None,
              help="Trials at a time: local processes, or the LocalCluster's workers with --engine dask [cores].")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="An existing Dask cluster's scheduler (implies --engine dask).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --random draw.")
@click.option("--name", default=None,
              help="The parent folder under --runs-root [tune-DATASET-MODEL-<hash of the search>]; the same "
                   "search finds its folder again and trains only the trials not yet done.")
@RUNS_ROOT_OPTION
@top_option(12, "Leaderboard rows printed.")
@click.option("--quiet", is_flag=True, help="No progress bar; only the leaderboard.")
@friendly_errors
def tune(data, data_root, model, grid_items, n_random, settings, metric, engine, workers, scheduler, seed, name,
         runs_root, top, quiet):
    """Search a model's hyperparameters on the validation split; every trial is a run folder.

    \b
    Examples:
      mfrec tune --data demo --model mf --grid factors=16,64 --grid reg=0.2,0.8
      mfrec tune --data demo --model mf-genre --grid reg-genre=0.1,0.3,1 --random 2 --workers 2
      mfrec tune --data demo --model mf --grid factors=32,64 --scheduler tcp://10.0.0.5:8786

    The parent folder holds the trials, leaderboard.csv, tune.png (the validation metric against
    each option) and best.json; retrain the winner with python Main.py --data ... --config best.json.
    """
    from mfrec.cli.common import ProgressBar
    from mfrec.cli.train import parse_settings
    from mfrec.data import load
    from mfrec.tuning import model_options, parse_grid
    from mfrec.tuning import tune as run_search

    dataset = load(data, data_root=data_root, verify="auto")
    grid = parse_grid(list(grid_items), model)
    options = parse_settings(settings, model_options(model), model) if settings else {}
    with ProgressBar(enabled=not quiet) as bar:
        result = run_search(dataset, model, grid, options=options, random=n_random, seed=seed, metric=metric,
                            engine=engine, workers=workers, scheduler=scheduler, runs_root=runs_root, name=name,
                            callback=bar)
    _print(result, grid, top)


def _print(result, grid, top: int) -> None:
    from mfrec.tuning import leaderboard_rows

    rows = leaderboard_rows(result.trials, result.metric, grid)
    cols = ["rank", *grid, result.metric, "best_epoch", "status"]
    shown = [[_cell(r.get(c)) for c in cols] for r in rows[:top]]
    widths = [max(len(c), *(len(s[i]) for s in shown)) if shown else len(c) for i, c in enumerate(cols)]
    click.secho(f"leaderboard ({len(rows)} trials, {result.metric}, validation split)", bold=True)
    click.echo("  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for s in shown:
        click.echo("  " + "  ".join(v.rjust(w) for v, w in zip(s, widths)))
    if len(rows) > top:
        click.echo(f"  ... {len(rows) - top} more in leaderboard.csv")
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed[:3]:
        click.secho(f"  trial {r['trial']} failed: {r['error']}", fg="yellow")
    click.echo(f"search folder: {result.path}")
    click.echo("  leaderboard.csv, tune.png, best.json" if result.best else "  leaderboard.csv (no trial finished)")
    if result.best is not None:
        click.echo(f"best: {', '.join(f'{k}={v}' for k, v in result.best.setting.items())} "
                   f"({result.metric} {result.best.value(result.metric):.4f}); retrain with "
                   f"--config {result.best_config}")


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:g}"
    return str(v)
