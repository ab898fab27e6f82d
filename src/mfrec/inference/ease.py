"""Recommendations from an EASE run (``ease.npz``, ``mfrec.models.ease``): the ``Recommender``
interface (titles, filters, exclusions, ``Result`` tables) over the item-item weights B.

- A made-up user (``--like``/``--rate``): x · B, with x the given movies (1 each for a binary model,
  the ratings for a rating-weighted one). Nothing is fitted, so this is exact, not an approximation.
- An existing user (``--user``): x · B over their training + validation ratings in time order (what
  the ranking protocol gives the model; recent movies weighted up, ``mfrec.models.ease``), with every
  movie they rated excluded as usual.
- Similar movies (``--similar M``): B[M, i], the score a user who watched only M would give movie i
  (the made-up-user list of that one movie). Not a cosine: B is the model's own answer.
- "why": score_i = Σ_j x_j B[j, i] is a sum of one term per watched movie, so each movie's share is
  exact. A negative term is named as pulling the movie down ("despite X").
- EASE scores are not ratings: the tables have no ``predicted_rating`` column, and the ranked
  column is ``ease_score``.
- Groups (``--users``) are not answered: EASE scores of different users are on no common scale.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mfrec.errors import DataError, ModelError
from mfrec.inference.defaults import DEFAULTS
from mfrec.inference.recommend import EXPLAIN_TOP, WHY_TOP, Filters, Recommender, Result, _check_n


class EaseRecommender(Recommender):
    """Lists from an ``EaseModel`` and the dataset it was trained on."""

    supports = frozenset({"like", "user", "similar", "all-users", "explain", "interactive"})
    supported_text = ("a made-up user (--like/--rate), an existing user (--user), similar movies (--similar), every "
                      "user's list (--all-users), explanations and the interactive loop (no groups)")

    def __init__(self, model, dataset, run_name: str = "run"):
        self.model = model
        self.dataset = dataset
        self.run_name = run_name
        self.kind = "ease"
        self.exported_from = None
        if model.n_movies != dataset.n_movies or model.n_users != dataset.n_users:
            raise ModelError(f"run {run_name} has {model.n_users} users x {model.n_movies} movies but dataset "
                             f"{dataset.name} has {dataset.n_users} x {dataset.n_movies}: was the data prepared again since?")
        if not (np.array_equal(model.movie_ids, dataset.movie_ids.ids) and np.array_equal(model.user_ids, dataset.user_ids.ids)):
            raise ModelError(f"run {run_name}'s user or movie ids differ from dataset {dataset.name}'s: prepare and train again")
        self._init_tables(dataset)

    def fold_in_note(self) -> str:
        return "x · B over the given movies, exact: EASE needs no fitting for a new user"

    def fold_in(self, ratings):
        raise ModelError(f"run {self.run_name} is an EASE model: a user is their movies (x), there are no user "
                         f"factors to fold in; recommend() scores x · B directly")

    def _history(self, u: int) -> list[tuple[int, float]]:
        """User u's training + validation ratings, oldest first (what the ranking protocol scores them from)."""
        out = []
        for name in ("train", "val"):
            split = self.dataset.split(name)
            if split is None:
                continue
            users = np.asarray(split.user)
            lo, hi = np.searchsorted(users, [u, u + 1])  # each split is sorted by user
            out += list(zip(np.asarray(split.timestamp[lo:hi]).tolist(), range(len(out), len(out) + hi - lo),
                            np.asarray(split.movie[lo:hi]).tolist(), np.asarray(split.rating[lo:hi], np.float64).tolist()))
        return [(m, r) for _, _, m, r in sorted(out)]

    def _explained(self, ratings: Sequence[tuple[int, float]], recs: np.ndarray, explain: bool,
                   in_time_order: bool = False):
        notes: list[str] = []
        if not ratings or len(recs) == 0:
            return [""] * len(recs), {}, notes
        rated = np.array([m for m, _ in ratings], np.int64)
        values = np.array([r for _, r in ratings], np.float32)
        contrib = self.model.contributions(rated, values, recs, in_time_order)
        why, details = [], {}
        for row in range(len(recs)):
            c = contrib[row]
            total_abs = float(np.abs(c).sum())
            order = np.argsort(-np.abs(c), kind="stable")
            shares = c / total_abs if total_abs > 0 else np.zeros_like(c)
            named = [j for j in order if c[j] > 0][:WHY_TOP]
            parts = [f"{self._short(rated[j])} {100 * shares[j]:.0f}%" for j in named]
            against = [j for j in order if c[j] < 0][:1]
            if against and abs(shares[against[0]]) >= 0.2:
                parts.append(f"despite {self._short(rated[against[0]])} {100 * shares[against[0]]:.0f}%")
            why.append(("watched " + ", ".join(parts)) if parts else "")
            if explain:
                lines = [f"EASE score {float(c.sum()):+.3f} = sum of B[j, i] x_j over your {len(rated)} movies"]
                for j in order[:EXPLAIN_TOP]:
                    lines.append(f"{100 * shares[j]:+5.0f}%  {c[j]:+.3f}  {self.titles_list[rated[j]]}")
                if len(order) > EXPLAIN_TOP:
                    rest = c[order[EXPLAIN_TOP:]]
                    lines.append(f"{100 * rest.sum() / total_abs if total_abs else 0:+5.0f}%  {rest.sum():+.3f}  "
                                 f"{len(rest)} other movie{'s' if len(rest) != 1 else ''}")
                details[row + 1] = lines
        if explain:
            notes.append("explanation: an EASE score is x · B, so each of your movies j adds x_j B[j, i] to movie i's "
                         "score exactly; shares are of the sum of |contributions|")
        return why, details, notes

    def explanation(self, ratings: Sequence[tuple[int, float]], targets: Sequence[int]):
        """Long table of every given movie's exact term x_j B[j, i] in each target's score (columns as
        ``Recommender.explanation``; baseline is 0: an EASE score has no intercept)."""
        import polars as pl

        targets = np.asarray(list(targets), np.int64)
        rated = np.array([m for m, _ in ratings], np.int64)
        values = np.array([r for _, r in ratings], np.float32)
        contrib = self.model.contributions(rated, values, targets)
        rows = []
        for t, m in enumerate(targets):
            c = contrib[t]
            total = float(np.abs(c).sum()) or 1.0
            for j in np.argsort(-np.abs(c), kind="stable"):
                rows.append((int(self.movie_id_array[m]), self.titles_list[m], int(self.movie_id_array[rated[j]]),
                             self.titles_list[rated[j]], float(values[j]), float(c[j]), float(c[j]) / total,
                             0.0, float(c.sum())))
        names = ["movieId", "title", "rated_movieId", "rated_title", "rating", "contribution", "share", "baseline", "score"]
        return pl.DataFrame(rows, schema=names, orient="row")

    def _list(self, ratings, n, exclude, filters, explain, in_time_order: bool = False):
        rated = np.array([m for m, _ in ratings], np.int64)
        values = np.array([r for _, r in ratings], np.float32)
        scores = self.model.score_history(rated, values, in_time_order)
        recs, sc = self._top(scores, n, exclude, self.filter_mask(filters))
        why, details, notes = self._explained(ratings, recs, explain, in_time_order)
        return self._table(recs, None, sc, why, ranked_by="ease_score"), details, notes

    # -- the ranker protocol (--rank-by, mfrec.inference.rankers): EASE ranks, another run predicts --
    def score_made_up(self, ratings) -> np.ndarray:
        """x · B for a made-up user's (movie index, rating) pairs."""
        return self.model.score_history([m for m, _ in ratings], [r for _, r in ratings])

    def score_user(self, u: int) -> np.ndarray:
        """x · B over user u's training + validation movies, recent ones weighted up."""
        history = self._history(u)
        return self.model.score_history([m for m, _ in history], [r for _, r in history], in_time_order=True)

    def describe_ranker(self) -> str:
        return f"run {self.run_name} (ease: x · B, what the user is likely to watch; not a rating)"

    def recommend_ranked_by(self, ranker, ratings=None, user_id=None, n=DEFAULTS.top, filters=None,
                            exclude=DEFAULTS.exclude) -> Result:
        raise ModelError(f"run {self.run_name} is an EASE model, which predicts no ratings: give it to --rank-by of a "
                         f"rating model's run instead (e.g. --experiment <an mf run> --rank-by {self.run_name})")

    def recommend(self, ratings, n: int = DEFAULTS.top, filters: Filters | None = None, explain: bool = False,
                  dislikes: str = DEFAULTS.dislikes) -> Result:
        """Top-n for a made-up user: x · B over the given movies; they never come back. ``dislikes`` is
        accepted for the common interface: EASE counts every given movie as watched (binary X), so a
        low rating neither lifts nor lowers differently."""
        n = _check_n(n)
        if not ratings:
            raise DataError("an EASE model recommends from the movies a user watched: give at least one (--like or --rate)")
        table, details, notes = self._list(ratings, n, np.array([m for m, _ in ratings], np.int32), filters, explain)
        how = ("each given movie counts 1 whatever its rating" if self.model.weighting == "binary"
               else "each given movie weighted by its rating")
        head = [f"made-up user with {len(ratings)} movie{'s' if len(ratings) != 1 else ''} scored by EASE run "
                f"{self.run_name} (x · B, {how}); the given movies are excluded",
                "ease_score ranks by what this user is likely to watch; it is not a predicted rating"]
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        return Result(table, head + notes, details, label="made-up-user")

    def recommend_user(self, user_id, n: int = DEFAULTS.top, filters: Filters | None = None, explain: bool = False,
                       exclude: str = DEFAULTS.exclude) -> Result:
        """Top-n for an existing user from their training + validation movies."""
        n = _check_n(n)
        u = self.user(user_id)
        history = self._history(u)
        seen, counts = self._seen(u, exclude)
        table, details, notes = self._list(history, n, seen, filters, explain, in_time_order=True)
        what = ", ".join(f"{c} {s}" for s, c in counts.items())
        boost = self.model.settings.recency_boost
        recent = (f", their latest movie weighted {1 + boost:g}x, decaying over ~{self.model.settings.recency_scale:g} "
                  f"movies" if boost else "")
        head = [f"user {user_id}: their {len(history)} training + validation movies scored by EASE run {self.run_name} "
                f"(x · B{recent}); excluded the {len(seen)} movies they rated ({what})",
                "ease_score ranks by what this user is likely to watch; it is not a predicted rating"]
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        return Result(table, head + notes, details, label=f"user-{user_id}")

    def recommend_group(self, user_ids, n=DEFAULTS.top, filters=None, exclude=DEFAULTS.exclude) -> Result:
        self.check_supported("users")
        raise AssertionError("unreachable")  # pragma: no cover

    def similar(self, query, n: int = DEFAULTS.top, filters: Filters | None = None) -> Result:
        """The movies with the largest weight B[m, i]: what EASE recommends to someone who watched only m."""
        n = _check_n(n)
        m = self.movie(query)
        row = np.array(self.model.B[m], np.float32)
        recs, scores = self._top(row, n, np.array([m], np.int32), self.filter_mask(filters))
        head = [f"movies EASE run {self.run_name} recommends to someone who watched only {self.title(m)} "
                f"(the item-item weights B[{self.title(m)}, i])"]
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        why = [f"weight {s:.3f} from {self._short(m)}" for s in scores]
        return Result(self._table(recs, None, scores, why, ranked_by="ease_score"), head, {},
                      label=f"similar-{self.movie_id_array[m]}", kind="similar")

    def popular(self, n: int = DEFAULTS.top, filters: Filters | None = None, exclude: Sequence[int] = ()) -> Result:
        """Most-rated movies in the training data (no predicted rating: EASE gives none)."""
        n = _check_n(n)
        recs, counts = self._top(self.popularity.astype(np.float32), n, np.asarray(exclude, np.int32), self.filter_mask(filters))
        why = [f"{int(c)} training ratings" for c in counts]
        return Result(self._table(recs, None, counts, why, ranked_by="training_ratings"),
                      [f"most-rated movies in {self.dataset.name}'s training split"], {}, label="popular", kind="popular")

    def recommend_all_users(self, n: int = DEFAULTS.top, filters: Filters | None = None, exclude: str = DEFAULTS.exclude,
                            block: int = 512):
        """Top-n for every user (x · B over their train + val movies, in blocks), long format:
        userId, rank, movieId, title, ease_score."""
        import polars as pl

        from mfrec.kernels.topk import topk_rows

        n = _check_n(n)
        indptr, indices = self._seen_csr(exclude)
        allowed = self.filter_mask(filters)
        parts = [self.dataset.train] + ([self.dataset.val] if self.dataset.val is not None else [])
        u = np.concatenate([np.asarray(p.user) for p in parts])
        order = np.lexsort((np.concatenate([np.asarray(p.timestamp) for p in parts]), u))  # oldest first per user
        movies = np.concatenate([np.asarray(p.movie) for p in parts])[order]
        values = np.concatenate([np.asarray(p.rating, np.float32) for p in parts])[order]
        hptr = np.zeros(self.model.n_users + 1, np.int64)
        np.cumsum(np.bincount(u, minlength=self.model.n_users), out=hptr[1:])
        idx = np.full((self.model.n_users, n), -1, np.int32)
        sc = np.zeros((self.model.n_users, n), np.float32)
        for a in range(0, self.model.n_users, block):
            b = np.arange(a, min(a + block, self.model.n_users))
            scores = self.model.score_rows(hptr, movies, values, b)
            sub_ptr = indptr[a:b[-1] + 2] - indptr[a]
            i, s = topk_rows(scores, n, allowed=allowed, exclude_indptr=np.ascontiguousarray(sub_ptr),
                             exclude_indices=np.ascontiguousarray(indices[indptr[a]:indptr[b[-1] + 1]]))
            idx[a:a + len(b)], sc[a:a + len(b)] = i, s
        users = np.repeat(np.asarray(self.dataset.user_ids.ids, np.int64), n)
        ranks = np.tile(np.arange(1, n + 1, dtype=np.int32), self.model.n_users)
        flat_i, flat_s = idx.ravel(), sc.ravel()
        keep = flat_i >= 0
        chosen = flat_i[keep].astype(np.int64)
        return pl.DataFrame({
            "userId": users[keep], "rank": ranks[keep], "movieId": self.movie_id_array[chosen],
            "title": pl.Series(self.titles_list, dtype=pl.Utf8).gather(chosen),
            "ease_score": flat_s[keep].astype(np.float64),
        })
