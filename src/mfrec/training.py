"""Training a model into a run folder, and evaluating one: the place that fits, records, plots and
summarises, so that the command line only parses options and prints.

``train_run(dataset, model, options)`` is what ``Main.py`` / ``mfrec train`` calls for every model
kind. It creates ``Experiments_/<run>/`` (config.json first), fits the model with a callback that
turns each ``mfrec.callbacks.EpochReport`` into a metrics.csv row and a train.log line (and passes
every event on to the caller's ``callback``, e.g. the command line's progress bar), saves the model
file, draws the figures, and writes summary.json. Any error marks the run failed (the error and its
traceback in train.log, status "failed" in summary.json) and is raised again.

- ALS models (bias, mf, mf-genre): ``mfrec.models.fit``; the model is saved as model.npz. Each
  epoch is evaluated on the validation split (training RMSE as ``train_metrics`` says:
  ``mfrec.models.epoch_eval``); the test split is evaluated once, here, on the kept model, into
  summary.json (test_rmse, test_mae) and as one marked point on rmse.png.
- EASE (ease): ``mfrec.models.ease.EaseModel.fit``, one closed-form solve; saved as ease.npz, with
  ranking metrics (val, and test on a user-last split) in the summary instead of RMSEs.
- ials (implicit feedback): ``mfrec.models.ials.fit`` with a validation-ranking check each epoch
  (``validation_ranking``); model.npz, metrics.csv with train_loss / val_hit@10 / val_ndcg@10.
- Neural models (the torch extra): ``mfrec.neural.fit``; they write their own weights (and
  factors.npz where the model is a factor model) into the folder. The rating models are evaluated
  per epoch as the ALS models are (validation; training RMSE as ``train_metrics`` says; the test
  split once, on the kept weights, marked on rmse.png).

``evaluate_run`` evaluates a finished run under the rating or ranking protocol and records the
result in its evaluation.json and summary.json; ``popularity_run`` writes and evaluates a run of the
popularity baseline.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from mfrec.callbacks import EpochReport, emit, fmt
from mfrec.errors import MfrecError, renamed_keywords
from mfrec.experiments.run import DEFAULT_ROOT, FINGERPRINT, Run, dataset_fingerprint
from mfrec.models.config import MODELS as ALS_MODELS

NEURAL_MODELS = ("neumf", "sequential", "genre-embedding", "attention")
ITEM_MODELS = ("ease",)  # closed-form item-item models: no epochs, no factors (mfrec.models.ease)
ENGINE_FACTS = ("engine", "dask_workers", "dask_blocks", "bytes_between_workers_per_epoch", "worker_peak_rss_mb")
RARE_MOVIE_RATINGS = 5  # test movies with fewer training ratings get their own RMSE in the summary


@renamed_keywords(root="runs_root")
def train_run(dataset, model: str, options: dict[str, Any] | None = None, runs_root: str | os.PathLike = DEFAULT_ROOT,
              name: str | None = None, callback: Callable[[Any], Any] | None = None,
              engine: dict[str, Any] | None = None) -> tuple[Run, dict[str, Any]]:
    """Train ``model`` on ``dataset`` into a new run folder under ``runs_root``; returns ``(run, summary)``.

    ``options``: for ALS models the ``ALSConfig`` fields (None values take the model's defaults);
    for neural models their options (see ``mfrec.neural.default_options``). ``engine``: None trains
    on this machine; ``{"engine": "dask", "workers": N | "scheduler": ADDRESS, "blocks": W}`` trains
    an ALS model on Dask (``mfrec.models.dask_als``), the same run folder plus the engine's facts.
    """
    options = {k: v for k, v in dict(options or {}).items() if v is not None}
    run_name = name or f"{dataset.name}-{model}"
    engine = {k: v for k, v in dict(engine or {}).items() if v is not None}
    if engine.get("engine", "local") != "local" and model not in ALS_MODELS:
        raise MfrecError(f"--engine {engine['engine']} trains {', '.join(ALS_MODELS)}; {model} trains on this machine")
    if model in ALS_MODELS:
        return _train_als(dataset, model, options, runs_root, run_name, callback, engine)
    if model == "bayes":
        return _train_bayes(dataset, options, runs_root, run_name, callback)
    if model in NEURAL_MODELS:
        return _train_neural(dataset, model, options, runs_root, run_name, callback)
    if model == "ease":
        return _train_ease(dataset, options, runs_root, run_name, callback)
    raise MfrecError(f"unknown model {model!r}; choose one of: {', '.join(ALS_MODELS + ('bayes',) + ITEM_MODELS + NEURAL_MODELS)}")


def dataset_facts(dataset) -> dict[str, Any]:
    """What a run records about its dataset (config.json and summary.json): name, folder and the
    fingerprint of the version it trains on, which evaluation and inference check it against."""
    facts = {"dataset": dataset.name, "data_path": str(Path(dataset.path).resolve())}
    fingerprint = dataset_fingerprint(getattr(dataset, "manifest", None))
    if fingerprint is not None:
        facts[FINGERPRINT] = fingerprint
    if getattr(dataset, "validation_in_train", False):  # Main.py --train-with-validation
        facts["trained_on"] = "train+validation"
    return facts


def recorder(run: Run, callback: Callable[[Any], Any] | None) -> Callable[[Any], None]:
    """The fit callback: an epoch report becomes a metrics.csv row and a log line; every event goes on
    to ``callback``."""
    def on_event(event: Any) -> None:
        if isinstance(event, EpochReport):
            run.append_metrics(event.epoch, event.train_rmse, event.val_rmse, event.test_rmse, event.seconds,
                               **event.metrics)
            if event.note:
                run.log(event.note)
        emit(callback, event)

    return on_event


def _guarded(run: Run, work: Callable[[], dict[str, Any]], base: dict[str, Any]) -> dict[str, Any]:
    try:
        return work()
    except BaseException as e:
        run.fail(e, base)
        raise


def _train_als(dataset, model: str, options: dict[str, Any], root, run_name: str, callback,
               engine: dict[str, Any]) -> tuple[Run, dict]:
    from mfrec.models import make_config
    from mfrec.models.als import fit

    config = make_config({"model": model, **options}).validate()
    data = dataset_facts(dataset)
    dask = engine.get("engine", "local") == "dask"
    if dask and model == "ials":
        raise MfrecError("the Dask engine trains the explicit ALS models; train ials without --engine dask")
    if dask:  # a missing extra or an unreachable scheduler is refused before the run folder exists
        from mfrec.models.dask_als import dask_client

        client = dask_client(engine.get("workers"), engine.get("scheduler"))
        data["engine"] = "dask"
    run = Run.create(run_name, root, config={**config.to_dict(), **data},
                     extra_columns=IALS_COLUMNS if model == "ials" else ())
    base = {**data, "model": model, "config": config.to_dict()}
    if model == "ials":
        return run, _guarded(run, lambda: _ials_work(run, dataset, config, base, callback), base)

    def fit_here():
        if not dask:
            return fit(dataset, config, callback=recorder(run, callback), log=run.log)
        from mfrec.models.dask_als import close_client, fit_dask

        try:
            return fit_dask(dataset, config, client, n_blocks=engine.get("blocks"), callback=recorder(run, callback),
                            log=run.log)
        finally:
            close_client(client)

    def work() -> dict[str, Any]:
        t0 = time.perf_counter()
        fitted = fit_here()
        train_seconds = time.perf_counter() - t0
        fitted.save(run.model_path)
        best = fitted.history[fitted.best_epoch - 1]
        held_out = held_out_errors(fitted, dataset)  # the test split, once, on the kept model
        draw_figures(run, dataset, model, fitted.best_epoch, test_rmse=held_out["test_rmse"])
        summary = {
            **base,
            "epochs_run": len(fitted.history),
            "best_epoch": fitted.best_epoch,
            "train_rmse": fitted.config.get("train_rmse", best.train_rmse),
            "val_rmse": best.val_rmse,
            **held_out,
            "train_seconds": train_seconds,
            "seconds_per_epoch": fitted.config["seconds_per_epoch"],
            "numba_threads": fitted.config["numba_threads"],
            "n_train": len(dataset.train),
            "n_val": len(dataset.val) if dataset.val is not None else 0,
            **{key: fitted.config[key] for key in ENGINE_FACTS if key in fitted.config},
        }
        run.log(f"test RMSE {summary['test_rmse']}, test MAE {summary['test_mae']}, best epoch {fitted.best_epoch}")
        return run.save_summary(summary)

    return run, _guarded(run, work, base)


def _train_bayes(dataset, options: dict[str, Any], root, run_name: str, callback) -> tuple[Run, dict]:
    """``--model bayes``: the Gibbs sampler (``mfrec.models.bayes``); model.npz holds the posterior-mean
    factors, samples.npz the kept samples for the predictive spread. metrics.csv has one row per sample."""
    from mfrec.models.bayes import SAMPLES_FILE, BayesConfig, fit

    unknown = set(options) - set(BayesConfig.__dataclass_fields__)
    if unknown:
        raise MfrecError(f"bayes has no option {', '.join(sorted(unknown))}; its options are: "
                         f"{', '.join(f for f in BayesConfig.__dataclass_fields__ if f != 'model')}")
    try:
        config = BayesConfig(**{**options, "model": "bayes"}).validate()
    except TypeError as e:
        raise MfrecError(f"bad bayes options ({e})") from None
    data = dataset_facts(dataset)
    run = Run.create(run_name, root, config={**config.to_dict(), **data}, extra_columns=("noise_sd",))
    base = {**data, "model": "bayes", "config": config.to_dict()}

    def work() -> dict[str, Any]:
        t0 = time.perf_counter()
        fitted = fit(dataset, config, callback=recorder(run, callback), log=run.log)
        train_seconds = time.perf_counter() - t0
        fitted.save(run.model_path)
        if len(fitted.samples):
            fitted.samples.save(run.path / SAMPLES_FILE)
        draw_figures(run, dataset, "bayes", None)
        last = fitted.history[-1]
        factor_errors = held_out_errors(fitted, dataset)
        summary = {
            **base,
            "epochs_run": len(fitted.history),
            "best_epoch": len(fitted.history),  # the model averages every kept sample up to the last
            "train_rmse": last.train_rmse,
            "val_rmse": last.val_rmse,
            # the test RMSE is the model's: the posterior mean of the predictions (metrics.csv's last
            # row); model.npz's posterior-mean factors predict a little worse, kept as factor_test_*
            **held_out_errors(fitted, dataset, predictions=fitted.posterior_predictions["test"]),
            "factor_test_rmse": factor_errors["test_rmse"],
            "factor_test_mae": factor_errors["test_mae"],
            "posterior_test_rmse": fitted.config["posterior_test_rmse"],
            "posterior_val_rmse": fitted.config["posterior_val_rmse"],
            "kept_samples": fitted.config["kept_samples"],
            "noise_sd": fitted.config["noise_sd"],
            "train_seconds": train_seconds,
            "seconds_per_epoch": fitted.config["seconds_per_sample"],
            "seconds_per_sample": fitted.config["seconds_per_sample"],
            "numba_threads": fitted.config["numba_threads"],
            "n_train": len(dataset.train),
            "n_val": len(dataset.val) if dataset.val is not None else 0,
        }
        run.log(f"test RMSE {summary['test_rmse']}, test MAE {summary['test_mae']} (the posterior mean of the "
                f"predictions); model.npz's posterior-mean factors alone: test RMSE {summary['factor_test_rmse']}")
        return run.save_summary(summary)

    return run, _guarded(run, work, base)


def _train_ease(dataset, options: dict[str, Any], root, run_name: str, callback) -> tuple[Run, dict]:
    """EASE into a run folder: config.json, one metrics.csv row (the fit), train.log, ease.npz, and a
    summary with the ranking metrics on val and, on a user-last split, on test (with and without the
    recommendations' --min-ratings filter). No RMSE: EASE scores are not ratings."""
    import numpy as np

    from mfrec.evaluation.protocols import RANKING_SPLIT, ranking_protocol
    from mfrec.inference.defaults import DEFAULTS
    from mfrec.models.ease import EASE_FILE, EaseConfig, EaseModel

    unknown = set(options) - {"reg", "weighting", "recency_boost", "recency_scale"}
    if unknown:
        raise MfrecError(f"ease takes --reg and --set weighting/recency_boost/recency_scale; "
                         f"{', '.join(sorted(unknown))} do not apply to it")
    config = EaseConfig.from_dict(options).validate()
    data = dataset_facts(dataset)
    run = Run.create(run_name, root, config={**config.to_dict(), **data})
    base = {**data, "model": "ease", "config": config.to_dict()}

    def work() -> dict[str, Any]:
        t0 = time.perf_counter()
        fitted = EaseModel.fit(dataset, config, callback=callback, log=run.log)
        train_seconds = time.perf_counter() - t0
        run.append_metrics(1, seconds=train_seconds)
        fitted.save(run.path / EASE_FILE)
        summary = {**base, "epochs_run": 1, "best_epoch": None, "train_seconds": train_seconds,
                   "seconds_per_epoch": None, "n_train": len(dataset.train),
                   "n_val": len(dataset.val) if dataset.val is not None else 0,
                   "n_test": len(dataset.test) if dataset.test is not None else 0}
        if dataset.val is not None and len(dataset.val):
            val = ranking_protocol(fitted, dataset, strict=False, target_split="val", callback=callback)
            summary.update({f"val_{key}": v for key, v in val.items() if "@" in key})
        if dataset.manifest.split.get("method") == RANKING_SPLIT and dataset.test is not None and len(dataset.test):
            test = ranking_protocol(fitted, dataset, callback=callback, min_ratings=DEFAULTS.min_ratings)
            record = {key: v for key, v in test.items() if "@" in key}
            summary.update(record, ranking_split=test["split"], min_ratings=DEFAULTS.min_ratings)
            run.log("ranking (test): " + ", ".join(f"{key}={v:.4f}" for key, v in record.items()))
        draw_figures(run, dataset, "ease", None)
        try:
            from mfrec.plots.run import ease_neighbours_figure

            counts = np.diff(np.asarray(dataset.train_by_movie.indptr))
            titles = dataset.movies.sort("movie")["title"].to_list()
            ease_neighbours_figure(fitted.B, titles, counts, run.plots_dir / "ease_neighbours.png", run.name)
        except Exception as e:  # noqa: BLE001 - reported in train.log, the run itself is fine
            run.log(f"figure ease_neighbours.png not drawn: {type(e).__name__}: {e}")
        return run.save_summary(summary)

    return run, _guarded(run, work, base)


IALS_COLUMNS = ("train_loss", "val_hit@10", "val_ndcg@10")
VALIDATION_USERS = 5000  # per-epoch validation ranking: at most this many users (a seeded sample)


def validation_ranking(dataset, k: int = 10, max_users: int = VALIDATION_USERS, seed: int = 0):
    """A ``validate(user_factors, movie_factors)`` for the ials fit: Hit@k and NDCG@k of p_u.q_i on the
    validation split (history = the training movies, all others candidates), or None without one.
    Up to ``max_users`` users with validation ratings (a seeded sample beyond that), so an epoch's
    check stays cheap on large data."""
    import numpy as np

    from mfrec.evaluation.ranking import evaluate_ranking
    from mfrec.kernels.csr import csr_from_pairs

    val = dataset.val
    if val is None or len(val) == 0:
        return None
    history = csr_from_pairs(np.asarray(dataset.train.user), np.asarray(dataset.train.movie), dataset.n_users)
    targets = csr_from_pairs(np.asarray(val.user), np.asarray(val.movie), dataset.n_users)
    users = np.flatnonzero(np.diff(targets[0]) > 0)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    g = dataset.movie_genres
    genres = (np.asarray(g.indptr), np.asarray(g.indices))

    def validate(P, Q) -> dict[str, float]:
        res = evaluate_ranking(lambda b: P[b] @ Q.T, dataset.n_movies, users, history, targets, genres,
                               len(dataset.genres), k=k).as_dict()
        return {f"val_hit@{k}": res[f"hit@{k}"], f"val_ndcg@{k}": res[f"ndcg@{k}"]}

    return validate


def _ials_work(run: Run, dataset, config, base: dict[str, Any], callback) -> dict[str, Any]:
    """Fit an ials model into ``run`` (validation ranking each epoch), save it, draw its curves and movie
    map, and write the summary; an implicit model has no RMSE, so the summary holds its validation
    ranking metrics (``mfrec evaluate --protocol ranking`` adds the test ones)."""
    from mfrec.models.ials import fit

    t0 = time.perf_counter()
    fitted = fit(dataset, config, callback=recorder(run, callback), log=run.log, validate=validation_ranking(dataset))
    train_seconds = time.perf_counter() - t0
    fitted.save(run.model_path)
    draw_figures(run, dataset, "ials", fitted.best_epoch, movie_vectors=fitted.movie_factors)
    best = fitted.history[fitted.best_epoch - 1]
    summary = {
        **base,
        "epochs_run": len(fitted.history),
        "best_epoch": fitted.best_epoch,
        "train_rmse": None, "val_rmse": None, "test_rmse": None, "test_mae": None,
        **{key: best.metrics.get(key) for key in IALS_COLUMNS},
        "train_seconds": train_seconds,
        "seconds_per_epoch": fitted.config["seconds_per_epoch"],
        "numba_threads": fitted.config["numba_threads"],
        "n_train": len(dataset.train),
        "n_val": len(dataset.val) if dataset.val is not None else 0,
    }
    run.log("best epoch {}: {}".format(fitted.best_epoch, ", ".join(f"{key} {fmt(best.metrics.get(key))}" for key in IALS_COLUMNS)))
    return run.save_summary(summary)


def held_out_errors(model, dataset, predictions=None) -> dict[str, Any]:
    """test_rmse, test_mae and n_test of a rating model, plus the errors on test movies with fewer than
    ``RARE_MOVIE_RATINGS`` training ratings (rare_movies_test_rmse/_mae/_n) when there are any.
    ``predictions``: the model's own (clipped) predictions of the test ratings, in the split's order,
    where they are not ``model.predict``'s (bayes: the posterior mean of the predictions)."""
    import numpy as np

    from mfrec.evaluation.metrics import mae, rmse

    test = dataset.test
    if test is None or len(test) == 0:
        return {"test_rmse": None, "test_mae": None, "n_test": 0}
    truth_all = np.asarray(test.rating)
    if predictions is None:
        ev = model.evaluate(test)
    else:
        ev = {"rmse": rmse(predictions, truth_all), "mae": mae(predictions, truth_all), "n": len(truth_all)}
    out = {"test_rmse": ev["rmse"], "test_mae": ev["mae"], "n_test": ev["n"]}
    counts = np.diff(np.asarray(dataset.train_by_movie.indptr))
    rare = counts[np.asarray(test.movie)] < RARE_MOVIE_RATINGS
    if rare.any():
        pred = (model.predict(np.asarray(test.user)[rare], np.asarray(test.movie)[rare]) if predictions is None
                else np.asarray(predictions)[rare])
        truth = truth_all[rare]
        out.update(rare_movies_test_rmse=rmse(pred, truth), rare_movies_test_mae=mae(pred, truth),
                   rare_movies_test_n=int(rare.sum()))
    return out


def _train_neural(dataset, model: str, options: dict[str, Any], root, run_name: str, callback) -> tuple[Run, dict]:
    import importlib

    try:
        neural = importlib.import_module("mfrec.neural")
    except ImportError as e:
        raise MfrecError(f"the neural model {model!r} needs mfrec.neural and torch ({e}); "
                         "install them with pip install -e \".[torch]\"") from None
    opts, config = neural.resolve(dataset, model, options)  # no torch: TorchMissingError, before any folder
    device = str(opts.get("device") or "cpu")
    if device != "cpu":  # a device this machine lacks is refused before the run folder exists, too
        from mfrec.neural.common import device_of

        device_of(device)
    data = dataset_facts(dataset)
    config = {**config, **data}
    run = Run.create(run_name, root, config=config, extra_columns=neural.extra_columns(model))
    base = {**data, "model": model, "config": config}

    def work() -> dict[str, Any]:
        facts = neural.fit(dataset, model, opts, config, run, callback=recorder(run, callback))
        draw_figures(run, dataset, model, facts.get("best_epoch"), test_rmse=facts.get("test_rmse"))
        summary = {**base, **facts}
        run.log("summary: " + ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}" for k, v in summary.items()
                                        if k not in ("config", "test_ranking")))
        return run.save_summary(summary)

    return run, _guarded(run, work, base)


# files in a run folder that hold movie embeddings worth a map, and the figure each becomes
EMBEDDING_MAPS = {"genre_stage_movie_embeddings.npy": ("genre_movie_map.png", "stage-1 genre embeddings")}


def draw_figures(run: Run, dataset, kind: str, best_epoch: int | None, movie_vectors=None,
                 test_rmse: float | None = None) -> list[Path]:
    """The figures a finished training run gets: its curves from metrics.csv (rmse.png, ranking.png,
    loss.png where it has values; ``test_rmse``, the kept model's, is marked at the best epoch when
    metrics.csv has no test curve), and for exported neural factors (factors.npz) or the given
    ``movie_vectors`` (an ials run's q_i) the movie map.
    A figure that fails is logged and skipped: it must not fail a finished training run."""
    from mfrec.plots.run import curve_figures, movie_map_figure

    written: list[Path | None] = []
    try:
        written += curve_figures(run.path, run.plots_dir, kind, best_epoch, test_rmse=test_rmse)
        maps: dict[str, tuple[Any, str]] = {}
        if movie_vectors is not None:
            maps["movie_map.png"] = (movie_vectors, "q_i")
        if (run.path / "factors.npz").is_file():
            from mfrec.models.factor import FactorModel

            maps["movie_map.png"] = (FactorModel.load(run.path / "factors.npz").effective_movie_factors, "q_i")
        for file, (figure, what) in EMBEDDING_MAPS.items():
            if (run.path / file).is_file():
                import numpy as np

                maps[figure] = (np.load(run.path / file, allow_pickle=False), what)
        for figure, (vectors, what) in maps.items():
            written.append(movie_map_figure(vectors, dataset, run.plots_dir / figure, run.name, what))
    except Exception as e:  # noqa: BLE001 - reported in train.log, the run itself is fine
        run.log(f"figures not drawn: {type(e).__name__}: {e}")
    return [p for p in written if p is not None]


# -- evaluating a run folder -----------------------------------------------------------------------
RANKING_KEYS = ("hit", "ndcg", "recall", "coverage", "genre_consistency")


@renamed_keywords(k="top")
def evaluate_run(exp, protocol: str, top: int = 10, callback: Callable[[Any], Any] | None = None,
                 min_ratings: int = 0) -> tuple[dict, dict]:
    """Evaluate a loaded run (``mfrec.experiments.Experiment``) under ``protocol`` ("rating" or
    "ranking", over lists of ``top`` movies) and record the result in its folder; returns ``(result, summary)``.
    ``min_ratings`` > 0 (ranking) also reports the metrics over the candidates the recommendations
    list (movies with at least that many training ratings), under ``hit@10_min_ratings_N`` names."""
    from mfrec.evaluation.protocols import ranking_protocol, rating_protocol, require_user_last

    if exp.config.get("model") == "popularity":  # nothing is saved but the counts: refit them
        from mfrec.evaluation.ranking import Popularity

        model = Popularity.fit(exp.dataset)
    else:
        model = exp.model
    if protocol == "rating":
        result = rating_protocol(model, exp.dataset)
    else:
        require_user_last(exp.dataset)
        result = ranking_protocol(model, exp.dataset, k=top, callback=callback, min_ratings=min_ratings)
    return result, record_evaluation(exp.path, result)


def record_evaluation(run_path: str | os.PathLike, result: dict[str, Any]) -> dict[str, Any]:
    """Merge a protocol's result into evaluation.json and summary.json of a run folder."""
    from mfrec.experiments import Summary, read_json
    from mfrec.io import write_json

    run_path = Path(run_path)
    ev = read_json(run_path / "evaluation.json")
    ev[result["protocol"]] = result
    write_json(run_path / "evaluation.json", ev)
    summary = Summary.read(run_path / "summary.json").to_dict()
    if result["protocol"] == "ranking":
        k = result["k"]
        from mfrec.evaluation.protocols import min_ratings_key

        for key in RANKING_KEYS:
            summary[f"{key}@{k}"] = result[f"{key}@{k}"]
        filtered = result.get("min_ratings")
        for old in [key for key in summary if "@" in key and "_min_ratings_" in key]:
            del summary[old]  # a filtered figure from an earlier evaluation would not match this one
        summary.pop("min_ratings", None)
        if filtered:
            for key in RANKING_KEYS:
                name = min_ratings_key(f"{key}@{k}", filtered)
                summary[name] = result[name]
            summary["min_ratings"] = filtered
        summary["ranking_split"] = result["split"]
    else:
        if summary.get("test_rmse") is None:
            summary["test_rmse"], summary["test_mae"] = result["rmse"], result["mae"]
        summary["eval_rmse"], summary["eval_mae"] = result["rmse"], result["mae"]
    write_json(run_path / "summary.json", summary)
    return summary


@renamed_keywords(root="runs_root", k="top")
def popularity_run(dataset, runs_root: str | os.PathLike = DEFAULT_ROOT, name: str | None = None, top: int = 10,
                   callback: Callable[[Any], Any] | None = None, min_ratings: int = 0) -> tuple[Path, dict[str, Any]]:
    """A run folder under ``runs_root`` for the popularity baseline (config, train.log, popularity.npz,
    summary), evaluated under the ranking protocol over lists of ``top`` movies; returns ``(folder, summary)``."""
    import numpy as np

    from mfrec.evaluation.protocols import ranking_protocol
    from mfrec.evaluation.ranking import Popularity
    from mfrec.io import write_npz

    t0 = time.perf_counter()
    data = dataset_facts(dataset)
    config = {"model": "popularity", **data, "score": "number of training ratings per movie", "seed": None}
    run = Run.create(name or f"{dataset.name}-popularity", runs_root, config=config)
    base = {**data, "model": "popularity", "config": config}

    def work() -> dict[str, Any]:
        pop = Popularity.fit(dataset)
        write_npz(run.path / "popularity.npz", {"counts": np.asarray(pop.counts)})
        run.log(f"popularity: {dataset.n_movies:,} movies scored by their training rating counts")
        seconds = time.perf_counter() - t0
        result = ranking_protocol(pop, dataset, k=top, callback=callback, min_ratings=min_ratings)
        run.log("ranking: " + ", ".join(f"{key}={v:.4f}" for key, v in result.items() if "@" in key))
        # the summary (status ok) is written only once the evaluation is done: a run killed before
        # that has none, so it is never taken for a finished run
        run.save_summary({**base, "epochs_run": 0, "best_epoch": None, "train_rmse": None, "val_rmse": None,
                          "test_rmse": None, "test_mae": None, "train_seconds": seconds, "seconds_per_epoch": None})
        return record_evaluation(run.path, result)

    return run.path, _guarded(run, work, base)
