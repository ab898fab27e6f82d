"""Hyperparameter search (``mfrec tune``): a grid, or a random sample of it, trained in parallel.

``tune(dataset, model, grid, ...)`` trains one ordinary run folder per setting (``train_run``) under
one parent folder, ``<runs_root>/<name>/``, and chooses on the validation split only: the metric is
``val_rmse`` for rating models and ``val_ndcg@10`` for ranking models (``--metric`` picks any
number a trial's summary.json holds; names with rmse/mae/loss are minimised, others maximised). The
test split is never looked at. The parent folder gets

- ``tune.json``: the search (dataset and its fingerprint, model, grid, fixed options, metric);
- ``leaderboard.csv``: one row per trial, best first (failed trials last, with their error);
- ``tune.png``: the validation metric against each hyperparameter, one panel each;
- ``best.json``: the winning trial's model and options, its best epoch as ``epochs`` and
  ``train_with_validation``: ``Main.py --config best.json`` retrains it on train + validation.

Trials run in local processes (``concurrent.futures``, spawned, so no Numba thread pool is
forked) or on Dask (``engine="dask"``: a ``LocalCluster`` of ``workers`` processes, or an existing
cluster at ``scheduler``). Each trial gets ``cores // workers`` Numba threads (at least one) unless
``threads`` is among the options, so parallel trials never oversubscribe the cores.

Resuming: the parent folder's name depends only on what is searched (unless ``name`` is given), and
a trial whose run folder there finished with status "ok" for the same options is not trained
again. Ctrl-C or a killed trial loses only the trials that were running; the leaderboard is
rewritten after every finished trial, so it always holds what is done.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import random as _random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mfrec.callbacks import Step, emit
from mfrec.errors import MfrecError
from mfrec.experiments.run import DEFAULT_ROOT, FINGERPRINT, dataset_fingerprint
from mfrec.io import write_json, write_text
from mfrec.models.config import MODELS as ALS_MODELS
from mfrec.training import NEURAL_MODELS

RANKING_MODELS = ("ials", "ease", "sequential")  # chosen by a ranking metric on the validation split
RATING_METRIC = "val_rmse"
RANKING_METRIC = "val_ndcg@10"
LOWER_IS_BETTER = ("rmse", "mae", "loss")
ENGINES = ("local", "dask")


# -- what is searched ----------------------------------------------------------------------------
def model_options(model: str) -> dict[str, Any]:
    """The options of ``model`` that a search may vary, with their defaults (which give their types)."""
    if model in ALS_MODELS:
        from mfrec.models import make_config

        options = make_config({"model": model}).to_dict()
        options.pop("model", None)
        return options
    if model in NEURAL_MODELS:
        from mfrec.neural import default_options

        return default_options(model)
    raise MfrecError(f"unknown model {model!r}; choose one of: {', '.join(ALS_MODELS + NEURAL_MODELS)}")


def _typed(key: str, text: str, default: Any) -> Any:
    text = text.strip()
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if default is None:  # an option without a typed default: a number where it reads as one
            for kind in (int, float):
                try:
                    return kind(text)
                except ValueError:
                    pass
        return text
    except ValueError:
        raise MfrecError(f"--grid {key}: {text!r} is not a {type(default).__name__} "
                         f"(the default is {default!r})") from None


def parse_grid(items: list[str], model: str) -> dict[str, list[Any]]:
    """``["factors=16,64", "reg=0.2,0.4"]`` into ``{"factors": [16, 64], "reg": [0.2, 0.4]}``, each value
    typed like the option's default; an unknown option or a repeated one is an MfrecError."""
    known = model_options(model)
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not text.strip():
            raise MfrecError(f"--grid takes NAME=V1,V2,..., got {item!r}")
        if key not in known:
            raise MfrecError(f"{model} has no option {key!r}; its options are: {', '.join(sorted(known))}")
        if key in grid:
            raise MfrecError(f"--grid {key} is given twice; list all its values once: {key}=V1,V2,...")
        values = [_typed(key, v, known[key]) for v in text.split(",") if v.strip()]
        grid[key] = list(dict.fromkeys(values))  # a value listed twice is one setting
    if not grid:
        raise MfrecError("give at least one --grid NAME=V1,V2,...")
    return grid


def settings_of(grid: dict[str, list[Any]], random: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Every combination of the grid (the first option varies slowest), or ``random`` of them drawn
    without replacement with ``seed`` (kept in grid order)."""
    keys = list(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if random is not None:
        if random < 1:
            raise MfrecError(f"--random must be at least 1, got {random}")
        if random < len(combos):
            chosen = sorted(_random.Random(seed).sample(range(len(combos)), random))
            combos = [combos[i] for i in chosen]
    return combos


def default_metric(model: str) -> str:
    """The validation metric a search over ``model`` is decided by."""
    return RANKING_METRIC if model in RANKING_MODELS else RATING_METRIC


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` are better (errors and losses) or larger (hit rates, NDCG, ...)."""
    return any(word in metric.lower() for word in LOWER_IS_BETTER)


def _label(setting: dict[str, Any]) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in setting.items())


# -- one trial (runs in a worker process) ---------------------------------------------------------
def run_trial(data_path: str, model: str, options: dict[str, Any], parent: str, name: str) -> dict[str, Any]:
    """Train one setting into ``parent`` (a worker process calls this): returns the run folder and
    its summary, or the error of a failed trial (the run folder is then marked failed)."""
    from mfrec.data import load
    from mfrec.training import train_run

    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        dataset = load(data_path)
        run, summary = train_run(dataset, model, options, runs_root=parent, name=name)
        return {"status": "ok", "run": str(run.path), "summary": summary}
    except Exception as e:  # noqa: BLE001 - a failed trial is a leaderboard row, not the end of the search
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"}


# -- the search ------------------------------------------------------------------------------------
@dataclass
class Trial:
    """One setting of the search and what became of it."""

    number: int
    setting: dict[str, Any]
    options: dict[str, Any]
    status: str = "pending"  # pending, ok, failed
    run: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    resumed: bool = False

    @property
    def name(self) -> str:
        return f"trial{self.number:03d}-{_label(self.setting)}"

    def value(self, metric: str) -> float | None:
        v = self.summary.get(metric)
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


@dataclass
class TuneResult:
    """The search's parent folder, its trials (best first) and the best one (None if none finished)."""

    path: Path
    metric: str
    trials: list[Trial]
    best: Trial | None

    @property
    def leaderboard(self) -> Path:
        return self.path / "leaderboard.csv"

    @property
    def figure(self) -> Path:
        return self.path / "tune.png"

    @property
    def best_config(self) -> Path:
        return self.path / "best.json"


def search_name(dataset, model: str, grid: dict[str, list[Any]], options: dict[str, Any], random: int | None,
                seed: int) -> str:
    """The parent folder's default name: the dataset, the model and a short hash of what is searched,
    so the same command finds the same folder again (and resumes it)."""
    spec = {"grid": grid, "options": options, "random": random, "seed": seed,
            "fingerprint": dataset_fingerprint(getattr(dataset, "manifest", None))}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"tune-{dataset.name}-{model}-{digest}"


def _finished(parent: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Trial name prefix -> (run folder, summary) of every trial in ``parent`` that finished ok."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for child in sorted(parent.iterdir()) if parent.is_dir() else []:
        f = child / "summary.json"
        if not (child.is_dir() and child.name.startswith("trial") and f.is_file()):
            continue
        try:
            summary = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if summary.get("status") == "ok":
            out[child.name.split("-", 1)[0]] = (str(child), summary)
    return out


def _same_options(summary: dict[str, Any], options: dict[str, Any]) -> bool:
    config = summary.get("config") or {}
    return all(config.get(k) == v for k, v in options.items() if k != "threads")


def tune(dataset, model: str, grid: dict[str, list[Any]], *, options: dict[str, Any] | None = None,
         random: int | None = None, seed: int = 0, metric: str | None = None, engine: str = "local",
         workers: int | None = None, scheduler: str | None = None, runs_root: str | os.PathLike = DEFAULT_ROOT,
         name: str | None = None, callback: Callable[[Any], Any] | None = None) -> TuneResult:
    """Search ``grid`` (``{option: [values]}``) for ``model`` on ``dataset``'s validation split.

    ``options`` are fixed for every trial; ``random`` draws that many settings of the grid instead of
    all; ``metric`` (default :func:`default_metric`) is the summary.json key that decides. Progress
    goes to ``callback`` as ``mfrec.callbacks.Step`` events (one per finished trial). Returns a
    :class:`TuneResult`; the files are described in the module's docstring.
    """
    if engine not in ENGINES:
        raise MfrecError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if scheduler:
        engine = "dask"
    if dataset.val is None or len(dataset.val) == 0:
        raise MfrecError(f"dataset {dataset.name} has no validation split to choose on; prepare it with "
                         "--val-fraction (Data_processing.py), the test split is never used for choosing")
    known = model_options(model)
    options = {k: v for k, v in dict(options or {}).items() if v is not None}
    for key in list(grid) + list(options):
        if key not in known:
            raise MfrecError(f"{model} has no option {key!r}; its options are: {', '.join(sorted(known))}")
    clash = sorted(set(grid) & set(options))
    if clash:
        raise MfrecError(f"{', '.join(clash)} is both searched (--grid) and fixed; give it once")
    metric = metric or default_metric(model)
    settings = settings_of(grid, random, seed)
    cores = os.cpu_count() or 1
    n_workers = max(1, min(int(workers or cores), len(settings)))
    if "threads" in known and "threads" not in options and "threads" not in grid:
        options["threads"] = max(1, cores // n_workers)  # parallel trials share the cores
    parent = Path(runs_root) / (name or search_name(dataset, model, grid, options, random, seed))
    parent.mkdir(parents=True, exist_ok=True)
    spec = {"dataset": dataset.name, "data_path": str(Path(dataset.path).resolve()),
            FINGERPRINT: dataset_fingerprint(getattr(dataset, "manifest", None)), "model": model, "grid": grid,
            "options": options, "random": random, "seed": seed, "metric": metric,
            "lower_is_better": lower_is_better(metric), "n_trials": len(settings)}
    old = parent / "tune.json"
    if old.is_file():
        before = json.loads(old.read_text())
        if before.get(FINGERPRINT) != spec[FINGERPRINT] or before.get("model") != model:
            raise MfrecError(f"{parent} holds a search of {before.get('model')} on another dataset version; "
                             "choose another --name")
    write_json(old, spec)

    trials = [Trial(i + 1, s, {**options, **s}) for i, s in enumerate(settings)]
    done = _finished(parent)
    for t in trials:
        prior = done.get(f"trial{t.number:03d}")
        if prior and _same_options(prior[1], t.options):
            t.status, t.run, t.summary, t.resumed = "ok", prior[0], prior[1], True
    todo = [t for t in trials if t.status != "ok"]
    label = f"tune {model}"
    emit(callback, Step(len(trials) - len(todo), len(trials), label, " trials"))

    def finished(t: Trial, out: dict[str, Any]) -> None:
        t.status = out["status"]
        t.run, t.summary, t.error = out.get("run"), out.get("summary") or {}, out.get("error")
        if t.status == "ok" and t.value(metric) is None:
            t.status, t.error = "failed", f"its summary has no {metric}"
        write_outputs(parent, model, trials, metric, grid)
        emit(callback, Step(1, len(trials), label, " trials"))

    data_path = str(Path(dataset.path).resolve())
    jobs = [(t, (data_path, model, t.options, str(parent), t.name)) for t in todo]
    if todo:
        if engine == "dask":
            _run_dask(jobs, finished, n_workers, scheduler)
        else:
            _run_local(jobs, finished, n_workers)
    return write_outputs(parent, model, trials, metric, grid)


def _run_local(jobs, finished, n_workers: int) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # spawn: a forked child would inherit the parent's threads (Numba's pool among them) half-dead
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending = {pool.submit(run_trial, *args): t for t, args in jobs}
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in ready:
                t = pending.pop(fut)
                try:
                    out = fut.result()
                except Exception as e:  # noqa: BLE001 - a worker process that died
                    out = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
                finished(t, out)
    except BaseException:  # Ctrl-C, SIGTERM: stop the running trials now; a re-run trains them again
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(jobs, finished, n_workers: int, scheduler: str | None) -> None:
    from mfrec.models.dask_als import close_client, dask_client

    client = dask_client(n_workers, scheduler)
    from distributed import as_completed

    try:
        futures = {client.submit(run_trial, *args, key=f"mfrec-{t.name}-{os.getpid()}", pure=False): t
                   for t, args in jobs}
        for fut in as_completed(list(futures)):
            t = futures[fut]
            try:
                out = fut.result()
            except Exception as e:  # noqa: BLE001 - e.g. the worker died more often than Dask retries
                out = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
            finished(t, out)
    finally:
        close_client(client)


# -- the outputs -----------------------------------------------------------------------------------
def ranked(trials: list[Trial], metric: str) -> list[Trial]:
    """Finished trials best first, then the unfinished and failed ones in trial order."""
    sign = 1.0 if lower_is_better(metric) else -1.0
    good = [t for t in trials if t.status == "ok" and t.value(metric) is not None]
    good.sort(key=lambda t: (sign * t.value(metric), t.number))
    return good + [t for t in trials if t not in good]


LEADERBOARD_FACTS = ("val_rmse", "train_rmse", "best_epoch", "epochs_run", "train_seconds")


def leaderboard_rows(trials: list[Trial], metric: str, grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The leaderboard: rank, trial, the searched options, the metric and a few facts, best first.
    Test-split numbers are left out on purpose: they play no part in choosing."""
    rows = []
    for rank, t in enumerate(ranked(trials, metric), 1):
        row: dict[str, Any] = {"rank": rank if t.status == "ok" else None, "trial": t.number}
        row.update({k: t.setting.get(k) for k in grid})
        row[metric] = t.value(metric)
        row.update({k: t.summary.get(k) for k in LEADERBOARD_FACTS if k != metric})
        row.update(status=t.status, run=Path(t.run).name if t.run else None, error=t.error)
        rows.append(row)
    return rows


def write_outputs(parent: Path, model: str, trials: list[Trial], metric: str,
                  grid: dict[str, list[Any]]) -> TuneResult:
    """Write leaderboard.csv, tune.png and best.json for the trials so far; returns the result."""
    rows = leaderboard_rows(trials, metric, grid)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["rank"], lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
    write_text(parent / "leaderboard.csv", buf.getvalue())
    order = ranked(trials, metric)
    best = order[0] if order and order[0].status == "ok" else None
    if best is not None:
        config = {k: v for k, v in (best.summary.get("config") or {}).items() if k != "threads"}
        options = {k: v for k, v in config.items() if k != "model" and k in model_options(model)}
        if isinstance(best.summary.get("best_epoch"), int) and "epochs" in options:
            options["epochs"] = best.summary["best_epoch"]  # retrained without validation: the epochs that were best
        write_json(parent / "best.json", {
            "model": model, **options, "train_with_validation": True,
            "tuned": {"metric": metric, "value": best.value(metric), "trial": best.number, "run": best.run,
                      "setting": best.setting, "search": str(parent), "best_epoch": best.summary.get("best_epoch"),
                      "dataset": best.summary.get("dataset")},
        })
        from mfrec.plots.tune import tune_figure

        try:
            tune_figure(rows, grid, metric, parent / "tune.png", title=f"{model}: {parent.name}",
                        lower_is_better=lower_is_better(metric))
        except Exception as e:  # noqa: BLE001 - a figure must not end a search; the CSV holds the numbers
            (parent / "tune.log").open("a").write(f"figure not drawn: {type(e).__name__}: {e}\n")
    return TuneResult(parent, metric, order, best)
