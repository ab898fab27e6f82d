"""``mfrec evaluate``: one evaluation for every model (ALS, neural, popularity).

- ``--protocol rating``: RMSE and MAE on the test split.
- ``--protocol ranking``: on a ``user-last`` split, Hit@k, NDCG@k, Recall@k, catalogue coverage and
  genre consistency over all movies each user has not rated in training or validation.

The results go into the run folder: ``evaluation.json`` (every protocol run so far) and
``summary.json`` (ranking metrics as ``hit@10``, ``ndcg@10``, ... ; rating metrics as
``test_rmse``/``test_mae`` when the run has none yet), so ``mfrec compare`` shows them side by side.
``--popularity --data NAME`` writes a run folder for the popularity baseline and evaluates it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mfrec.cli.common import VERIFY_OPTION, echo_table, friendly_errors

RANKING_KEYS = ("hit", "ndcg", "recall", "coverage", "genre_consistency")


def ranking_scorer(model):
    """Something with ``score_users`` for any loaded model; ALS models score μ + b_u + b_i + p_u·q_i unclipped."""
    if hasattr(model, "score_users"):
        return model
    if hasattr(model, "effective_movie_factors") and hasattr(model, "user_factors"):
        import numpy as np

        class _ALSScores:
            n_movies = model.n_movies

            def score_users(self, users):
                u = np.asarray(users, np.int64)
                s = model.user_factors[u] @ model.effective_movie_factors.T if model.k else np.zeros((len(u), model.n_movies), np.float32)
                return (s + model.user_bias[u, None] + model.movie_bias[None, :] + model.mu).astype(np.float32)

        return _ALSScores()
    return model


def evaluate_model(model, dataset, protocol: str, k: int = 10, progress: bool = True) -> dict[str, Any]:
    from mfrec.cli.common import ProgressBar
    from mfrec.evaluation.protocols import ranking_protocol, rating_protocol, require_user_last

    if protocol == "rating":
        return rating_protocol(model, dataset)
    require_user_last(dataset)
    with ProgressBar(enabled=progress) as bar:
        return ranking_protocol(ranking_scorer(model), dataset, k=k, callback=bar)


def record(run_path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """Merge a protocol's result into evaluation.json and summary.json of a run folder."""
    from mfrec.io import write_json

    ev_file = run_path / "evaluation.json"
    ev = json.loads(ev_file.read_text()) if ev_file.is_file() else {}
    ev[result["protocol"]] = result
    write_json(ev_file, ev)
    sf = run_path / "summary.json"
    from mfrec.experiments import Summary

    summary = Summary.read(sf).to_dict()
    if result["protocol"] == "ranking":
        k = result["k"]
        for key in RANKING_KEYS:
            summary[f"{key}@{k}"] = result[f"{key}@{k}"]
        summary["ranking_split"] = result["split"]
    else:
        if summary.get("test_rmse") is None:
            summary["test_rmse"], summary["test_mae"] = result["rmse"], result["mae"]
        summary["eval_rmse"], summary["eval_mae"] = result["rmse"], result["mae"]
    write_json(sf, summary)
    return summary


def popularity_run(dataset, root: str, name: str | None, k: int, progress: bool = True) -> tuple[Path, dict]:
    """A run folder for the popularity baseline: config, metrics.csv (no epochs), train.log, summary."""
    import time

    import numpy as np

    from mfrec.evaluation.ranking import Popularity
    from mfrec.experiments import Run

    t0 = time.perf_counter()
    config = {"model": "popularity", "dataset": dataset.name, "data_path": str(Path(dataset.path).resolve()),
              "score": "number of training ratings per movie", "seed": None}
    run = Run.create(name or f"{dataset.name}-popularity", root, config=config)
    try:
        pop = Popularity.fit(dataset)
        np.savez(run.path / "popularity.npz", counts=pop.counts)
        run.log(f"popularity: {dataset.n_movies:,} movies scored by their training rating counts")
        run.save_summary({"dataset": dataset.name, "model": "popularity", "config": config, "epochs_run": 0,
                                    "best_epoch": None, "train_rmse": None, "val_rmse": None, "test_rmse": None,
                                    "test_mae": None, "train_seconds": time.perf_counter() - t0,
                                    "seconds_per_epoch": None})
        result = evaluate_model(pop, dataset, "ranking", k, progress)
        run.log("ranking: " + ", ".join(f"{key}={v:.4f}" for key, v in result.items() if "@" in key))
        return run.path, record(run.path, result)
    except BaseException as e:
        run.fail(e)
        raise


def load_for_evaluation(exp):
    """The model of a run: popularity refits from the dataset; ALS from model.npz; neural via mfrec.neural."""
    if exp.config.get("model") == "popularity":
        from mfrec.evaluation.ranking import Popularity

        return Popularity.fit(exp.dataset)
    return exp.model


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiment", "experiment", default=None, help="Run folder, folder name under --root, or a run's --name (latest).")
@click.option("--protocol", type=click.Choice(["rating", "ranking"]), default=None,
              help="rating: RMSE/MAE on test; ranking: full ranking on a user-last split "
                   "[default: ranking on user-last data, else rating].")
@click.option("--popularity", is_flag=True, help="Write and evaluate a popularity-baseline run for --data.")
@click.option("--data", default=None, help="Prepared dataset for --popularity (a user-last split).")
@click.option("--data-root", type=click.Path(), default="Training_data", show_default=True)
@click.option("--root", type=click.Path(), default="Experiments_", show_default=True, help="Where run folders are.")
@click.option("--name", default=None, help="--popularity: run name [DATA-popularity].")
@click.option("-k", "--k", "k", type=int, default=10, show_default=True, help="Length of the ranked list.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@VERIFY_OPTION
@friendly_errors
def evaluate(experiment, protocol, popularity, data, data_root, root, name, k, quiet, verify):
    """Evaluate a run under the rating or ranking protocol and record it in the run folder.

    \b
    Examples:
      mfrec evaluate --experiment ml-100k-last-mf --protocol ranking
      mfrec evaluate --experiment ml-100k-u1-neumf --protocol rating
      mfrec evaluate --popularity --data ml-100k-last
    """
    from mfrec.errors import MfrecError

    if k < 1:
        raise MfrecError(f"-k must be at least 1, got {k}")
    if popularity:
        if experiment is not None:
            raise MfrecError("give either --experiment or --popularity, not both")
        if data is None:
            raise MfrecError("--popularity needs --data NAME (a prepared user-last dataset)")
        from mfrec.data import load
        from mfrec.evaluation.protocols import require_user_last

        dataset = load(data, root=data_root, verify=verify)
        require_user_last(dataset)
        path, summary = popularity_run(dataset, root, name, k, progress=not quiet)
        _print(path, "ranking", summary, k)
        return
    if experiment is None:
        raise MfrecError("give --experiment RUN (or --popularity --data NAME)")
    from mfrec.experiments import Experiment, find_run

    exp = Experiment(find_run(experiment, root))
    if exp.status != "ok":
        raise MfrecError(f"run {exp.name} has status {exp.status!r}; only finished runs can be evaluated")
    dataset = exp.dataset
    if verify:
        dataset.verify()
    if protocol is None:
        protocol = "ranking" if dataset.manifest.split.get("method") == "user-last" else "rating"
    model = load_for_evaluation(exp)
    result = evaluate_model(model, dataset, protocol, k, progress=not quiet)
    summary = record(exp.path, result)
    _print(exp.path, protocol, summary, k, result)


def _print(path, protocol, summary, k, result=None) -> None:
    def f(v):
        return f"{v:.4f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"

    if protocol == "ranking":
        rows = [(f"{key}@{k}", f(summary.get(f"{key}@{k}"))) for key in RANKING_KEYS]
    else:
        rows = [("test RMSE", f(result["rmse"] if result else summary.get("test_rmse"))),
                ("test MAE", f(result["mae"] if result else summary.get("test_mae")))]
    rows = [("model", str(summary.get("model"))), ("dataset", str(summary.get("dataset")))] + rows + [("run folder", str(path))]
    echo_table(rows, title=f"{protocol} protocol")
