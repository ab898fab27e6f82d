"""``Main.py`` / ``mfrec train``: parse the options, train through ``mfrec.training.train_run``
(which writes ``Experiments_/<run>/``), show a progress bar and print the summary.
"""

from __future__ import annotations

import click

from mfrec.cli.common import DATA_ROOT_OPTION, RUNS_ROOT_OPTION, VERIFY_OPTION, Command, echo_table, friendly_errors

ALS_MODELS = ("bias", "mf", "mf-genre", "ials")
NEURAL_MODELS = ("neumf", "sequential", "genre-embedding", "attention")
NEURAL_RATING_MODELS = ("neumf", "genre-embedding", "attention")  # neural models with a per-epoch RMSE
ITEM_MODELS = ("ease",)

DEFAULTS_HELP = (
    "Defaults per model (tuned on ml-100k u1): "
    "bias: 8 epochs, reg-bias 2; "
    "mf: k=64, 8 epochs, weighted reg 0.4 x count^0.75, reg-bias 1, cg solver with 3 steps; "
    "mf-genre: as mf, reg-genre 0.3; "
    "bayes: k=10, 200 samples (5 burn-in), SVD++ and flipped implicit groups on (--set implicit_user=false to drop one), "
    "no penalties to tune. "
    "ease: reg (lambda) 200 on a binary X (memory n_movies^2 x 4 bytes), a user's recent movies weighted up "
    "(--set recency_boost=4 --set recency_scale=5; recency_boost=0 is plain EASE). "
    "With a validation split, training stops after --patience (2) epochs without a better validation RMSE; "
    "each epoch is evaluated on validation only (--train-metrics adds training RMSE), the test split once, at the end."
)


@click.command(cls=Command, renamed={"--root": "--runs-root"}, context_settings={"help_option_names": ["-h", "--help"]},
               epilog=DEFAULTS_HELP)
@click.option("--data", "data", required=True, metavar="NAME_OR_PATH",
              help="Prepared dataset: a name under --data-root or a folder (see Data_processing.py).")
@DATA_ROOT_OPTION
@click.option("--model", type=click.Choice(ALS_MODELS + ("bayes",) + ITEM_MODELS + NEURAL_MODELS), default="mf-genre", show_default=True,
              help="bias: mu+b_u+b_i; mf: + p_u.q_i; mf-genre: + genre factors; bayes: Bayesian MF by Gibbs sampling "
                   "with implicit features; ease: closed-form item-item top-N model (Steck 2019). "
                   "Neural baselines need the torch extra.")
@click.option("--factors", type=int, default=None, help="Latent dimension k [model default].")
@click.option("--epochs", type=int, default=None, help="Maximum epochs [model default].")
@click.option("--samples", type=int, default=None, help="bayes: Gibbs samples in all, burn-in included [200].")
@click.option("--burn-in", type=int, default=None, help="bayes: samples dropped before averaging [5].")
@click.option("--reg", type=float, default=None,
              help="L2 penalty on factors (x rating count with --weighted-reg); ease: lambda on the diagonal of X^T X [200].")
@click.option("--reg-bias", type=float, default=None, help="L2 penalty on biases (never count-weighted).")
@click.option("--reg-genre", type=float, default=None, help="mf-genre: L2 penalty on genre factors.")
@click.option("--weighted-reg/--no-weighted-reg", default=None,
              help="Scale --reg by each row's rating count (weighted-lambda ALS) [on].")
@click.option("--reg-exponent", type=float, default=None,
              help="Weighted-lambda penalty = reg x count ** this (1 = classic ALS-WR) [0.75].")
@click.option("--solver", type=click.Choice(["cholesky", "cg"]), default=None,
              help="Per-row solver: cholesky (exact) or cg (warm-started conjugate gradient, fast for large k) [cg; bias: cholesky].")
@click.option("--cg-steps", type=int, default=None, help="Conjugate-gradient steps per row and half-step [3].")
@click.option("--alpha", type=float, default=None,
              help="ials: confidence of a rated movie is 1 + alpha * (rating / top rating) ** rating-power (x recency) [8].")
@click.option("--rating-power", type=float, default=None, help="ials: how steeply confidence grows with the rating [1].")
@click.option("--unobserved-weight", type=float, default=None, help="ials: weight of each unrated movie (alpha0) [1].")
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the initial factors.")
@click.option("--threads", type=int, default=0, show_default=True, help="Numba threads (0 = all cores).")
@click.option("--patience", type=int, default=None, help="Early-stopping patience on validation RMSE (0 = off) [2].")
@click.option("--train-metrics/--no-train-metrics", default=None,
              help="ALS and neural rating models: also record the training RMSE (ials: training loss) every epoch, "
                   "one more pass over the ratings [only without a validation split]. The test split is evaluated "
                   "once, after training.")
@click.option("--name", default=None, help="Run name; the folder is NAME-<date>-<time>-<random> [DATASET-MODEL].")
@RUNS_ROOT_OPTION
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Neural models: torch device.")
@click.option("--lr", type=float, default=None, help="Neural models: learning rate.")
@click.option("--batch-size", type=int, default=None, help="Neural models: minibatch size.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Neural models, bayes and ease: any other option of the model, e.g. --set min_length=10 --set heads=2, "
                   "bayes: --set implicit_movie=false, ease: --set recency_boost=0 "
                   "(an unknown key lists the model's options).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="ALS models: train on this machine, or on a Dask cluster (needs pip install -e \".[dask]\").")
@click.option("--workers", type=int, default=None, help="--engine dask: a LocalCluster of this many worker processes [2].")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT", help="--engine dask: an existing cluster's scheduler.")
@click.option("--blocks", type=int, default=None, help="--engine dask: user and movie blocks per side [one per worker].")
@click.option("--train-with-validation/--no-train-with-validation", default=None,
              help="Train on the training and validation ratings together (no early stopping): the final fit of a "
                   "tuned model; best.json asks for it.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="A JSON file of the model and its options (mfrec tune's best.json); options given here win.")
@click.option("--quiet", is_flag=True, help="No progress bar; only the summary.")
@VERIFY_OPTION
@friendly_errors
def train(data, data_root, model, factors, epochs, samples, burn_in, reg, reg_bias, reg_genre, weighted_reg, reg_exponent,
          solver, cg_steps, alpha, rating_power, unobserved_weight, seed, threads, patience, train_metrics, name, runs_root,
          device, lr,
          batch_size, settings, engine, workers, scheduler, blocks, train_with_validation, config_file, quiet, verify):
    """Train a model on a prepared dataset and write an experiment folder.

    \b
    Examples:
      python Main.py --data ml-100k-u1 --model mf-genre
      python Main.py --data demo --model mf --factors 64 --solver cg --epochs 15
      python Main.py --data demo --model bias --name baseline
      python Main.py --data ml-100k-u1 --model bayes --factors 10 --samples 200

    The run folder Experiments_/<run>/ holds config.json, metrics.csv, train.log, model.npz,
    summary.json and plots/rmse.png; load it with mfrec.load_experiment(path or run name).
    """
    from mfrec.cli.common import ProgressBar
    from mfrec.data import load
    from mfrec.errors import MfrecError
    from mfrec.training import train_run

    dataset = load(data, data_root=data_root, verify=True if verify else "auto")
    file_options: dict = {}
    if config_file:
        model, file_options = read_config_file(config_file, model, click.get_current_context())
        with_val = file_options.pop("train_with_validation", None)
        if train_with_validation is None and with_val:
            train_with_validation = True
    if train_with_validation:
        dataset = dataset.train_with_validation()
    if train_metrics is not None and model not in ALS_MODELS + NEURAL_RATING_MODELS:
        raise MfrecError(f"--train-metrics/--no-train-metrics go with {', '.join(ALS_MODELS + NEURAL_RATING_MODELS)}; "
                         f"{model} records its own metrics")
    if model in NEURAL_MODELS:
        options = dict(factors=factors, epochs=epochs, reg=reg, seed=seed, threads=threads, patience=patience,
                       device=device, lr=lr, batch_size=batch_size, train_metrics=train_metrics)
        if settings:
            try:
                from mfrec.neural import default_options
            except ImportError as e:  # pragma: no cover
                raise MfrecError(f"the neural model {model!r} needs mfrec.neural and torch ({e}); "
                                 "install them with pip install -e \".[torch]\"") from None
            options.update(parse_settings(settings, default_options(model), model))
    elif model == "bayes":
        from mfrec.models.bayes import BayesConfig

        options = dict(factors=factors, samples=samples, burn_in=burn_in, seed=seed, threads=threads)
        known = {k: v for k, v in BayesConfig().to_dict().items() if k != "model"}
        options.update(parse_settings(settings, known, model))
    elif model in ITEM_MODELS:
        given = dict(factors=factors, epochs=epochs, reg_bias=reg_bias, reg_genre=reg_genre, weighted_reg=weighted_reg,
                     reg_exponent=reg_exponent, solver=solver, cg_steps=cg_steps, patience=patience,
                     samples=samples, burn_in=burn_in, alpha=alpha, rating_power=rating_power,
                     unobserved_weight=unobserved_weight)
        extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if extra:
            raise MfrecError(f"{model} is a closed-form model with one penalty (--reg); {', '.join(extra)} do not apply to it")
        options = dict(reg=reg)
        if settings:  # weighting, recency_boost, recency_scale
            from mfrec.models.ease import EaseConfig

            known = {k: v for k, v in EaseConfig().to_dict().items() if k not in ("model", "reg")}
            options.update(parse_settings(settings, known, model))
    else:
        if settings:
            raise MfrecError(f"--set is for the neural models; {model} takes its options directly (see --help)")
        options = dict(factors=factors, epochs=epochs, reg=reg, reg_bias=reg_bias, reg_genre=reg_genre,
                       weighted_reg=weighted_reg, reg_exponent=reg_exponent, solver=solver, cg_steps=cg_steps,
                       seed=seed, threads=threads, patience=patience, alpha=alpha, rating_power=rating_power,
                       unobserved_weight=unobserved_weight, train_metrics=train_metrics)
    if file_options:  # the file's options, then every option given on the command line over them
        given = {key for key in options if _given(key)}
        options = {**options, **{k: v for k, v in file_options.items() if k not in given}}
    with ProgressBar(enabled=not quiet) as bar:
        run, summary = train_run(dataset, model, options, runs_root=runs_root, name=name, callback=bar,
                                 engine=engine_options(engine, workers, scheduler, blocks))
    _print_summary(summary, run)


def engine_options(engine: str, workers, scheduler, blocks) -> dict | None:
    """--engine and its options as train_run's ``engine``; Dask options without --engine dask are refused."""
    from mfrec.errors import MfrecError

    if scheduler:
        engine = "dask"
    if engine != "dask":
        if workers or blocks:
            raise MfrecError("--workers and --blocks go with --engine dask")
        return None
    if workers is not None and workers < 1 or blocks is not None and blocks < 1:
        raise MfrecError("--workers and --blocks must be at least 1")
    return {"engine": "dask", "workers": workers or (None if scheduler else 2), "scheduler": scheduler,
            "blocks": blocks}


def _given(param: str) -> bool:
    ctx = click.get_current_context()
    source = ctx.get_parameter_source(param)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def read_config_file(path, model: str, ctx) -> tuple[str, dict]:
    """The model and options of a ``--config`` JSON file (``{"model": ..., option: value, ...}``;
    other objects in it, e.g. best.json's "tuned", are ignored). An explicit ``--model`` must agree."""
    import json
    from pathlib import Path

    from mfrec.errors import MfrecError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise MfrecError(f"--config {path} is not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise MfrecError(f"--config {path} must be a JSON object with a \"model\" name and its options")
    if _given("model") and model != data["model"]:
        raise MfrecError(f"--model {model} disagrees with the model {data['model']!r} of --config {path}")
    options = {k: v for k, v in data.items() if k != "model" and not isinstance(v, (dict, list))}
    return data["model"], options


def parse_settings(settings, known: dict, model: str) -> dict:
    """``KEY=VALUE`` strings into typed options, each checked against the model's own options."""
    from mfrec.errors import MfrecError

    out = {}
    for item in settings:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise MfrecError(f"--set takes KEY=VALUE, got {item!r}")
        if key not in known:
            raise MfrecError(f"{model} has no option {key!r}; its options are: {', '.join(sorted(known))}")
        default = known[key]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                value = text.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                value = int(text)
            elif isinstance(default, float):
                value = float(text)
            else:
                value = text
        except ValueError:
            raise MfrecError(f"--set {key}: {text!r} is not a {type(default).__name__} "
                             f"(the default is {default!r})") from None
        out[key] = value
    return out


def _print_summary(summary: dict, run) -> None:
    def f(v, fmt="{:.4f}"):
        return fmt.format(v) if isinstance(v, (int, float)) else "-"

    rows = [
        ("model", str(summary.get("model"))),
        ("dataset", str(summary.get("dataset"))),
        *[(label, f(summary.get(key))) for label, key in
          (("test RMSE", "test_rmse"), ("test MAE", "test_mae"), ("val RMSE", "val_rmse"))
          if summary.get(key) is not None or (summary.get("hit@10") is None and summary.get("val_hit@10") is None)],
        # ranking models (sequential) and evaluated runs report full-ranking metrics
        *[(name, f(summary[name])) for name in ("hit@10", "ndcg@10", "recall@10") if summary.get(name) is not None],
        *[(f"{name} (min {summary['min_ratings']} ratings)", f(summary[f"{name}_min_ratings_{summary['min_ratings']}"]))
          for name in ("hit@10", "ndcg@10") if summary.get(f"{name}_min_ratings_{summary.get('min_ratings')}") is not None],
        # ials: no RMSE; its validation ranking metrics (test ones from mfrec evaluate --protocol ranking)
        *[(name, f(summary[name])) for name in ("val_hit@10", "val_ndcg@10")
          if summary.get(name) is not None],
        *([("best epoch", f"{summary.get('best_epoch')} of {summary.get('epochs_run')}")]
          if summary.get("best_epoch") is not None or summary.get("model") != "ease" else []),
        ("seconds/epoch", f(summary.get("seconds_per_epoch"), "{:.2f}")),
        ("peak RSS", f(summary.get("peak_rss_mb"), "{:.0f} MB")),
        ("run folder", str(run.path)),
    ]
    echo_table(rows, title="training finished")
