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


def ranker_path(spec: str, predictor, runs_root: str | os.PathLike) -> tuple[Path, str]:
    """``(run folder, how)`` for ``--rank-by SPEC``: a run folder or name, or a model kind (the newest
    finished run of that kind on the predicting run's dataset version)."""
    from mfrec.experiments.run import find_run

    root = Path(runs_root)
    try:
        path = find_run(spec, root)
    except MfrecError:
        path = None
    if path is not None:
        return Path(path), f"ranking with run {Path(path).name}"
    path = find_ranker_run(spec, predictor, root)
    if path is None:
        raise DataError(f"--rank-by {spec!r} is neither a run nor a model kind with a finished run on dataset "
                        f"{predictor.config.get('dataset', '?')} under {root}/ (train one, e.g. "
                        f"`mfrec evaluate --popularity --data NAME`, or pass a run folder)")
    return path, f"ranking with the newest finished {spec} run on the same dataset: {path.name}"


def open_ranker(spec: str, predictor, runs_root: str | os.PathLike):
    """``(ranker, how)`` for ``--rank-by SPEC`` (``ranker_path``). ``predictor`` is the loaded run whose
    predicted ratings the list shows."""
    from mfrec.inference.api import load_experiment

    path, how = ranker_path(spec, predictor, runs_root)
    exp = load_experiment(path, runs_root=Path(runs_root))
    want, got = predictor.dataset_fingerprint, exp.dataset_fingerprint
    if want is not None and got is not None and want != got:
        raise DataError(f"--rank-by run {exp.name} was trained on another dataset version than run "
                        f"{predictor.name}: rank and predict with runs on one dataset")
    if exp.path.resolve() == Path(predictor.path).resolve():
        raise DataError(f"--rank-by names the run that predicts ({exp.name}): leave --rank-by out to rank with it")
    return ranker_for(exp), how

AUTO_RANKERS = ("ials", "ease")  # top-N models, best first (README: Top-N side by side)
RATING_MODELS = ("bias", "mf", "mf-genre", "bayes", "neumf", "genre-embedding")
RANKED_MODES = ("like", "user")  # --rank-by ranks a made-up user's or an existing user's list


def auto_ranker_run(exp, runs_root: str | os.PathLike) -> Path | None:
    """What ``--rank-by auto`` ranks a rating run's lists with: the newest finished ials, else ease, run on
    the same dataset version (fingerprint), or None (also for a run that is no rating model, or whose
    dataset version is unknown: then no ranker can be shown to have seen the same data)."""
    kind = exp.config.get("model") or exp.summary.get("model")
    if kind not in RATING_MODELS or exp.dataset_fingerprint is None:
        return None
    for ranker_kind in AUTO_RANKERS:
        path = find_ranker_run(ranker_kind, exp, runs_root)
        if path is not None:
            return path
    return None


def choose_ranker(exp, rank_by: str, mode: str, explain: bool, dislikes: str, runs_root: str | os.PathLike,
                  lower_bound: float = 0.0) -> tuple[str | None, str | None]:
    """``(spec, note)`` for ``--rank-by``: the run or kind that ranks the list (None: the run ranks its
    own) and, when ``auto`` chose one, the line that says so. ``none`` -> None; a run or kind -> itself;
    ``auto`` -> for a rating model's made-up or existing user ``auto_ranker_run``, unless the request
    explains or re-ranks the run's own list (explain, dislikes other than "score", a lower bound)."""
    if rank_by == "none":
        return None, None
    if rank_by != "auto":
        return rank_by, None
    if not rankable(mode, explain, dislikes, lower_bound):
        return None, None
    path = auto_ranker_run(exp, runs_root)
    if path is None:
        return None, None
    kind = _run_kind(path)[0]
    return str(path), (f"--rank-by auto: {kind} run {path.name} ranks, {exp.name} predicts the ratings "
                       f"(--rank-by none ranks with {exp.name} alone)")


def rankable(mode: str, explain: bool, dislikes: str, lower_bound: float = 0.0) -> bool:
    """Whether another run may rank this request's list (``check_rankable`` says why not)."""
    return mode in RANKED_MODES and not explain and dislikes == "score" and not lower_bound


def check_rankable(mode: str, explain: bool, dislikes: str, lower_bound: float = 0.0) -> None:
    """Raise the one-sentence ``DataError`` for a request another run cannot rank."""
    if mode not in RANKED_MODES:
        raise DataError("--rank-by ranks a made-up user's (--like/--rate) or an existing user's (--user) list")
    if explain or dislikes != "score" or lower_bound:
        raise DataError("--explain, --dislikes and --lower-bound explain or re-rank the --experiment run's own "
                        "list: give them without --rank-by")


def ranked_request(rec, ranker, *, rate=None, like=(), user=None, top: int, genre=None, years=None,
                   min_ratings: int = 0, exclude: str = "all"):
    """``run_request`` for a list ranked by ``ranker`` (see ``open_ranker``) with ``rec``'s predicted
    ratings: a made-up user (``rate``/``like``, as ``run_request`` takes them) or an existing one (``user``)."""
    from mfrec.inference.api import _filters, _title_queries, match_notes, profile

    filters = _filters(genre, years, min_ratings)
    if user is not None:
        return rec.recommend_ranked_by(ranker, user_id=user, n=top, filters=filters, exclude=exclude)
    like = list(like or ())
    result = rec.recommend_ranked_by(ranker, profile(rec, rate, like), n=top, filters=filters)
    result.notes[:0] = match_notes(rec, _title_queries(rate, like))
    return result
