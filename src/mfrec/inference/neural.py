"""Recommenders for the neural runs that have no factor arrays: ``sequential`` and ``attention``.

Both load the run's model with ``mfrec.neural.load_model`` (the torch extra) and keep the
``Recommender`` interface (titles, filters, exclusions, ``Result`` tables), answering only what
their kind allows; anything else is one ``ModelError`` sentence naming what is supported.

- ``SequenceRecommender`` (sequential, next-movie prediction): a made-up user's movies
  (``--like``/``--rate``) are a watch history scored by ``score_histories``; an existing user's
  history is their training + validation movies in time order (what the model was evaluated on).
  The model sees which movies were watched, not the ratings, and the mean of embeddings ignores order.
- ``PairRecommender`` (attention, pair rating model): ``--users A,B`` ranks with
  ``recommend_pair(a, b)``; ``--user U`` with the single-user pair (u, u), as the model predicts
  one user's ratings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mfrec.errors import DataError, ModelError
from mfrec.inference.recommend import Filters, Recommender, Result, _a, _check_n


class _NeuralRecommender(Recommender):
    """Shared set-up: the dataset tables, and every request refused unless a subclass answers it."""

    def __init__(self, model, dataset, run_name: str = "run"):
        self.model = model
        self.dataset = dataset
        self.run_name = run_name
        self.kind = getattr(model, "name", "neural")
        self.exported_from = None
        if int(model.n_movies) != dataset.n_movies:
            raise ModelError(f"run {run_name} scores {model.n_movies} movies but dataset {dataset.name} has "
                             f"{dataset.n_movies}: was the data prepared again since?")
        self._init_tables(dataset)

    # every request a factor model answers, refused here unless the subclass supports it
    def recommend(self, ratings, n=10, filters=None, explain=False, dislikes="score") -> Result:
        self.check_supported("like")
        raise NotImplementedError

    def recommend_user(self, user_id, n=10, filters=None, explain=False, exclude="all") -> Result:
        self.check_supported("user")
        raise NotImplementedError

    def recommend_group(self, user_ids, n=10, filters=None, exclude="all") -> Result:
        self.check_supported("users")
        raise NotImplementedError

    def similar(self, query, n=10, filters=None) -> Result:
        self.check_supported("similar")
        raise NotImplementedError

    def recommend_all_users(self, n=10, filters=None, exclude="all", block=512):
        self.check_supported("all-users")
        raise NotImplementedError

    def fold_in(self, ratings):
        raise ModelError(f"run {self.run_name} is {_a(self.kind)} model, which supports {self.supported_text}; "
                         f"it has no user factors to fold a new user into")

    def explanation(self, ratings, targets):
        self.check_supported("explain")
        raise NotImplementedError

    def popular(self, n: int = 10, filters: Filters | None = None, exclude: Sequence[int] = ()) -> Result:
        """Most-rated movies in the training data (no predicted rating: this model gives none)."""
        n = _check_n(n)
        recs, counts = self._top(self.popularity.astype(np.float32), n, np.asarray(exclude, np.int32), self.filter_mask(filters))
        why = [f"{int(c)} training ratings" for c in counts]
        return Result(self._table(recs, None, counts, why, ranked_by="training_ratings"),
                      [f"most-rated movies in {self.dataset.name}'s training split"], {}, label="popular", kind="popular")

    def _filter_note(self, filters: Filters | None) -> list[str]:
        return [f"filter: {filters.describe()}"] if filters and filters.describe() else []


class SequenceRecommender(_NeuralRecommender):
    """A sequential (next-movie) run: histories in, next-movie scores out."""

    supports = frozenset({"like", "user", "interactive"})
    supported_text = ("a made-up user's watched movies (--like/--rate; the ratings are not used), an existing user "
                      "(--user) and the interactive loop")

    def history_of(self, u: int) -> np.ndarray:
        """User u's training + validation movies in time order (the model's input for them)."""
        parts = [(self.dataset.train, 0)] + ([(self.dataset.val, 1)] if self.dataset.val is not None else [])
        movies, times, flags = [], [], []
        for split, flag in parts:
            users = np.asarray(split.user)
            lo, hi = np.searchsorted(users, [u, u + 1])  # each split is sorted by user
            movies.append(np.asarray(split.movie[lo:hi], np.int64))
            times.append(np.asarray(split.timestamp[lo:hi], np.int64))
            flags.append(np.full(hi - lo, flag))
        m, t, f = (np.concatenate(x) for x in (movies, times, flags))
        return m[np.lexsort((f, t))]

    def _ranked(self, history: np.ndarray, n: int, exclude: np.ndarray, filters: Filters | None):
        scores = self.model.score_histories([history])[0].astype(np.float64)
        p = np.exp(scores - scores.max())
        p /= p.sum()
        recs, sc = self._top(scores.astype(np.float32), n, exclude, self.filter_mask(filters))
        why = [f"next-movie probability {100 * p[m]:.1f}%" for m in recs]
        return self._table(recs, None, sc, why, ranked_by="logit")

    def recommend(self, ratings, n=10, filters=None, explain=False, dislikes="score") -> Result:
        n = _check_n(n)
        if explain:
            self.check_supported("explain")
        if dislikes != "score":
            raise DataError(f"--dislikes {dislikes} needs a factor model's exact contributions; run {self.run_name} "
                            f"is {self.kind}, which ranks by its own logits")
        movies = [int(m) for m, _ in ratings]
        if not movies:
            raise DataError("a sequential model recommends from a history: give at least one movie (--like or --rate)")
        history = np.array(movies, np.int64)
        table = self._ranked(history, n, history.astype(np.int32), filters)
        head = [
            f"made-up user with {len(movies)} watched movie{'s' if len(movies) != 1 else ''} as a history for sequential "
            f"run {self.run_name} (the mean of their movie embeddings scores every movie as the next one to watch; "
            f"ratings are not used and the order does not matter); the given movies are excluded",
            "logit = the model's next-movie score; it predicts no ratings",
        ]
        return Result(table, head + self._filter_note(filters), {}, label="made-up-user")

    def recommend_user(self, user_id, n=10, filters=None, explain=False, exclude="all") -> Result:
        n = _check_n(n)
        if explain:
            self.check_supported("explain")
        u = self.user(user_id)
        history = self.history_of(u)
        seen, counts = self._seen(u, exclude)
        table = self._ranked(history, n, seen, filters)
        what = ", ".join(f"{c} {s}" for s, c in counts.items())
        head = [
            f"user {user_id}: their {len(history)} training + validation movies in time order as the history for "
            f"sequential run {self.run_name}; excluded the {len(seen)} movies they rated ({what})",
            "logit = the model's next-movie score; it predicts no ratings",
        ]
        return Result(table, head + self._filter_note(filters), {}, label=f"user-{user_id}")


class PairRecommender(_NeuralRecommender):
    """An attention run: one list for a pair of users (or one user as the pair (u, u))."""

    supports = frozenset({"user", "users"})
    supported_text = "a pair of existing users (--users A,B) and one existing user (--user, scored as the pair (u, u))"

    def _pair_table(self, a: int, b: int, n: int, exclude: np.ndarray, filters: Filters | None):
        """The top n of ``recommend_pair(a, b)`` after the exclusions and filters, with each member alone."""
        full = self.model.recommend_pair(a, b, k=self.dataset.n_movies)  # every unseen movie, best first
        mask = self.filter_mask(filters)
        banned = set(np.asarray(exclude).tolist())
        picked = [(m, s) for m, s in full if m not in banned and (mask is None or mask[m])][:n]
        recs = np.array([m for m, _ in picked], np.int64)
        scores = np.array([s for _, s in picked], np.float64)
        return recs, scores

    def _alone(self, u: int, recs: np.ndarray) -> np.ndarray:
        if len(recs) == 0:
            return np.zeros(0)
        return self.model.predict_pairs(np.full(len(recs), u), np.full(len(recs), u), recs)

    def recommend_group(self, user_ids, n=10, filters=None, exclude="all") -> Result:
        n = _check_n(n)
        ids = [str(x).strip() for x in user_ids if str(x).strip()]
        if len(ids) != 2:
            raise DataError(f"the attention model of run {self.run_name} recommends for a pair: give exactly two user "
                            f"ids, e.g. --users 12,345 (got {len(ids)})")
        a, b = self.distinct_users(ids)
        seen = np.unique(np.concatenate([self._seen(a, exclude)[0], self._seen(b, exclude)[0]]))
        recs, scores = self._pair_table(a, b, n, seen, filters)
        alone_a, alone_b = self._alone(a, recs), self._alone(b, recs)
        why = [f"user {ids[0]} alone {x:.2f} · user {ids[1]} alone {y:.2f}" for x, y in zip(alone_a, alone_b)]
        head = [
            f"pair of users ({ids[0]}, {ids[1]}) from attention run {self.run_name}",
            "rule: the model's predicted mean rating of the pair (recommend_pair; each user's latest history window "
            "is the context); 'why' shows each member scored alone as the pair (u, u)",
            f"excluded the {len(seen)} movies either rated ({'any split' if exclude == 'all' else 'training ratings'})",
        ]
        return Result(self._table(recs, scores, scores, why), head + self._filter_note(filters), {},
                      label="users-" + "-".join(ids))

    def recommend_user(self, user_id, n=10, filters=None, explain=False, exclude="all") -> Result:
        n = _check_n(n)
        if explain:
            self.check_supported("explain")
        u = self.user(user_id)
        seen, counts = self._seen(u, exclude)
        recs, scores = self._pair_table(u, u, n, seen, filters)
        what = ", ".join(f"{c} {s}" for s, c in counts.items())
        head = [
            f"user {user_id} scored as the pair ({user_id}, {user_id}) by attention run {self.run_name} (their latest "
            f"history window is the context); excluded the {len(seen)} movies they rated ({what})",
        ]
        why = ["" for _ in recs]
        return Result(self._table(recs, scores, scores, why), head + self._filter_note(filters), {}, label=f"user-{user_id}")
