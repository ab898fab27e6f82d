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


class Service:
    """One loaded run (``LoadedExperiment``) and the answers the API gives from it."""

    def __init__(self, experiment, caps: Caps | None = None):
        self.exp = experiment
        self.caps = caps or Caps()
        self.rec = experiment.recommender
        self.kind = str(self.rec.kind)
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
                  dislikes: str = DEFAULTS.dislikes) -> dict[str, Any]:
        """A made-up user's list from (title or movieId, rating) pairs."""
        from mfrec.inference.api import run_request

        self._check("like", explain)
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
        out = self._result(run_request(self.rec, rate=pairs, top=top, genre=list(genres), years=years,
                                       explain=explain, min_ratings=min_ratings, dislikes=dislikes))
        last: dict[int, tuple[Any, float]] = {}  # a movie rated twice keeps its last rating, as on the command line
        for (q, _), (m, r) in zip(ratings, resolved):
            last.pop(m, None)
            last[m] = (q, r)
        out["rated"] = [{**self.movie_card(m), "rating": r, "query": str(q)} for m, (q, r) in last.items()]
        return out

    def recommend_user(self, user: str, top: int = DEFAULTS.top, genres: Sequence[str] = (), years: str | None = None,
                       min_ratings: int = DEFAULTS.min_ratings, explain: bool = False,
                       exclude: str = DEFAULTS.exclude) -> dict[str, Any]:
        """An existing user's list (original userId)."""
        from mfrec.inference.api import run_request

        self._check("user", explain)
        self._cap("top", top, self.caps.max_top)
        return self._result(run_request(self.rec, user=self._user(user), top=top, genre=list(genres), years=years,
                                        explain=explain, exclude=exclude, min_ratings=min_ratings))

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

    def _result(self, result) -> dict[str, Any]:
        """A ``Result`` (polars table, notes, details) as the API's ``RecommendationList``."""
        from mfrec.inference.recommend import RANKED_BY

        by = result.ranked_by
        items = []
        for row in result.table.to_dicts():
            pred = row.get("predicted_rating")
            items.append({
                "rank": int(row["rank"]), "movieId": int(row["movieId"]), "title": row["title"], "year": row.get("year"),
                "genres": [g for g in (row.get("genres") or "").split("|") if g],
                "predicted_rating": None if pred is None else float(pred),
                "score": float(row[by]), "why": row.get("why") or "",
                "details": list(result.details.get(int(row["rank"]), [])),
            })
        return {"run": self.exp.name, "model": self.kind, "kind": result.kind, "ranked_by": by,
                "ranked_by_means": RANKED_BY.get(by, by), "notes": list(result.notes), "items": items}
