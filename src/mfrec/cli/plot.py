"""``mfrec plot``: the figures of one training run, written into its plots/ folder."""

from __future__ import annotations

import click

from mfrec.cli.common import DATA_ROOT_OPTION, RUNS_ROOT_OPTION, Command, friendly_errors


@click.command(cls=Command, renamed={"--root": "--runs-root"}, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiment", "-e", required=True,
              help="A run: folder path, folder name under --runs-root, or a training --name (its latest run).")
@RUNS_ROOT_OPTION
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Figure folder [default: <run>/plots].")
@click.option("--data", default=None, help="Dataset to take titles and genres from [default: the run's own].")
@DATA_ROOT_OPTION
@click.option("--tsne", is_flag=True, help="Also a t-SNE map of the movie factors (needs scikit-learn).")
@click.option("--labels", "n_labels", type=int, default=12, show_default=True, help="How many most-rated titles to label.")
@friendly_errors
def plot(experiment, runs_root, out, data, data_root, tsne, n_labels):
    """Write a run's figures (PNG) into its plots/ folder; say which were skipped and why.

    \b
    rmse.png           train/validation/test RMSE per epoch
    ranking.png        ranking metrics per epoch (runs that log e.g. val_hit@10)
    loss.png           training/validation loss per epoch (neural runs)
    biases.png         distribution of user and movie biases (model.npz, or a neural run's factors.npz)
    movie_map.png      movie factors on a 2-D PCA map, coloured by main genre, top titles labelled
    genre_factors.png  genre factors y_g as a heat map (mf-genre)
    genre_map.png      genre factors on a 2-D PCA map (mf-genre)
    \b
    Example:
      mfrec plot --experiment ml-100k-u1-mf-genre   # the latest run of that name; or a run folder
    """
    from mfrec.analysis.runs import tsne_available
    from mfrec.errors import MfrecError
    from mfrec.experiments import find_run
    from mfrec.plots.run import plot_run

    if tsne and not tsne_available():
        raise MfrecError("--tsne needs scikit-learn (pip install scikit-learn); the PCA map needs nothing extra")
    path = find_run(experiment, runs_root)
    dataset = None
    if data is not None:
        from mfrec.data import load

        dataset = load(data, data_root=data_root)
    skipped: list[tuple[str, str]] = []
    paths = plot_run(path, out, dataset=dataset, tsne=tsne, n_labels=n_labels, skipped=skipped)
    if not paths:
        click.echo(f"{path.name}: nothing to plot (no curves in metrics.csv and no model.npz or factors.npz)")
    else:
        folder = paths[0].parent
        click.echo(f"wrote {len(paths)} figures to {folder}/: " + ", ".join(p.name for p in paths))
    for figure, why in skipped:
        click.echo(f"skipped {figure}: {why}")
