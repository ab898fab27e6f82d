"""The notebook API: ``recommend``, ``fold_in``, ``similar`` and ``explain`` on a loaded experiment.

``load_experiment`` (``mfrec.load_experiment``) returns a :class:`LoadedExperiment`: the run folder
of ``mfrec.experiments.Experiment`` plus these methods. They and Inference.py share one function,
``run_request``, and one set of defaults (``mfrec.inference.defaults.DEFAULTS``), so a notebook and
the command line give the same lists. Keywords have the names of Inference.py's options
(``top`` = ``--top``, ``rate`` = ``--rate``, ``runs_root`` = ``--runs-root``, ...)::

    exp = mfrec.load_experiment("ml-100k-u1-mf-genre")
    exp.recommend(like=["Star Wars", "Alien"], top=10)          # polars DataFrame
    exp.recommend(rate={"Toy Story": 5, "Heat (1995)": 2}, genre="Comedy")
    exp.recommend(user=12)  ;  exp.recommend(users=[12, 345])
    exp.similar("Godfather")  ;  exp.explain(like=["Star Wars"])  ;  exp.fold_in(rate={"Fargo": 5})

``rate`` takes ``{title_or_movieId: rating}``, ``(title_or_movieId, rating)`` pairs or
``"TITLE=RATING"`` strings (as ``--rate``), and is also the first positional argument;
``like=[...]`` rates at the top of the scale. The old keywords ``n=``, ``ratings=`` and ``root=``
still work for one release, with a DeprecationWarning.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

from mfrec.errors import DataError, renamed_keywords
from mfrec.experiments.run import DEFAULT_ROOT, Experiment, find_run
from mfrec.inference.defaults import DEFAULTS


def profile(rec, rate: Any = None, like: Iterable[Any] = ()) -> list[tuple[int, float]]:
    """(movie index, rating) pairs of a made-up user: ``like`` first, then ``rate`` in order (the last
    rating of a movie wins). ``rate``: a mapping, (movie, rating) pairs or "TITLE=RATING" strings."""
    merged = dict(rec.profile([str(x) for x in like]))
    if rate is None:
        return list(merged.items())
    if isinstance(rate, str):
        rate = [rate]
    for item in (rate.items() if isinstance(rate, Mapping) else rate):
        if isinstance(item, str):
            merged.update(rec.profile(rates=[item]))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            q, r = item
            merged[rec.movie(q)] = rec.check_rating(float(r), repr(str(q)))
        else:
            raise DataError(f"a rating must be a (title or movieId, rating) pair or \"TITLE=RATING\", got {item!r}")
    return list(merged.items())


def _filters(genre: Iterable[str] | str | None, years: str | int | tuple | None,
             min_ratings: int = DEFAULTS.min_ratings):
    from mfrec.inference.recommend import Filters

    genres = (genre,) if isinstance(genre, str) else tuple(genre or ())
    if years is None or isinstance(years, (str, int)):
        year_range = Filters.parse_years(None if years is None else str(years))
    else:
        year_range = tuple(years)
    if not isinstance(min_ratings, int) or min_ratings < 0:
        raise DataError(f"--min-ratings must be a whole number >= 0, got {min_ratings!r}")
    return Filters(tuple(genres), year_range, min_ratings)


@renamed_keywords(ratings="rate", n="top")
def run_request(
    rec,
    *,
    rate: Any = None,
    like: Iterable[Any] = (),
    user: Any = None,
    users: Sequence[Any] | str | None = None,
    similar: Any = None,
    top: int = DEFAULTS.top,
    genre: Iterable[str] | str | None = None,
    years: str | tuple | None = None,
    explain: bool = False,
    exclude: str = DEFAULTS.exclude,
    min_ratings: int = DEFAULTS.min_ratings,
    dislikes: str = DEFAULTS.dislikes,
    lower_bound: float = 0.0,
):
    """One recommendation request (exactly one of: rate/like, user, users, similar) -> Result.
    ``dislikes`` ranks a made-up user's list (``Recommender.made_up_scores``); ``lower_bound`` z > 0 ranks
    a bayes run's made-up or existing user by predicted rating - z x posterior sd."""
    filters = _filters(genre, years, min_ratings)
    like = list(like or ())
    if isinstance(users, str):
        users = [u for u in users.replace(" ", "").split(",") if u]
    modes = [name for name, on in (
        ("--like/--rate", bool(like or rate)), ("--user", user is not None),
        ("--users", bool(users)), ("--similar", similar is not None),
    ) if on]
    if len(modes) > 1:
        raise DataError(f"give only one of {', '.join(modes)} per request")
    if not modes:
        raise DataError("nothing to recommend for: give --like/--rate (a made-up user), --user ID, --users ID,ID or --similar TITLE")
    from mfrec.inference.recommend import check_lower_bound

    bound = {"lower_bound": check_lower_bound(rec, lower_bound)} if lower_bound else {}
    if similar is not None:
        result = rec.similar(similar, n=top, filters=filters)
        result.notes[:0] = match_notes(rec, [similar])
        return result
    if users:
        return rec.recommend_group(list(users), n=top, filters=filters, exclude=exclude)
    if user is not None:
        return rec.recommend_user(user, n=top, filters=filters, explain=explain, exclude=exclude, **bound)
    result = rec.recommend(profile(rec, rate, like), n=top, filters=filters, explain=explain, dislikes=dislikes,
                           **bound)
    result.notes[:0] = match_notes(rec, _title_queries(rate, like))
    return result


def _title_queries(rate: Any, like: Iterable[Any]) -> list[Any]:
    """The movie titles or ids a made-up user's ``like`` and ``rate`` name, in order."""
    out = [str(x) for x in like]
    if rate is None:
        return out
    for item in ([rate] if isinstance(rate, str) else rate.items() if isinstance(rate, Mapping) else rate):
        if isinstance(item, str):
            out.append(item.rpartition("=")[0])
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            out.append(item[0])
    return out


def match_notes(rec, queries: Iterable[Any]) -> list[str]:
    """"title: 'monty python' -> Monty Python and the Holy Grail (1974) [id 168] (partial title; also close:
    ...)": one line per queried title, so a person sees which film each query became."""
    notes = []
    for q in dict.fromkeys(str(q).strip() for q in queries):
        notes.append("title: " + rec.titles.match_note(q, rec.titles.match(q)))
    return notes


class LoadedExperiment(Experiment):
    """A run folder with the inference methods; its ``Recommender`` is built on first use."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._recommender = None
        self.last_notes: list[str] = []
        """The notes Inference.py prints above a list, for the last ``recommend``/``similar`` call: which run
        and rule, the filters, and what each title matched (a partial match also warns, naming the others)."""

    def _noted(self, result):
        import warnings

        self.last_notes = list(result.notes)
        for note in result.notes:
            if note.startswith("title: ") and ("partial title" in note or "listed twice" in note):
                warnings.warn(note, UserWarning, stacklevel=3)
        return result.table

    @property
    def recommender(self):
        """The run's ``Recommender`` (loaded once): see ``mfrec.inference.recommender_for``."""
        if self._recommender is None:
            from mfrec.inference import recommender_for

            self._recommender = recommender_for(self)
        return self._recommender

    @renamed_keywords(ratings="rate", n="top")
    def recommend(self, rate: Any = None, *, like: Iterable[Any] = (), user: Any = None,
                  users: Sequence[Any] | str | None = None, top: int = DEFAULTS.top, genre=None, years=None,
                  explain: bool = False, exclude: str = DEFAULTS.exclude, min_ratings: int = DEFAULTS.min_ratings,
                  dislikes: str = DEFAULTS.dislikes):
        """The ``top`` movies (polars DataFrame: rank, movieId, title, year, genres, predicted_rating, score, why)
        for a made-up user (``rate`` / ``like``), an existing user (``user``, original id) or a
        group (``users``, ranked by the least-satisfied member); the keywords and defaults of Inference.py."""
        return self._noted(run_request(self.recommender, rate=rate, like=like, user=user, users=users, top=top,
                                       genre=genre, years=years, explain=explain, exclude=exclude,
                                       min_ratings=min_ratings, dislikes=dislikes))

    @renamed_keywords(n="top")
    def similar(self, title: Any, top: int = DEFAULTS.top, genre=None, years=None,
                min_ratings: int = DEFAULTS.min_ratings):
        """Nearest movies by cosine of the movie factors (genre part included for mf-genre)."""
        return self._noted(run_request(self.recommender, similar=title, top=top, genre=genre, years=years,
                                       min_ratings=min_ratings))

    @renamed_keywords(ratings="rate")
    def fold_in(self, rate: Any = None, *, like: Iterable[Any] = ()):
        """A made-up user's ``UserVector(bias, vector)`` from the model's own ALS user step."""
        rec = self.recommender
        return rec.fold_in(profile(rec, rate, like))

    @renamed_keywords(ratings="rate", n="top")
    def explain(self, rate: Any = None, *, like: Iterable[Any] = (), user: Any = None, movies: Iterable[Any] | None = None,
                top: int = DEFAULTS.top, genre=None, years=None, min_ratings: int = DEFAULTS.min_ratings):
        """Each rated movie's exact contribution to the scores of ``movies`` (default: the list
        ``recommend`` gives for the same arguments) as a long polars DataFrame (movieId, title,
        rated_movieId, rated_title, rating, contribution, share, baseline, score)."""
        rec = self.recommender
        if user is not None:
            pairs = rec._train_row(rec.user(user))
        else:
            pairs = profile(rec, rate, like)
        if not pairs:
            raise DataError("explain needs ratings: give rate/like or user")
        if movies is None:
            filters = _filters(genre, years, min_ratings)
            if user is not None:
                req = rec.recommend_user(user, n=top, filters=filters)
            else:
                req = rec.recommend(pairs, n=top, filters=filters)
            targets = [rec.movie(int(m)) for m in req.table["movieId"]]
        else:
            targets = [rec.movie(m) for m in movies]
        return rec.explanation(pairs, targets)


@renamed_keywords(root="runs_root")
def load_experiment(path_or_run_name: str | os.PathLike, runs_root: str | os.PathLike = DEFAULT_ROOT) -> LoadedExperiment:
    """Load a run folder: a path, a folder name under ``runs_root`` (default ``Experiments_/``;
    ``--runs-root`` on the command line), or a run's ``--name`` (latest)."""
    return LoadedExperiment(find_run(path_or_run_name, runs_root))
