"""``mfrec evaluate``: one evaluation for every model (ALS, neural, popularity); the work is
``mfrec.training.evaluate_run`` / ``popularity_run``, this command parses and prints.

- ``--protocol rating``: RMSE and MAE on the test split.
- ``--protocol ranking``: on a ``user-last`` split, Hit@k, NDCG@k, Recall@k, catalogue coverage and
  genre consistency over all movies each user has not rated in training or validation; and again
  over only the movies the recommendations can list (``--min-ratings``, default that of
  Inference.py), reported as ``hit@10_min_ratings_10``, ... so evaluation also measures what users see.
  Every model kind: ALS and ials (factors), ease (x · B over train + val), neural, popularity.

The results go into the run folder: ``evaluation.json`` (every protocol run so far) and
``summary.json`` (ranking metrics as ``hit@10``, ``ndcg@10``, ... ; rating metrics as
``test_rmse``/``test_mae`` when the run has none yet), so ``mfrec compare`` shows them side by side.
``--popularity --data NAME`` writes a run folder for the popularity baseline and evaluates it.
"""

from __future__ import annotations


import click

from mfrec.cli.common import DATA_ROOT_OPTION, RUNS_ROOT_OPTION, VERIFY_OPTION, Command, echo_table, friendly_errors, top_option
from mfrec.inference.defaults import DEFAULTS


@click.command(cls=Command, renamed={"--root": "--runs-root", "-k": "--top", "--k": "--top"},
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiment", "-e", default=None, help="Run folder, folder name under --runs-root, or a run's --name (latest).")
@click.option("--protocol", type=click.Choice(["rating", "ranking"]), default=None,
              help="rating: RMSE/MAE on test; ranking: full ranking on a user-last split "
                   "[default: ranking on user-last data, else rating].")
@click.option("--popularity", is_flag=True, help="Write and evaluate a popularity-baseline run for --data.")
@click.option("--data", default=None, help="Prepared dataset for --popularity (a user-last split).")
@DATA_ROOT_OPTION
@RUNS_ROOT_OPTION
@click.option("--name", default=None, help="--popularity: run name [DATA-popularity].")
@top_option(10, "Length of the ranked list the ranking metrics look at (hit@10, ndcg@10, ...).")
@click.option("--min-ratings", type=click.IntRange(min=0), default=DEFAULTS.min_ratings, show_default=True,
              help="Ranking: also rank with the recommendations' candidate filter (only movies with at least this "
                   "many training ratings) and report those metrics as hit@10_min_ratings_N, ... beside the "
                   "unfiltered ones; 0 = unfiltered only.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@VERIFY_OPTION
@friendly_errors
def evaluate(experiment, protocol, popularity, data, data_root, runs_root, name, top, min_ratings, quiet, verify):
    """Evaluate a run under the rating or ranking protocol and record it in the run folder.

    \b
    Examples:
      mfrec evaluate --experiment ml-100k-user-last-mf --protocol ranking
      mfrec evaluate --experiment ml-100k-u1-neumf --protocol rating
      mfrec evaluate --popularity --data ml-100k-user-last
    """
    from mfrec.cli.common import ProgressBar
    from mfrec.errors import MfrecError
    from mfrec.training import evaluate_run, popularity_run

    if popularity:
        if experiment is not None:
            raise MfrecError("give either --experiment or --popularity, not both")
        if data is None:
            raise MfrecError("--popularity needs --data NAME (a prepared user-last dataset)")
        from mfrec.data import load
        from mfrec.evaluation.protocols import require_user_last

        dataset = load(data, data_root=data_root, verify=True if verify else "auto")
        require_user_last(dataset)
        with ProgressBar(enabled=not quiet) as bar:
            path, summary = popularity_run(dataset, runs_root, name, top, callback=bar, min_ratings=min_ratings)
        _print(path, "ranking", summary, top)
        return
    if experiment is None:
        raise MfrecError("give --experiment RUN (or --popularity --data NAME)")
    from mfrec.experiments import Experiment, find_run

    exp = Experiment(find_run(experiment, runs_root))
    if exp.status != "ok":
        raise MfrecError(f"run {exp.name} has status {exp.status!r}; only finished runs can be evaluated")
    dataset = exp.dataset
    dataset.verify(True if verify else "auto")  # what is evaluated must be what was prepared
    if protocol is None:
        protocol = "ranking" if dataset.manifest.split.get("method") == "user-last" else "rating"
    with ProgressBar(enabled=not quiet) as bar:
        result, summary = evaluate_run(exp, protocol, top, callback=bar, min_ratings=min_ratings)
    _print(exp.path, protocol, summary, top, result)


def _print(path, protocol, summary, k, result=None) -> None:
    from mfrec.training import RANKING_KEYS

    def f(v):
        return f"{v:.4f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"

    if protocol == "ranking":
        rows = [(f"{key}@{k}", f(summary.get(f"{key}@{k}"))) for key in RANKING_KEYS]
        n = summary.get("min_ratings")
        if n:
            rows += [(f"{key}@{k}, min {n} ratings", f(summary.get(f"{key}@{k}_min_ratings_{n}"))) for key in RANKING_KEYS]
    elif summary.get("model") == "bayes" and summary.get("test_rmse") is not None:
        # a bayes run's test RMSE is that of the posterior mean of the predictions, measured while
        # sampling; model.npz (what this re-evaluates) holds the posterior-mean factors, a little worse
        rows = [("test RMSE", f(summary.get("test_rmse"))), ("test MAE", f(summary.get("test_mae"))),
                ("model.npz's mean factors: RMSE", f(result["rmse"] if result else summary.get("eval_rmse"))),
                ("model.npz's mean factors: MAE", f(result["mae"] if result else summary.get("eval_mae")))]
    else:
        rows = [("test RMSE", f(result["rmse"] if result else summary.get("test_rmse"))),
                ("test MAE", f(result["mae"] if result else summary.get("test_mae")))]
    rows = [("model", str(summary.get("model"))), ("dataset", str(summary.get("dataset")))] + rows + [("run folder", str(path))]
    echo_table(rows, title=f"{protocol} protocol")
