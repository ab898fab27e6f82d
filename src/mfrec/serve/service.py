"""The run behind the server: loaded once, answering every request through the inference code.

Nothing here knows about HTTP. Each method takes plain values, checks them against the ``Caps``,
calls what Inference.py calls (``run_request``, the ``Recommender``'s ``TitleIndex``, ``popular``)
and returns plain dicts shaped like the API's pydantic models; input errors are mfrec's own
one-sentence errors, which the app turns into 4xx JSON. No method reads a path from a request or
writes a file: the run is chosen when the server starts.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from mfrec.errors import DataError, MfrecError, ModelError, UnknownIdError
from mfrec.inference.defaults import DEFAULTS


@dataclass(frozen=True)
class Caps:
    """What one request may ask for; beyond these the server answers 413 or 422 with one sentence."""

    max_ratings: int = 500
    """Ratings in one made-up user's request (every one is decomposed in the "why" line)."""
    max_top: int = 100
    """Movies in one list (``top``)."""
    max_group: int = 10
    """Users in one group request."""
    max_search: int = 50
    """Results of one title search."""
    max_body_bytes: int = 64 * 1024
    """Bytes in one request body (500 ratings with long titles fit in about 40 KiB)."""
    workers: int = min(4, os.cpu_count() or 1)
    """Requests scored at once, each on its own worker thread; the others wait their turn."""

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise DataError(f"server setting {name} must be a whole number >= 1, got {value!r}")


class RequestError(MfrecError):
    """A request the server refuses, with its HTTP status and, for a title, suggested movies."""

    def __init__(self, message: str, status: int = 422, suggestions: Sequence[dict] = ()):
        super().__init__(message)
        self.status = status
        self.suggestions = list(suggestions)


def load_ranker(experiment, rank_by: str = "auto", runs_root: str | os.PathLike = "Experiments_"
                ) -> tuple[Any, str, str]:
    """``(ranker or None, what it is, its run folder or "none")``: the run the server ranks lists with
    (``mfrec serve --rank-by``), chosen and loaded once, at start, as Inference.py chooses it
    (``mfrec.inference.rankers``): ``auto``, the newest finished ials, else ease, run on a rating run's
    dataset; ``none``; or a run or model kind. Other server processes load the returned folder."""
    from mfrec.inference.rankers import auto_ranker_run, open_ranker, ranker_path

    if rank_by == "none":
        return None, "this server was started with --rank-by none", "none"
    if rank_by == "auto":
        path = auto_ranker_run(experiment, runs_root)
        if path is None:
            return None, (f"no ranking run found: no finished ials or ease run on the dataset of run "
                          f"{experiment.name} was under {runs_root}/ when the server started"), "none"
    else:
        path = ranker_path(rank_by, experiment, runs_root)[0]
    ranker, how = open_ranker(str(path), experiment, runs_root)
    return ranker, how, str(Path(path).resolve())


class Service:
    """One loaded run (``LoadedExperiment``) and the answers the API gives from it; ``ranker`` (see
    ``load_ranker``) ranks made-up and existing users' lists when a request's ``rank_by`` lets it."""

    def __init__(self, experiment, caps: Caps | None = None, ranker=None, ranker_note: str = ""):
        self.exp = experiment
        self.caps = caps or Caps()
        self.rec = experiment.recommender
        self.kind = str(self.rec.kind)
        self.ranker = ranker
        self.ranker_note = ranker_note or ("lists are ranked by the run itself" if ranker is None else "")
        _ = self.rec.titles  # built now, once, not by the first request's thread
        self._info: dict[str, Any] | None = None

    # -- facts ------------------------------------------------------------------------------------
    def supports(self) -> list[str]:
        """The request modes this run answers (``mfrec.inference.supported_modes``)."""
        from mfrec.inference import supported_modes

        return sorted(set(supported_modes(self.kind)) & set(self.rec.supports))

    def info(self) -> dict[str, Any]:
        """Run, model, dataset, metrics, genres, years, what it supports, the caps (built once)."""
        if self._info is None:
            self._info = self._build_info()
        return self._info

    def _build_info(self) -> dict[str, Any]:
        ds, s = self.rec.dataset, self.exp.summary
        years = [y for y in self.rec.years if y is not None]
        metrics = {k: float(v) for k, v in s.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and any(k.startswith(p) for p in ("train_", "val_", "test_", "best_", "epochs"))}
        step = getattr(ds.manifest, "rating_step", None)
        return {
            "run": self.exp.name, "model": self.kind, "status": str(s.get("status", "")),
            "finished": str(s.get("finished", "")) or None,
            "dataset": ds.name, "users": int(ds.n_users), "movies": int(ds.n_movies),
            "factors": int(self.rec.model.k) if hasattr(self.rec.model, "k") else None,
            "rating_scale": list(self.rec.scale), "rating_step": float(step) if step else None,
            "genres": list(ds.genres), "years": [min(years), max(years)] if years else None,
            "metrics": metrics, "supports": self.supports(),
            "ranker": self._ranker_info(),
            "posterior_sd": getattr(self.rec, "samples", None) is not None,
            "defaults": {"top": DEFAULTS.top, "min_ratings": DEFAULTS.min_ratings, "exclude": DEFAULTS.exclude},
            "caps": asdict(self.caps),
        }

    # -- movies -----------------------------------------------------------------------------------
    def movie_card(self, m: int) -> dict[str, Any]:
        rec = self.rec
        return {"movieId": int(rec.movie_id_array[m]), "title": rec.titles_list[m], "year": rec.years[m],
                "genres": list(rec.genre_lists[m]), "training_ratings": int(rec.popularity[m])}

    def search(self, query: str, limit: int = 10) -> dict[str, Any]:
        """Titles matching ``query`` the way the CLI matches them: the exact or unambiguous match first,
        then the title index's search (the query's words, most rated first; close titles for a typo)."""
        self._cap("limit", limit, self.caps.max_search)
        text = (query or "").strip()
        if not text:
            raise RequestError("give a title to search for (q=...)")
        if len(text) > 200:
            raise RequestError(f"a title search is at most 200 characters, got {len(text)}")
        found = []
        try:
            found.append(self.rec.titles.resolve(text))
        except MfrecError:  # ambiguous or unknown: the search below lists the candidates
            pass
        found += self.rec.titles.search(text, limit=limit)
        hits = list(dict.fromkeys(found))[:limit]
        return {"query": text, "movies": [self.movie_card(m) for m in hits]}

    def resolve(self, query: str | int) -> int:
        """Movie index of a title or movieId, or a ``RequestError`` (404 unknown, 409 ambiguous) with suggestions."""
        from mfrec.inference.titles import AmbiguousTitleError

        try:
            return self.rec.movie(query)
        except AmbiguousTitleError as e:
            raise RequestError(str(e), 409, self._suggest(query)) from None
        except UnknownIdError as e:
            raise RequestError(str(e), 404, self._suggest(query)) from None

    def _suggest(self, query) -> list[dict]:
        try:
            return [self.movie_card(m) for m in self.rec.titles.search(str(query), limit=5)]
        except MfrecError:
            return []

    def popular(self, top: int = DEFAULTS.top, genres: Sequence[str] = (), years: str | None = None,
                min_ratings: int = 0, exclude: Sequence[Any] = ()) -> dict[str, Any]:
        """The most-rated movies (movies to rate first), filtered."""
        from mfrec.inference.api import _filters

        self._cap("top", top, self.caps.max_top)
        self._cap("exclude", len(exclude), self.caps.max_ratings, low=0)
        skip = [self.resolve(q) for q in exclude]
        return self._result(self.rec.popular(top, _filters(list(genres), years, min_ratings), exclude=skip))

    # -- lists ------------------------------------------------------------------------------------
    def recommend(self, ratings: Sequence[tuple[Any, float]], top: int = DEFAULTS.top, genres: Sequence[str] = (),
                  years: str | None = None, min_ratings: int = DEFAULTS.min_ratings, explain: bool = False,
                  dislikes: str = DEFAULTS.dislikes, rank_by: str = "auto", lower_bound: float = 0.0) -> dict[str, Any]:
        """A made-up user's list from (title or movieId, rating) pairs; ``rank_by``: see ``_ranker``,
        ``lower_bound``: rank a bayes run's list by predicted rating - z x sd."""
        from mfrec.inference.api import run_request
        from mfrec.inference.rankers import ranked_request

        self._check("like", explain)
        self._check_lower_bound(lower_bound)
        ranker = self._ranker("like", rank_by, explain, dislikes, lower_bound)
        if not ratings:
            raise RequestError("give at least one rating: [{\"movie\": \"Star Wars\", \"rating\": 5}]")
        if len(ratings) > self.caps.max_ratings:
            raise RequestError(f"{len(ratings)} ratings is more than this server's cap of {self.caps.max_ratings} per request", 413)
        self._cap("top", top, self.caps.max_top)
        resolved = []
        for query, rating in ratings:
            m = self.resolve(query)
            resolved.append((m, self.rec.check_rating(float(rating), repr(str(query)))))
        # the queries as given: run_request resolves them again (the same match) and notes what each became
        pairs = [(str(q), r) for (q, _), (_, r) in zip(ratings, resolved)]
        if ranker is not None:
            result = ranked_request(self.rec, ranker, rate=pairs, top=top, genre=list(genres), years=years,
                                    min_ratings=min_ratings)
        else:
            result = run_request(self.rec, rate=pairs, top=top, genre=list(genres), years=years, explain=explain,
                                 min_ratings=min_ratings, dislikes=dislikes, lower_bound=lower_bound)
        out = self._result(result, ranker)
        last: dict[int, tuple[Any, float]] = {}  # a movie rated twice keeps its last rating, as on the command line
        for (q, _), (m, r) in zip(ratings, resolved):
            last.pop(m, None)
            last[m] = (q, r)
        out["rated"] = [{**self.movie_card(m), "rating": r, "query": str(q)} for m, (q, r) in last.items()]
        return out

    def recommend_user(self, user: str, top: int = DEFAULTS.top, genres: Sequence[str] = (), years: str | None = None,
                       min_ratings: int = DEFAULTS.min_ratings, explain: bool = False,
                       exclude: str = DEFAULTS.exclude, rank_by: str = "auto", lower_bound: float = 0.0
                       ) -> dict[str, Any]:
        """An existing user's list (original userId); ``rank_by`` and ``lower_bound`` as for ``recommend``."""
        from mfrec.inference.api import run_request
        from mfrec.inference.rankers import ranked_request

        self._check("user", explain)
        self._check_lower_bound(lower_bound)
        ranker = self._ranker("user", rank_by, explain, DEFAULTS.dislikes, lower_bound)
        self._cap("top", top, self.caps.max_top)
        uid = self._user(user)
        if ranker is not None:
            return self._result(ranked_request(self.rec, ranker, user=uid, top=top, genre=list(genres), years=years,
                                               min_ratings=min_ratings, exclude=exclude), ranker)
        return self._result(run_request(self.rec, user=uid, top=top, genre=list(genres), years=years,
                                        explain=explain, exclude=exclude, min_ratings=min_ratings,
                                        lower_bound=lower_bound))

    def recommend_group(self, users: Sequence[str], top: int = DEFAULTS.top, genres: Sequence[str] = (),
                        years: str | None = None, min_ratings: int = DEFAULTS.min_ratings,
                        exclude: str = DEFAULTS.exclude) -> dict[str, Any]:
        """One list for a pair or group of existing users (least misery)."""
        from mfrec.inference.api import run_request

        self._check("users", False)
        ids = [u.strip() for u in users if str(u).strip()]
        if len(ids) < 2:
            raise RequestError("a group needs at least two user ids, e.g. users=12,345")
        if len(ids) > self.caps.max_group:
            raise RequestError(f"{len(ids)} users is more than this server's cap of {self.caps.max_group} per group", 413)
        self._cap("top", top, self.caps.max_top)
        for u in ids:
            self._user(u)
        return self._result(run_request(self.rec, users=ids, top=top, genre=list(genres), years=years,
                                        exclude=exclude, min_ratings=min_ratings))

    def similar(self, movie: str, top: int = DEFAULTS.top, genres: Sequence[str] = (), years: str | None = None,
                min_ratings: int = DEFAULTS.min_ratings) -> dict[str, Any]:
        """Movies nearest to one movie (title or movieId)."""
        from mfrec.inference.api import run_request

        self._check("similar", False)
        self._cap("top", top, self.caps.max_top)
        m = self.resolve(movie)
        out = self._result(run_request(self.rec, similar=str(movie), top=top, genre=list(genres), years=years,
                                       min_ratings=min_ratings))
        out["movie"] = self.movie_card(m)
        return out

    # -- helpers ----------------------------------------------------------------------------------
    def _ranker_info(self) -> dict[str, str] | None:
        r = self.ranker
        if r is None:
            return None
        return {"run": str(r.run_name), "kind": str(r.kind), "describe": r.describe_ranker()}

    def _ranker(self, mode: str, rank_by: str, explain: bool, dislikes: str, lower_bound: float):
        """The run that ranks this request's list, or None (the served run ranks its own). ``auto``: the
        server's ranking run when the request lets another run rank (a made-up or existing user, without
        explain, dislikes other than "score" or a lower bound); ``none``: never; the ranking run's model
        kind or run name: that run, or a 4xx saying why not. A request never names a run to load."""
        from mfrec.inference.rankers import check_rankable, rankable

        if rank_by == "none":
            return None
        if rank_by == "auto":
            return self.ranker if self.ranker is not None and rankable(mode, explain, dislikes, lower_bound) else None
        if not isinstance(rank_by, str) or len(rank_by) > 200:
            raise RequestError("rank_by must be auto, none, or the kind or name of the server's ranking run")
        if self.ranker is None:
            raise RequestError(f"rank_by {rank_by!r}: {self.ranker_note}; ask with rank_by auto or none, or start "
                               f"mfrec serve with --rank-by RUN_OR_KIND", 404)
        info = self._ranker_info()
        if rank_by not in (info["kind"], info["run"]):
            raise RequestError(f"rank_by {rank_by!r}: this server ranks with {info['kind']} run {info['run']} only "
                               f"(rank_by {info['kind']}, auto or none)", 404)
        try:
            check_rankable(mode, explain, dislikes, lower_bound)
        except DataError as e:
            raise RequestError(str(e), 400) from None
        return self.ranker

    def _check_lower_bound(self, z: float) -> None:
        """A lower bound asked of a run without posterior samples is 400; a negative or infinite one 422."""
        if z and getattr(self.rec, "samples", None) is None:
            raise RequestError(f"lower_bound ranks by predicted rating - z x its posterior sd, which only a bayes "
                               f"run with kept samples has; run {self.exp.name} ({self.kind}) has none", 400)
        if z and (not (z > 0) or z == float("inf")):
            raise RequestError(f"lower_bound {z:g} must be a positive number of standard deviations")

    def _check(self, mode: str, explain: bool) -> None:
        try:
            self.rec.check_supported(mode)
            if explain:
                self.rec.check_supported("explain")
        except ModelError as e:
            raise RequestError(str(e), 400) from None

    def _user(self, user: str) -> str:
        try:
            self.rec.user(user)
        except UnknownIdError as e:
            raise RequestError(str(e), 404) from None
        return str(user).strip()

    @staticmethod
    def _cap(name: str, value: int, most: int, low: int = 1) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low or value > most:
            raise RequestError(f"{name} must be a whole number from {low} to {most} (this server's cap), got {value!r}")

    def _result(self, result, ranker=None) -> dict[str, Any]:
        """A ``Result`` (polars table, notes, details) as the API's ``RecommendationList``; ``ranker``: the
        run that ranked it, when not the served one."""
        from mfrec.inference.recommend import RANKED_BY

        by = result.ranked_by
        items = []
        for row in result.table.to_dicts():
            pred, sd = row.get("predicted_rating"), row.get("uncertainty")
            items.append({
                "rank": int(row["rank"]), "movieId": int(row["movieId"]), "title": row["title"], "year": row.get("year"),
                "genres": [g for g in (row.get("genres") or "").split("|") if g],
                "predicted_rating": None if pred is None else float(pred),
                "sd": None if sd is None else float(sd),
                "score": float(row[by]), "why": row.get("why") or "",
                "details": list(result.details.get(int(row["rank"]), [])),
            })
        return {"run": self.exp.name, "model": self.kind, "kind": result.kind, "ranked_by": by,
                "ranked_by_means": RANKED_BY.get(by, by), "notes": list(result.notes), "items": items,
                "ranker": None if ranker is None else self._ranker_info()}
