"""Recommendation lists: a made-up user, an existing user, a group, similar movies, popular movies.

Everything Inference.py, the interactive loop and the notebook API show comes from one
``Recommender`` built on a trained run. Each method returns a ``Result``: a polars table with the
columns ``rank, movieId, title, year, genres, predicted_rating, <ranked by>, why`` plus the notes
printed above it (what was excluded, which rule ranked the list) and, with ``explain``, per-row
detail lines. The column the list is ranked by is named for what it holds (``RANKED_BY``):
``score`` (rating units) for a user's or a group's list, ``cosine`` for similar movies (which have
no ``predicted_rating``), ``training_ratings`` for the most-rated movies. Numbers are kept at full
precision; the CSV files round them (``mfrec.inference.output``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from mfrec.errors import DataError, ModelError, UnknownIdError
from mfrec.inference.defaults import DEFAULTS
from mfrec.inference.foldin import Decomposition, explain_contributions
from mfrec.models.factor import NO_BIAS_PENALTY, FactorModel
from mfrec.inference.titles import TitleIndex
from mfrec.kernels.topk import topk_rows

COLUMNS = ("rank", "movieId", "title", "year", "genres", "predicted_rating", "score", "why")
# the column a list is ranked by, named for what it holds (README: Recommendations)
RANKED_BY = {
    "score": "the model's prediction before clipping to the rating scale, in rating units (a group: its "
             "least-satisfied member's; an attention pair: the pair's)",
    "cosine": "cosine similarity (-1..1) of the movie's factors with the asked-for movie's",
    "training_ratings": "how many training ratings the movie has",
    "logit": "a sequential model's next-movie logit (no rating units)",
    "rank_score": "the ranking run's own score (--rank-by): its units are that model's (popularity: training "
                  "ratings; a factor run: its score)",
    "ease_score": "an EASE score: the sum over the user's movies j of the item-item weight B[j, i] (no rating "
                  "units; for similar movies, B[asked-for movie, i] alone)",
}
DISLIKES = ("score", "down-only")  # how a made-up user's dislikes rank a list (DEFAULTS.dislikes)
GROUP_RULE = "least misery: a movie's group score is the lowest predicted rating among the members"
WHY_TOP = 3  # rated movies named in the "why" column
EXPLAIN_TOP = 5  # rated movies listed per recommendation with --explain


@dataclass(frozen=True)
class Filters:
    """Which movies may be listed: any of ``genres`` (names, case-insensitive), ``years``, and at
    least ``min_ratings`` training ratings (rarely rated movies have noisy factors)."""

    genres: tuple[str, ...] = ()
    years: tuple[int | None, int | None] | None = None
    min_ratings: int = 0

    @staticmethod
    def parse_years(text: str | None) -> tuple[int | None, int | None] | None:
        """"1990-1999", "1995", "1990-" or "-1980" -> (lo, hi) inclusive."""
        if text is None or str(text).strip() == "":
            return None
        m = re.fullmatch(r"\s*(\d{4})?\s*(-|–|\.\.)?\s*(\d{4})?\s*", str(text))
        if not m or (m.group(1) is None and m.group(3) is None):
            raise DataError(f"--years {text!r} is not a year range like 1990-1999, 1995, 1990- or -1980")
        lo = int(m.group(1)) if m.group(1) else None
        hi = int(m.group(3)) if m.group(3) else None
        if m.group(2) is None:
            hi = lo
        if lo is not None and hi is not None and lo > hi:
            raise DataError(f"--years {text!r} runs backwards ({lo} > {hi})")
        return lo, hi

    def describe(self) -> str:
        parts = []
        if self.genres:
            parts.append("genre " + " or ".join(self.genres))
        if self.years:
            lo, hi = self.years
            parts.append(f"years {lo or '…'}-{hi or '…'}" if lo != hi else f"year {lo}")
        if self.min_ratings:
            parts.append(f"at least {self.min_ratings} training ratings")
        return ", ".join(parts)


@dataclass
class Result:
    """A ranked list and what to say about it."""

    table: Any  # polars DataFrame with COLUMNS
    notes: list[str] = field(default_factory=list)
    details: dict[int, list[str]] = field(default_factory=dict)  # rank -> explanation lines
    label: str = "recommendations"
    kind: str = "recommend"

    def __len__(self) -> int:
        return self.table.height

    @property
    def ranked_by(self) -> str:
        """The name of the column the list is ranked by (a ``RANKED_BY`` key)."""
        return next(c for c in self.table.columns if c in RANKED_BY)


@dataclass(frozen=True)
class UserVector:
    """A user as the model sees them: bias and factor vector (folded in or stored)."""

    bias: float
    vector: np.ndarray


# what each kind of run can be asked for (the modes of ``check_supported``)
MODES = {
    "like": "a made-up user (--like/--rate)",
    "user": "an existing user (--user)",
    "users": "a pair or group (--users)",
    "similar": "similar movies (--similar)",
    "all-users": "every user's list (--all-users)",
    "explain": "explanations (--explain)",
    "interactive": "the interactive loop",
}


class Recommender:
    """Recommendations from one trained factor run (ALS ``model.npz``, or the ``factors.npz`` of a
    neumf/genre-embedding run) and the dataset it was trained on.

    ``kind`` names the model; ``supports`` the request modes it answers (see ``MODES``); the
    subclasses in ``mfrec.inference.neural`` answer fewer.
    """

    supports: frozenset = frozenset(MODES)
    supported_text = "every request"

    def __init__(self, model: FactorModel, dataset, run_name: str = "run"):
        self.model = model
        self.dataset = dataset
        self.run_name = run_name
        if model.n_movies != dataset.n_movies or model.n_users != dataset.n_users:
            raise ModelError(
                f"run {run_name} has {model.n_users} users x {model.n_movies} movies but dataset "
                f"{dataset.name} has {dataset.n_users} x {dataset.n_movies}: was the data prepared again since?"
            )
        if not (np.array_equal(model.movie_ids, dataset.movie_ids.ids) and np.array_equal(model.user_ids, dataset.user_ids.ids)):
            raise ModelError(f"run {run_name}'s user or movie ids differ from dataset {dataset.name}'s: prepare and train again")
        self.kind = model.kind
        # a neumf/genre-embedding run's factors.npz: the neural model was trained by Adam, not ALS
        self.exported_from = model.exported_from
        # bayes runs: the kept posterior samples (samples.npz) give each prediction its spread, and
        # lower_bound = z ranks by predicted rating - z * spread
        self.samples = None
        self.lower_bound = 0.0
        self._init_tables(dataset)

    def check_supported(self, mode: str) -> None:
        """Raise a one-sentence ModelError when this kind of run cannot answer ``mode`` (a ``MODES`` key)."""
        if mode not in self.supports:
            raise ModelError(
                f"run {self.run_name} is {_a(self.kind)} model, which supports {self.supported_text}; "
                f"{MODES.get(mode, mode)} is not supported for it"
            )

    def fold_in_note(self) -> str:
        """How a made-up user is placed in this model (printed above their list)."""
        if self.exported_from:
            h = self.model.fold_in_settings
            bias = ("no user bias (the model has none)" if h.reg_bias >= NO_BIAS_PENALTY
                    else f"user-bias penalty {h.reg_bias:g}")
            return (f"the ALS user half-step against this {self.exported_from} run's movie factors from factors.npz, "
                    f"ridge penalty {h.reg:g} x n (its own L2 weight per rating), {bias}: an approximation, "
                    f"since the neural model was trained by Adam, not ALS")
        if self.kind == "bayes":
            h = self.model.fold_in_settings
            return (f"the posterior mean of their [bias, factors] against the posterior-mean movie factors under the "
                    f"learned prior (ridge {h.reg:.3g}, bias {h.reg_bias:.3g}: prior precision / noise precision)")
        if self.model.calibrated:
            return ("the model's per-row ALS step, shrunk towards the training users (empirical-Bayes prior, "
                    "so a few ratings stay near a typical user)")
        return "the model's per-row ALS step"

    def _spread(self, pred: np.ndarray, spread: tuple[np.ndarray, np.ndarray] | None, lower_bound: float | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """(ranking scores, per-movie posterior sd or None, notes): with kept samples and a lower bound z
        (``lower_bound``, else the recommender's own ``lower_bound``), the list is ranked by predicted
        rating - z x sd."""
        if spread is None:
            return pred, None, []
        z = self.lower_bound if lower_bound is None else float(lower_bound)
        sd = spread[1]
        notes = [f"rating ± the posterior predictive standard deviation over {len(self.samples)} kept samples "
                 "(noise included)"]
        if z:
            notes.append(f"ranked by the lower bound: predicted rating - {z:g} x sd")
            return (pred - np.float32(z) * sd).astype(np.float32), sd, notes
        return pred, sd, notes

    def _init_tables(self, dataset) -> None:
        """Titles, years, genres, ids and popularity of the dataset's movies."""
        self.scale = tuple(float(x) for x in dataset.rating_scale)
        movies = dataset.movies.sort("movie")
        self.movies = movies
        self.titles_list = movies["title"].to_list()
        self.years = movies["year"].to_list() if "year" in movies.columns else [None] * dataset.n_movies
        self.genre_lists = [list(g) if g is not None else [] for g in movies["genres"].to_list()]
        self.movie_id_array = movies["movieId"].to_numpy().astype(np.int64)
        self.popularity = np.diff(np.asarray(dataset.train_by_movie.indptr)).astype(np.int64)
        self._titles: TitleIndex | None = None
        self._shorts: dict[tuple[int, int], str] = {}  # _short's titles, made on first use

    # -- lookups ---------------------------------------------------------------------------------
    @property
    def titles(self) -> TitleIndex:
        if self._titles is None:
            self._titles = TitleIndex(self.movie_id_array, self.titles_list, self.years, self.popularity)
        return self._titles

    def movie(self, query: str | int) -> int:
        """Movie index of a title or movieId (forgiving; raises on ambiguous or unknown)."""
        return self.titles.resolve(query)

    def user(self, user_id: str | int) -> int:
        text = str(user_id).strip()
        if not re.fullmatch(r"-?\d+", text):
            raise UnknownIdError(f"user id {text!r} is not a number: give the original MovieLens userId")
        try:
            return int(self.dataset.user_ids.index_of(int(text)))
        except UnknownIdError:
            ids = self.dataset.user_ids.ids
            raise UnknownIdError(
                f"user {text} is not in dataset {self.dataset.name} (user ids run {ids.min()}..{ids.max()}, {len(ids)} users)"
            ) from None

    def distinct_users(self, user_ids: Sequence[str]) -> list[int]:
        """The user indices of a group's ids; a user listed twice (``--users 1,1``, or ``1,01``) is refused.

        Refused rather than dropped: a repeat is most often a typo for another member, and least misery
        over a repeated member silently answers for a smaller group than the one asked for."""
        first: dict[int, str] = {}
        for text in user_ids:
            u = self.user(text)
            if u in first:
                same = text if first[u] == text else f"{first[u]} (as {first[u]} and {text})"
                raise DataError(f"--users lists user {same} twice: give each member of the group once "
                                f"(for one user's own list, use --user {first[u]})")
            first[u] = text
        return list(first)

    def title(self, m: int) -> str:
        return self.titles_list[m]

    def filter_mask(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or (not filters.genres and not filters.years and not filters.min_ratings):
            return None
        mask = np.ones(self.dataset.n_movies, bool)
        if filters.genres:
            names = {g.lower(): g for g in self.dataset.genres}
            wanted = []
            for g in filters.genres:
                if g.lower() not in names:
                    raise DataError(f"unknown genre {g!r}; the genres are: {', '.join(self.dataset.genres)}")
                wanted.append(names[g.lower()])
            mask &= np.array([any(w in gs for w in wanted) for gs in self.genre_lists], bool)
        if filters.years:
            lo, hi = filters.years
            y = np.array([-1 if v is None else v for v in self.years], np.int64)
            mask &= y >= 0
            if lo is not None:
                mask &= y >= lo
            if hi is not None:
                mask &= y <= hi
        if filters.min_ratings:
            mask &= self.popularity >= int(filters.min_ratings)
        return mask

    # -- profiles of a made-up user ----------------------------------------------------------------
    def check_rating(self, value: float, what: str) -> float:
        lo, hi = self.scale
        if not np.isfinite(value) or value < lo or value > hi:
            raise DataError(f"rating {value:g} for {what} is outside the rating scale {lo:g}-{hi:g}")
        return float(value)

    def profile(self, likes: Iterable[str] = (), rates: Iterable[str] = ()) -> list[tuple[int, float]]:
        """(movie index, rating) pairs from ``--like TITLE`` (top of the scale) and ``--rate "TITLE=4.5"``.

        A movie given twice keeps its last rating.
        """
        out: dict[int, float] = {}
        for q in likes:
            out[self.movie(q)] = self.scale[1]
        for item in rates:
            text = str(item)
            if "=" not in text:
                raise DataError(f"--rate {text!r} needs the form \"TITLE=RATING\", e.g. \"Star Wars=4.5\"")
            name, _, value = text.rpartition("=")
            try:
                r = float(value)
            except ValueError:
                raise DataError(f"--rate {text!r}: {value.strip()!r} is not a number") from None
            m = self.movie(name)
            out[m] = self.check_rating(r, repr(name.strip()))
        return list(out.items())

    def fold_in(self, ratings: Sequence[tuple[int, float]]) -> UserVector:
        """A made-up user's bias and factors: the model's own per-row ALS step on their ratings, shrunk
        towards the training users when the run has a population prior (``FactorModel.fold_in``)."""
        if not ratings:
            return UserVector(0.0, np.zeros(self.model.k, np.float32))
        idx = np.array([m for m, _ in ratings], np.int32)
        val = np.array([r for _, r in ratings], np.float32)
        bias, vec = self.model.fold_in_user(idx, val)
        return UserVector(bias, vec)

    # -- lists -----------------------------------------------------------------------------------
    def _top(self, scores: np.ndarray, n: int, exclude: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        excl = np.unique(np.asarray(exclude, np.int32))
        idx, sc = topk_rows(
            scores[None, :], n, allowed=mask,
            exclude_indptr=np.array([0, len(excl)], np.int64), exclude_indices=excl,
        )
        keep = idx[0] >= 0
        return idx[0][keep], sc[0][keep]

    def _clip(self, x: np.ndarray) -> np.ndarray | None:
        """Predicted ratings of scores: the run's map onto the scale (``FactorModel.rating``), else clipped;
        None for an implicit (ials) model, whose score ranks movies and is no rating (the table then
        has no predicted_rating)."""
        if getattr(self.model, "implicit", False):
            return None
        if self.model.config.get("rating_map"):
            return self.model.rating(x)
        return np.clip(x, *self.scale)

    def _shown(self, score: float) -> str:
        """One score as a "why" cell shows it: the predicted rating, or for an ials run the score itself."""
        rated = self._clip(np.asarray([score]))
        return f"{float(score):.3f} (score)" if rated is None else f"{float(rated[0]):.2f}"

    def _table(self, movies: np.ndarray, predicted, score, why: list[str], ranked_by: str = "score", spread=None):
        """The list as a polars table; ``predicted=None`` leaves out predicted_rating (a list that predicts
        no rating), ``ranked_by`` names the score column (a ``RANKED_BY`` key). Full precision."""
        import polars as pl

        movies = np.asarray(movies, np.int64)
        columns = {
            "rank": np.arange(1, len(movies) + 1, dtype=np.int32),
            "movieId": self.movie_id_array[movies],
            "title": [self.titles_list[m] for m in movies],
            "year": pl.Series([self.years[m] for m in movies], dtype=pl.Int32),
            "genres": ["|".join(self.genre_lists[m]) for m in movies],
        }
        if predicted is not None:
            columns["predicted_rating"] = pl.Series(
                [None if p is None or not np.isfinite(p) else float(p) for p in predicted], dtype=pl.Float64)
        if spread is not None:  # bayes: the posterior predictive sd of each predicted rating
            columns["uncertainty"] = pl.Series([float(x) for x in spread], dtype=pl.Float64)
        if ranked_by == "training_ratings":
            columns[ranked_by] = pl.Series([int(s) for s in score], dtype=pl.Int64)
        else:
            columns[ranked_by] = pl.Series([float(s) for s in score], dtype=pl.Float64)
        columns["why"] = why
        return pl.DataFrame(columns)

    def _explained(
        self, ratings: Sequence[tuple[int, float]], recs: np.ndarray, explain: bool
    ) -> tuple[list[str], dict[int, list[str]], list[str]]:
        """The "why" cells, the --explain lines and notes for a list recommended from ``ratings``."""
        notes: list[str] = []
        if not ratings or len(recs) == 0:
            return ["popular with everyone (no ratings given)" if not ratings else ""] * len(recs), {}, notes
        rated = np.array([m for m, _ in ratings], np.int32)
        values = np.array([r for _, r in ratings], np.float32)
        # one factored system, solved for the listed films only (mfrec.inference.foldin: no cap on ratings)
        contrib, population = Decomposition(self.model, rated, values).contributions(recs)
        above = values.astype(np.float64) > self.model.mu + self.model.movie_bias[rated].astype(np.float64)
        magnitude = np.abs(contrib)
        total = magnitude.sum(axis=1)
        orders = np.argsort(-magnitude, axis=1, kind="stable")  # largest |contribution| first, per film
        share_of = contrib / np.where(total > 0, total, np.inf)[:, None]  # 0 where nothing contributes
        why, details = [], {}
        for row, m in enumerate(recs):
            c, order, shares, total_abs = contrib[row], orders[row], share_of[row], float(total[row])
            # why_text names the first WHY_TOP ratings that push the film up, else the largest pull:
            # only those are built into items (the same cell as passing every rating)
            up = order[c[order] > 0][:WHY_TOP]
            why.append(why_text([(self._short(rated[j]), float(values[j]), bool(above[j]), float(c[j]), float(shares[j]))
                                 for j in (up if len(up) else order[:1])]))
            if explain:
                base = self.model.mu + float(self.model.movie_bias[m])
                pop = (f" {float(population[row]):+.2f} (a typical user who rated these movies)" if self.model.calibrated
                       else "")
                lines = [
                    f"baseline mu + movie bias{' + population' if pop else ''} = {self.model.mu:.2f} "
                    f"{float(self.model.movie_bias[m]):+.2f}{pop} = {base + float(population[row]):.2f}; "
                    f"from your ratings {float(c.sum()):+.2f} (user bias and taste together)"
                ]
                for j in order[:EXPLAIN_TOP]:
                    lines.append(
                        f"{100 * shares[j]:+5.0f}%  {c[j]:+.3f}  {_reason(bool(above[j]), float(c[j]))} "
                        f"{self.titles_list[rated[j]]} (rated {values[j]:g})"
                    )
                if len(order) > EXPLAIN_TOP:
                    rest = c[order[EXPLAIN_TOP:]]
                    lines.append(f"{100 * rest.sum() / total_abs if total_abs else 0:+5.0f}%  {rest.sum():+.3f}  {len(rest)} other rating{'s' if len(rest) != 1 else ''}")
                details[row + 1] = lines
        if explain:
            notes.append(
                "explanation: the folded-in user (bias, factors) is linear in the ratings, so each rated movie j "
                "adds (r_j - mu - b_j) [1,q_j]^T A^-1 [1,q_i] to movie i's score; shares are of the sum of |contributions|; "
                "'like' = rated above the movie's average and pushing this film up, 'unlike' = rated below it and "
                "pushing this film up (a dislike), 'despite' = pushing it down"
            )
        return why, details, notes

    def explanation(self, ratings: Sequence[tuple[int, float]], targets: Sequence[int]):
        """Long table of every rated movie's exact contribution to each target movie's score.

        Columns: movieId, title, rated_movieId, rated_title, rating, contribution, share (signed,
        of the sum of |contributions| for that target), baseline (mu + b_i, plus the population prior's
        part for a calibrated run), score (baseline + the contributions).
        """
        import polars as pl

        targets = np.asarray(list(targets), np.int64)
        rated = np.array([m for m, _ in ratings], np.int32)
        values = np.array([r for _, r in ratings], np.float32)
        contrib, _, population = explain_contributions(self.model, rated, values, targets)
        rows = []
        for t, m in enumerate(targets):
            c = contrib[t]
            total = float(np.abs(c).sum()) or 1.0
            base = self.model.mu + float(self.model.movie_bias[m]) + float(population[t])
            for j in np.argsort(-np.abs(c), kind="stable"):
                rows.append((int(self.movie_id_array[m]), self.titles_list[m], int(self.movie_id_array[rated[j]]),
                             self.titles_list[rated[j]], float(values[j]), float(c[j]), float(c[j]) / total,
                             base, base + float(c.sum())))
        names = ["movieId", "title", "rated_movieId", "rated_title", "rating", "contribution", "share", "baseline", "score"]
        return pl.DataFrame(rows, schema=names, orient="row")

    def _short(self, m: int, width: int = 24) -> str:
        """A title as the "why" cell names it: no year, at most ``width`` characters (kept once made)."""
        key = (int(m), width)
        short = self._shorts.get(key)
        if short is None:
            from mfrec.inference.titles import split_year

            t = split_year(self.titles_list[m])[0] or self.titles_list[m]
            short = self._shorts[key] = t if len(t) <= width else t[: width - 1] + "…"
        return short

    def dislike_lift(self, ratings: Sequence[tuple[int, float]]) -> np.ndarray:
        """How much a made-up user's dislikes (ratings below the movie's average) lift each movie's score:
        the sum of their positive exact contributions, (n_movies,) float64 (zeros without dislikes)."""
        rated = np.array([m for m, _ in ratings], np.int64)
        values = np.array([r for _, r in ratings], np.float64)
        below = values < self.model.mu + self.model.movie_bias[rated].astype(np.float64) if len(rated) else np.zeros(0, bool)
        if not below.any():
            return np.zeros(self.model.n_movies)
        parts = Decomposition(self.model, rated, values).parts
        design = np.concatenate([np.ones((self.model.n_movies, 1)),
                                 np.asarray(self.model.effective_movie_factors, np.float64)], axis=1)
        contrib = design @ parts[below].T  # (n_movies, #dislikes)
        return np.maximum(contrib, 0.0).sum(axis=1)

    def made_up_scores(self, ratings: Sequence[tuple[int, float]], dislikes: str = DEFAULTS.dislikes
                       ) -> tuple[UserVector, np.ndarray, np.ndarray]:
        """(folded-in user, score of every movie, what the list is ranked by) for a made-up user.

        ``dislikes="score"`` ranks by the score; ``"down-only"`` by the score less ``dislike_lift``.
        """
        if dislikes not in DISLIKES:
            raise DataError(f"--dislikes must be one of {', '.join(DISLIKES)}, not {dislikes!r}")
        vec = self.fold_in(ratings)
        pred = self.model.score_movies(vec.bias, vec.vector)
        if dislikes == "score" or not ratings:
            return vec, pred, pred
        return vec, pred, (pred - self.dislike_lift(ratings)).astype(np.float32)

    def recommend(
        self,
        ratings: Sequence[tuple[int, float]],
        n: int = DEFAULTS.top,
        filters: Filters | None = None,
        explain: bool = False,
        dislikes: str = DEFAULTS.dislikes,
        lower_bound: float | None = None,
    ) -> Result:
        """Top-n for a made-up user given (movie index, rating) pairs; the rated movies never come back.
        ``dislikes``: see ``made_up_scores`` (the score column always holds the model's score);
        ``lower_bound``: see ``_spread`` (a bayes run with kept samples)."""
        n = _check_n(n)
        vec, pred, rank_by = self.made_up_scores(ratings, dislikes)
        spread = None
        if self.samples is not None and ratings:
            h = self.model.fold_in_settings
            spread = self.samples.fold_in_spread([m for m, _ in ratings], [r for _, r in ratings], h.reg, h.reg_bias)
        rank_by, sd, spread_notes = self._spread(rank_by, spread, lower_bound)
        mask = self.filter_mask(filters)
        recs, _ = self._top(rank_by, n, np.array([m for m, _ in ratings], np.int32), mask)
        scores = pred[recs]
        why, details, notes = self._explained(ratings, recs, explain)
        head = [
            f"made-up user with {len(ratings)} rating{'s' if len(ratings) != 1 else ''} folded into run {self.run_name} "
            f"({self.fold_in_note()}; user bias {vec.bias:+.2f}); the rated movies are excluded",
        ]
        if self.model.config.get("rating_map"):
            head.append("predicted_rating: the run's fitted map of score onto the rating scale (expected rating at "
                        "that score, strictly increasing), not the score clipped")
        if dislikes == "down-only" and ratings:
            head.append("ranked with --dislikes down-only: a disliked movie can pull a film down but not lift it up")
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        if not ratings:
            head[0] = "no ratings given: the list is the model's baseline (mu + movie bias)"
        table = self._table(recs, self._clip(scores), scores, why, spread=None if sd is None else sd[recs])
        return Result(table, head + spread_notes + notes, details, label="made-up-user")

    # -- the ranker protocol (--rank-by): any run that scores every movie for a made-up or existing user
    def score_made_up(self, ratings: Sequence[tuple[int, float]]) -> np.ndarray:
        """Every movie's score for a made-up user (what this run ranks a list by)."""
        return self.made_up_scores(ratings)[2]

    def score_user(self, u: int) -> np.ndarray:
        """Every movie's score for an existing user (index ``u``) from their trained vector."""
        return self.model.score_movies(float(self.model.user_bias[u]), self.model.user_factors[u])

    def reasons(self, ratings: Sequence[tuple[int, float]], movies: np.ndarray) -> list[str]:
        """The "why" cells of ``movies`` for a user with these ratings."""
        return self._explained(ratings, np.asarray(movies, np.int64), False)[0]

    @property
    def movie_ids(self) -> np.ndarray:
        """The original movieId of every movie index (the ranker protocol's check that two runs agree)."""
        return self.movie_id_array

    def describe_ranker(self) -> str:
        if self.kind == "ials":
            return f"run {self.run_name} (ials: p_u . q_i, what the user is likely to watch; not a rating)"
        return f"run {self.run_name} ({self.kind}: its predicted rating before clipping)"

    def recommend_ranked_by(self, ranker, ratings: Sequence[tuple[int, float]] | None = None, user_id=None,
                            n: int = DEFAULTS.top, filters: Filters | None = None, exclude: str = DEFAULTS.exclude
                            ) -> Result:
        """Top-n ranked by another run (``ranker``: any object with ``score_made_up``, ``score_user``,
        ``reasons``, ``describe_ranker`` and ``movie_ids``, see ``mfrec.inference.rankers``), with this
        run's predicted ratings; a made-up user (``ratings``) or an existing one (``user_id``)."""
        n = _check_n(n)
        if not np.array_equal(np.asarray(ranker.movie_ids), self.movie_id_array):
            raise ModelError(f"{ranker.describe_ranker()} scores other movies than run {self.run_name}: "
                             "rank and predict with runs on one dataset")
        if user_id is not None:
            u = self.user(user_id)
            seen, _ = self._seen(u, exclude)
            ratings = self._train_row(u)
            ranked = ranker.score_user(u)
            mine = self.score_user(u)
            who = f"user {user_id}"
        else:
            ratings = list(ratings or [])
            seen = np.array([m for m, _ in ratings], np.int32)
            ranked = ranker.score_made_up(ratings)
            mine = self.made_up_scores(ratings)[1]
            who = f"made-up user with {len(ratings)} rating{'s' if len(ratings) != 1 else ''}"
        recs, rank_scores = self._top(np.asarray(ranked, np.float32), n, seen, self.filter_mask(filters))
        why = ranker.reasons(ratings, recs)
        head = [f"{who}: ranked by {ranker.describe_ranker()}; predicted_rating from run {self.run_name} "
                f"({self.kind}{', calibrated fold-in' if user_id is None and self.model.calibrated else ''})",
                "their rated movies are excluded" if user_id is None else f"excluded the {len(seen)} movies they rated"]
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        table = self._table(recs, self._clip(mine[recs]), rank_scores, why, ranked_by="rank_score")
        return Result(table, head, {}, label="made-up-user" if user_id is None else f"user-{user_id}")

    def recommend_user(
        self,
        user_id: str | int,
        n: int = DEFAULTS.top,
        filters: Filters | None = None,
        explain: bool = False,
        exclude: str = DEFAULTS.exclude,
        lower_bound: float | None = None,
    ) -> Result:
        """Top-n for an existing user (original id) from their trained vector; their seen movies excluded.

        ``exclude="all"`` drops every movie they rated in any split of the data (train, val, test);
        ``"train"`` only their training ratings (what the model saw).
        """
        n = _check_n(n)
        u = self.user(user_id)
        vec = UserVector(float(self.model.user_bias[u]), self.model.user_factors[u])
        pred = self.model.score_movies(vec.bias, vec.vector)
        ranking, sd, spread_notes = self._spread(pred, None if self.samples is None else self.samples.user_spread(u),
                                                 lower_bound)
        train = self._train_row(u)
        seen, counts = self._seen(u, exclude)
        recs, _ = self._top(ranking, n, seen, self.filter_mask(filters))
        scores = pred[recs]  # the model's score; with --lower-bound the order follows score - z x sd
        why, details, notes = self._explained(train, recs, explain)
        what = ", ".join(f"{c} {s}" for s, c in counts.items())
        head = [
            f"user {user_id} (trained user vector of run {self.run_name}); excluded the {len(seen)} movies they rated "
            f"({what})",
        ]
        if any(why):
            refold = self.fold_in(train)
            gap = float(np.max(np.abs(refold.vector - vec.vector))) if self.model.k else 0.0
            head.append(
                f"'why' decomposes their {len(train)} training ratings folded in against the final movie factors "
                f"(max |difference| from the stored vector: {gap:.3g})"
            )
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        table = self._table(recs, self._clip(scores), scores, why, spread=None if sd is None else sd[recs])
        return Result(table, head + spread_notes + notes, details, label=f"user-{user_id}")

    def recommend_group(self, user_ids: Sequence[str | int], n: int = DEFAULTS.top, filters: Filters | None = None, exclude: str = DEFAULTS.exclude) -> Result:
        """One list for several existing users, ranked by the least-satisfied member's predicted rating."""
        n = _check_n(n)
        ids = [str(x).strip() for x in user_ids if str(x).strip()]
        if len(ids) < 2:
            raise DataError("--users needs at least two user ids separated by commas, e.g. --users 12,345")
        users = self.distinct_users(ids)
        preds = np.stack([self.model.score_movies(float(self.model.user_bias[u]), self.model.user_factors[u]) for u in users])
        group = preds.min(axis=0)
        seen = np.unique(np.concatenate([self._seen(u, exclude)[0] for u in users]))
        recs, scores = self._top(group, n, seen, self.filter_mask(filters))
        why = [
            " · ".join(f"user {i} {self._shown(preds[k, m])}" for k, i in enumerate(ids)) for m in recs
        ]
        head = [
            f"group of {len(ids)} users ({', '.join(ids)}) from run {self.run_name}",
            f"rule: {GROUP_RULE}",
            f"excluded the {len(seen)} movies any member rated ({'any split' if exclude == 'all' else 'training ratings'})",
        ]
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        return Result(self._table(recs, self._clip(scores), scores, why), head, {}, label="users-" + "-".join(ids))

    def similar(self, query: str | int, n: int = DEFAULTS.top, filters: Filters | None = None) -> Result:
        """Nearest movies by cosine of the movie factors (for mf-genre: q_i + |G_i|^-1/2 Σ y_g); the
        table's ``cosine`` column replaces ``predicted_rating`` and ``score``."""
        n = _check_n(n)
        if self.model.k == 0:
            raise ModelError(f"run {self.run_name} is a bias-only model: it has no movie factors to compare")
        m = self.movie(query)
        q = self.model.effective_movie_factors
        norms = np.linalg.norm(q, axis=1)
        norms[norms == 0] = np.inf
        cos = (q @ q[m]) / (norms * norms[m])
        recs, scores = self._top(cos.astype(np.float32), n, np.array([m], np.int32), self.filter_mask(filters))
        head = [
            f"movies nearest to {self.title(m)} by cosine of the movie factors"
            + (" (genre part included: q_i + |G_i|^-1/2 sum y_g)" if self.model.genre_factors.shape[0] else "")
        ]
        if filters and filters.describe():
            head.append(f"filter: {filters.describe()}")
        why = [f"cosine {s:.2f} with {self._short(m)}" for s in scores]
        label = f"similar-{self.movie_id_array[m]}"
        return Result(self._table(recs, None, scores, why, ranked_by="cosine"), head, {}, label=label, kind="similar")

    def popular(self, n: int = DEFAULTS.top, filters: Filters | None = None, exclude: Sequence[int] = ()) -> Result:
        """Most-rated movies in the training data (to find movies to rate)."""
        n = _check_n(n)
        recs, counts = self._top(self.popularity.astype(np.float32), n, np.asarray(exclude, np.int32), self.filter_mask(filters))
        base = self.model.mu + self.model.movie_bias[recs] if len(recs) else np.zeros(0)
        why = [f"{int(c)} training ratings" for c in counts]
        return Result(self._table(recs, self._clip(base), counts, why, ranked_by="training_ratings"),
                      [f"most-rated movies in {self.dataset.name}'s training split"], {}, label="popular", kind="popular")

    def recommend_all_users(self, n: int = DEFAULTS.top, filters: Filters | None = None, exclude: str = DEFAULTS.exclude, block: int = 512):
        """Top-n for every user of the model (Numba top-k over BLAS-scored blocks), long format:
        userId, rank, movieId, title, predicted_rating, score; each user's rated movies excluded."""
        import polars as pl

        from mfrec.inference.topk import recommend_all

        n = _check_n(n)
        indptr, indices = self._seen_csr(exclude)
        m = self.model
        idx, sc = recommend_all(m.user_factors, m.effective_movie_factors, m.user_bias, m.movie_bias, m.mu, n,
                                allowed=self.filter_mask(filters), exclude_indptr=indptr, exclude_indices=indices, block=block)
        users = np.repeat(np.asarray(self.dataset.user_ids.ids, np.int64), n)
        ranks = np.tile(np.arange(1, n + 1, dtype=np.int32), m.n_users)
        flat_i, flat_s = idx.ravel(), sc.ravel()
        keep = flat_i >= 0
        movies = flat_i[keep].astype(np.int64)
        titles = pl.Series(self.titles_list, dtype=pl.Utf8).gather(movies)
        rated = self._clip(flat_s[keep])
        return pl.DataFrame({
            "userId": users[keep], "rank": ranks[keep], "movieId": self.movie_id_array[movies], "title": titles,
            **({"predicted_rating": rated.astype(np.float64)} if rated is not None else {}),
            "score": flat_s[keep].astype(np.float64),
        })

    # -- data helpers ----------------------------------------------------------------------------
    def _train_row(self, u: int) -> list[tuple[int, float]]:
        csr = self.dataset.train_by_user
        a, b = int(csr.indptr[u]), int(csr.indptr[u + 1])
        return list(zip(np.asarray(csr.indices[a:b]).tolist(), np.asarray(csr.values[a:b], np.float64).tolist()))

    def _seen_csr(self, exclude: str) -> tuple[np.ndarray, np.ndarray]:
        """CSR (by user index) of the movies each user rated: in training, or in any split."""
        from mfrec.kernels.csr import csr_from_pairs

        if exclude not in ("all", "train"):
            raise DataError(f"exclude must be 'all' or 'train', not {exclude!r}")
        if exclude == "train":
            csr = self.dataset.train_by_user
            return np.asarray(csr.indptr, np.int64), np.asarray(csr.indices, np.int32)
        r = self.dataset.ratings
        return csr_from_pairs(np.asarray(r.user), np.asarray(r.movie), self.model.n_users)

    def _seen(self, u: int, exclude: str) -> tuple[np.ndarray, dict[str, int]]:
        if exclude not in ("all", "train"):
            raise DataError(f"exclude must be 'all' or 'train', not {exclude!r}")
        parts, counts = [], {}
        for name in ("train", "val", "test") if exclude == "all" else ("train",):
            split = self.dataset.split(name)
            if split is None:
                continue
            users = np.asarray(split.user)
            lo, hi = np.searchsorted(users, [u, u + 1])  # each split is sorted by user
            parts.append(np.asarray(split.movie[lo:hi], np.int32))
            counts[name] = int(hi - lo)
        seen = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int32)
        return seen, counts


def _reason(above: bool, contribution: float) -> str:
    """The word for one rating's part in a film's score: it must say what the number does."""
    if contribution < 0:
        return "despite"
    return "like" if above else "unlike"


def why_text(items: Sequence[tuple[str, float, bool, float, float]]) -> str:
    """The "why" cell from (title, rating, rated above the movie's average, contribution, share) pairs,
    largest |contribution| first.

    Names up to ``WHY_TOP`` ratings that push the film up: "like X" for one rated above the movie's
    average, "unlike X" for one rated below it (a dislike that points away from films like this one,
    so the word says so). When no rating pushes the film up, the largest one that pulls it down is
    named with "despite" (the film is there on its baseline). Shares are signed, of the sum of
    |contributions|.
    """
    up = [it for it in items if it[3] > 0][:WHY_TOP]
    named = up or list(items[:1])
    return ", ".join(f"{_reason(above, c)} {title} [{r:g}] {100 * share:+.0f}%" for title, r, above, c, share in named)


def check_lower_bound(rec, z: float) -> float:
    """``z`` if ``rec`` (any recommender) can rank by predicted rating - z x sd (a bayes run with kept
    samples and a positive, finite z), else a one-sentence ``DataError``; 0 means no lower bound."""
    z = float(z)
    if z == 0:
        return 0.0
    if getattr(rec, "samples", None) is None:
        raise DataError(f"--lower-bound needs a bayes run with kept samples; run {rec.run_name} has none")
    if not (z > 0) or z == float("inf"):
        raise DataError(f"--lower-bound {z:g} must be a positive number of standard deviations")
    return z


def _a(word: str) -> str:
    """"a sequential", "an attention"."""
    return f"{'an' if str(word)[:1].lower() in 'aeiou' else 'a'} {word}"


def _check_n(n: int) -> int:
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise DataError(f"--top {n!r} is not a whole number") from None
    if n < 1 or n > 10_000:
        raise DataError(f"--top {n} must be between 1 and 10000")
    return n
