"""The notebook API: ``recommend``, ``fold_in``, ``similar`` and ``explain`` on a loaded experiment.

``load_experiment`` (``mfrec.load_experiment``) returns a :class:`LoadedExperiment`: the run folder
of ``mfrec.experiments.Experiment`` plus these methods. They and Inference.py share one function,
``run_request``, so a notebook and the command line give the same lists::

    exp = mfrec.load_experiment("ml-100k-u1-mf-genre")
    exp.recommend(like=["Star Wars", "Alien"], n=10)            # polars DataFrame
    exp.recommend({"Toy Story": 5, "Heat (1995)": 2}, genre="Comedy")
    exp.recommend(user=12)  ;  exp.recommend(users=[12, 345])
    exp.similar("Godfather")  ;  exp.explain(like=["Star Wars"])  ;  exp.fold_in({"Fargo": 5})

Ratings are given as ``{title_or_movieId: rating}``, a list of ``(title_or_movieId, rating)`` pairs,
or through ``like=[...]`` (the top of the rating scale).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

from mfrec.errors import DataError
from mfrec.experiments.run import DEFAULT_ROOT, Experiment, find_run


def _pairs(ratings: Any) -> list[tuple[Any, float]]:
    if ratings is None:
        return []
    if isinstance(ratings, Mapping):
        return [(k, float(v)) for k, v in ratings.items()]
    out = []
    for item in ratings:
        if isinstance(item, (tuple, list)) and len(item) == 2:
            out.append((item[0], float(item[1])))
        else:
            raise DataError(f"a rating must be a (title or movieId, rating) pair, got {item!r}")
    return out


def profile(rec, ratings: Any = None, like: Iterable[Any] = (), rate: Iterable[str] = ()) -> list[tuple[int, float]]:
    """(movie index, rating) pairs of a made-up user from every way of giving them (last one wins)."""
    merged = dict(rec.profile([str(x) for x in like], list(rate)))
    for q, r in _pairs(ratings):
        m = rec.movie(q)
        merged[m] = rec.check_rating(r, repr(str(q)))
    return list(merged.items())


def _filters(genre: Iterable[str] | str | None, years: str | int | tuple | None, min_ratings: int = 0):
    from mfrec.inference.recommend import Filters

    genres = (genre,) if isinstance(genre, str) else tuple(genre or ())
    if years is None or isinstance(years, (str, int)):
        year_range = Filters.parse_years(None if years is None else str(years))
    else:
        year_range = tuple(years)
    if not isinstance(min_ratings, int) or min_ratings < 0:
        raise DataError(f"--min-ratings must be a whole number >= 0, got {min_ratings!r}")
    return Filters(tuple(genres), year_range, min_ratings)


def run_request(
    rec,
    *,
    ratings: Any = None,
    like: Iterable[Any] = (),
    rate: Iterable[str] = (),
    user: Any = None,
    users: Sequence[Any] | str | None = None,
    similar: Any = None,
    n: int = 10,
    genre: Iterable[str] | str | None = None,
    years: str | tuple | None = None,
    explain: bool = False,
    exclude: str = "all",
    min_ratings: int = 0,
):
    """One recommendation request (exactly one of: ratings/like/rate, user, users, similar) -> Result."""
    filters = _filters(genre, years, min_ratings)
    like, rate = list(like or ()), list(rate or ())
    if isinstance(users, str):
        users = [u for u in users.replace(" ", "").split(",") if u]
    modes = [name for name, on in (
        ("--like/--rate", bool(like or rate or ratings)), ("--user", user is not None),
        ("--users", bool(users)), ("--similar", similar is not None),
    ) if on]
    if len(modes) > 1:
        raise DataError(f"give only one of {', '.join(modes)} per request")
    if not modes:
        raise DataError("nothing to recommend for: give --like/--rate (a made-up user), --user ID, --users ID,ID or --similar TITLE")
    if similar is not None:
        return rec.similar(similar, n=n, filters=filters)
    if users:
        return rec.recommend_group(list(users), n=n, filters=filters, exclude=exclude)
    if user is not None:
        return rec.recommend_user(user, n=n, filters=filters, explain=explain, exclude=exclude)
    return rec.recommend(profile(rec, ratings, like, rate), n=n, filters=filters, explain=explain)


class LoadedExperiment(Experiment):
    """A run folder with the inference methods; its ``Recommender`` is built on first use."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._recommender = None

    @property
    def recommender(self):
        """The run's ``Recommender`` (loaded once): see ``mfrec.inference.recommender_for``."""
        if self._recommender is None:
            from mfrec.inference import recommender_for

            self._recommender = recommender_for(self)
        return self._recommender

    def recommend(self, ratings: Any = None, *, like: Iterable[Any] = (), user: Any = None,
                  users: Sequence[Any] | str | None = None, n: int = 10, genre=None, years=None,
                  explain: bool = False, exclude: str = "all", min_ratings: int = 0):
        """Top-n movies (polars DataFrame: rank, movieId, title, year, genres, predicted_rating, score, why)
        for a made-up user (``ratings`` / ``like``), an existing user (``user``, original id) or a
        group (``users``, ranked by the least-satisfied member)."""
        return run_request(self.recommender, ratings=ratings, like=like, user=user, users=users, n=n,
                           genre=genre, years=years, explain=explain, exclude=exclude, min_ratings=min_ratings).table

    def similar(self, title: Any, n: int = 10, genre=None, years=None, min_ratings: int = 0):
        """Nearest movies by cosine of the movie factors (genre part included for mf-genre)."""
        return run_request(self.recommender, similar=title, n=n, genre=genre, years=years, min_ratings=min_ratings).table

    def fold_in(self, ratings: Any = None, *, like: Iterable[Any] = ()):
        """A made-up user's ``UserVector(bias, vector)`` from the model's own ALS user step."""
        rec = self.recommender
        return rec.fold_in(profile(rec, ratings, like))

    def explain(self, ratings: Any = None, *, like: Iterable[Any] = (), user: Any = None, movies: Iterable[Any] | None = None,
                n: int = 10, genre=None, years=None):
        """Each rated movie's exact contribution to the scores of ``movies`` (default: the top-n list)
        as a long polars DataFrame (movieId, title, rated_movieId, rated_title, rating, contribution,
        share, baseline, score)."""
        rec = self.recommender
        if user is not None:
            pairs = rec._train_row(rec.user(user))
        else:
            pairs = profile(rec, ratings, like)
        if not pairs:
            raise DataError("explain needs ratings: give ratings/like or user")
        if movies is None:
            if user is not None:
                req = rec.recommend_user(user, n=n, filters=_filters(genre, years))
            else:
                req = rec.recommend(pairs, n=n, filters=_filters(genre, years))
            targets = [rec.movie(int(m)) for m in req.table["movieId"]]
        else:
            targets = [rec.movie(m) for m in movies]
        return rec.explanation(pairs, targets)


def load_experiment(path_or_run_name: str | os.PathLike, root: str | os.PathLike = DEFAULT_ROOT) -> LoadedExperiment:
    """Load a run folder: a path, a folder name under ``Experiments_/``, or a run's ``--name`` (latest)."""
    return LoadedExperiment(find_run(path_or_run_name, root))
