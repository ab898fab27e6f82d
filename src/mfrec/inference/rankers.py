"""``--rank-by``: rank a list with one run and show the predicted ratings of another.

A *ranker* is any object that scores every movie for a user:

- ``score_made_up(ratings)`` -> (n_movies,) scores for a made-up user's (movie index, rating) pairs;
- ``score_user(u)`` -> (n_movies,) scores for an existing user (index ``u``);
- ``reasons(ratings, movies)`` -> the "why" cell of each listed movie;
- ``describe_ranker()`` -> one phrase naming the run and what its scores are;
- ``movie_ids`` -> the original movieId of every movie index (checked against the predicting run's).

Every factor run's ``Recommender`` is one (ALS, neumf/genre-embedding factors, and any model kind
whose ``Recommender`` folds in a made-up user); a popularity run (``mfrec evaluate --popularity``) is
:class:`PopularityRanker`. ``open_ranker`` finds the run: a run folder or name, or a model kind, which
means the newest finished run of that kind trained on the same dataset version (fingerprint) as the
run that predicts.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mfrec.errors import DataError, MfrecError, ModelError


class PopularityRanker:
    """A popularity run (``popularity.npz``): every user's list runs down the training rating counts."""

    kind = "popularity"

    def __init__(self, counts, movie_ids, run_name: str):
        self.counts = np.asarray(counts, np.float32)
        self.movie_ids = np.asarray(movie_ids, np.int64)
        self.run_name = run_name
        if len(self.counts) != len(self.movie_ids):
            raise ModelError(f"popularity run {run_name} scores {len(self.counts)} movies but its dataset has "
                             f"{len(self.movie_ids)}: was the data prepared again since?")

    def score_made_up(self, ratings) -> np.ndarray:
        return self.counts

    def score_user(self, u: int) -> np.ndarray:
        return self.counts

    def reasons(self, ratings, movies) -> list[str]:
        return [f"{int(self.counts[m])} training ratings" for m in np.asarray(movies, np.int64)]

    def describe_ranker(self) -> str:
        return f"run {self.run_name} (popularity: training ratings per movie)"


def ranker_for(exp):
    """The ranker of a loaded run: a popularity run's counts, else the run's ``Recommender``."""
    path = Path(exp.path)
    npz = path / "popularity.npz"
    if npz.is_file():
        try:
            with np.load(npz, allow_pickle=False) as z:
                counts = np.asarray(z["counts"])
        except (OSError, ValueError, KeyError, EOFError) as e:
            raise ModelError(f"{npz} cannot be read ({type(e).__name__}): run `mfrec evaluate --popularity` again") from None
        return PopularityRanker(counts, exp.dataset.movie_ids.ids, exp.name)
    return exp.recommender


def _run_kind(path: Path) -> tuple[str | None, str | None, str]:
    """(model kind, dataset fingerprint, finished) of a finished run folder, or (None, None, "") when it did
    not finish or cannot be read."""
    from mfrec.experiments.run import FINGERPRINT, read_config
    from mfrec.experiments.summary import Summary

    try:
        summary = Summary.read(path / "summary.json")
        config = read_config(path / "config.json")
    except (OSError, MfrecError):
        return None, None, ""
    if summary.get("status") != "ok":
        return None, None, ""
    return (config.get("model") or summary.get("model"), config.get(FINGERPRINT) or summary.get(FINGERPRINT),
            str(summary.get("finished", "")))


def find_ranker_run(kind: str, predictor, runs_root: str | os.PathLike) -> Path | None:
    """The newest finished run of model ``kind`` under ``runs_root`` trained on the predicting run's dataset
    version (its fingerprint), or None."""
    root = Path(runs_root)
    want = predictor.dataset_fingerprint
    found = []
    for d in (root.iterdir() if root.is_dir() else []):
        if not d.is_dir() or Path(d).resolve() == Path(predictor.path).resolve():
            continue
        run_kind, fingerprint, finished = _run_kind(d)
        if run_kind == kind and (want is None or fingerprint == want):
            found.append((finished, d.name, d))
    return max(found)[2] if found else None


def open_ranker(spec: str, predictor, runs_root: str | os.PathLike):
    """``(ranker, how)`` for ``--rank-by SPEC``: a run folder or name, or a model kind (the newest finished
    run of that kind on the predicting run's dataset version). ``predictor`` is the loaded run whose
    predicted ratings the list shows."""
    from mfrec.experiments.run import find_run
    from mfrec.inference.api import load_experiment

    root = Path(runs_root)
    try:
        path = find_run(spec, root)
    except MfrecError:
        path = None
    if path is None:
        path = find_ranker_run(spec, predictor, root)
        if path is None:
            raise DataError(f"--rank-by {spec!r} is neither a run nor a model kind with a finished run on dataset "
                            f"{predictor.config.get('dataset', '?')} under {root}/ (train one, e.g. "
                            f"`mfrec evaluate --popularity --data NAME`, or pass a run folder)")
        how = f"ranking with the newest finished {spec} run on the same dataset: {path.name}"
    else:
        how = f"ranking with run {path.name}"
    exp = load_experiment(path, runs_root=root)
    want, got = predictor.dataset_fingerprint, exp.dataset_fingerprint
    if want is not None and got is not None and want != got:
        raise DataError(f"--rank-by run {exp.name} was trained on another dataset version than run "
                        f"{predictor.name}: rank and predict with runs on one dataset")
    if exp.path.resolve() == Path(predictor.path).resolve():
        raise DataError(f"--rank-by names the run that predicts ({exp.name}): leave --rank-by out to rank with it")
    return ranker_for(exp), how
