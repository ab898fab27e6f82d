"""The pydantic models of every request and response body (the OpenAPI schema is built from them)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from mfrec.inference.defaults import DEFAULTS


RANK_BY_HELP = ("Which run ranks the list (Inference.py --rank-by): auto (default) lets the server's ranking run "
                "(an ials or ease run on the same dataset, chosen when the server started; see /model's ranker) rank "
                "a rating model's list unless the request explains it, re-ranks dislikes or asks a lower bound; none: "
                "the served run ranks its own list; the ranking run's model kind or run name: that run, or 404 when "
                "the server has no such run. predicted_rating always comes from the served run.")
LOWER_BOUND_HELP = ("bayes runs with kept samples (Inference.py --lower-bound): rank by predicted rating - z x its "
                    "posterior sd, so sure bets come first; 0 (default) ranks by the predicted rating. Other runs: 400.")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rating(Strict):
    movie: Union[int, str] = Field(description="A title, matched as on the command line ('star wars', "
                                               "'Alien (1979)', 'Matrix'), or a movieId.", examples=["Star Wars"])
    rating: float = Field(description="The rating, within the dataset's rating scale.", examples=[5])


class MadeUpUserRequest(Strict):
    ratings: list[Rating] = Field(description="The made-up user's ratings (a movie given twice keeps its last rating).")
    top: int = Field(DEFAULTS.top, description="How many movies to list (at most the server's max_top).")
    genres: list[str] = Field(default_factory=list, description="Only movies of any of these genres.")
    years: Optional[str] = Field(None, description="Only movies from these years: 1995, 1990-1999, 1990- or -1980.",
                                 examples=["1990-1999"])
    min_ratings: int = Field(DEFAULTS.min_ratings, description="Only movies with at least this many training ratings.")
    explain: bool = Field(False, description="Add each movie's per-rating contribution lines (details).")
    dislikes: Literal["score", "down-only"] = Field(
        DEFAULTS.dislikes, description="Rank by the model's score (a film unlike a disliked one is lifted), or take "
                                       "that lift off so dislikes only pull films down (Inference.py --dislikes).")
    rank_by: str = Field("auto", max_length=200, description=RANK_BY_HELP)
    lower_bound: float = Field(0.0, description=LOWER_BOUND_HELP, examples=[1.0])


class Movie(BaseModel):
    movieId: int
    title: str
    year: Optional[int] = None
    genres: list[str]
    training_ratings: int = Field(description="How many training ratings the movie has.")


class RatedMovie(Movie):
    rating: float
    query: str = Field(description="What the request called the movie.")


class Item(BaseModel):
    rank: int
    movieId: int
    title: str
    year: Optional[int] = None
    genres: list[str]
    predicted_rating: Optional[float] = Field(None, description="Clipped to the rating scale; absent for similar movies "
                                                               "and for models that predict no rating.")
    sd: Optional[float] = Field(None, description="bayes runs with kept samples: the posterior predictive standard "
                                                  "deviation of predicted_rating (shown as 4.3 ± 0.4).")
    score: float = Field(description="The value the list is ranked by (see ranked_by).")
    why: str = Field(description="Why the movie is listed: the rated movies that contributed most, with shares.")
    details: list[str] = Field(default_factory=list, description="With explain: per-rating contribution lines.")


class Ranker(BaseModel):
    run: str
    kind: str = Field(description="Its model kind: ials, ease, popularity, or another factor run's.")
    describe: str = Field(description="What its scores are.")


class RecommendationList(BaseModel):
    run: str
    model: str
    kind: str = Field(description="recommend, similar or popular.")
    ranked_by: str = Field(description="score, cosine, logit, training_ratings, ease_score or rank_score.")
    ranked_by_means: str
    notes: list[str] = Field(description="What the list is: how the user was placed, what was excluded, filters.")
    items: list[Item]
    rated: Optional[list[RatedMovie]] = Field(None, description="A made-up user's ratings as matched.")
    movie: Optional[Movie] = Field(None, description="Similar movies: the movie they are similar to.")
    ranker: Optional[Ranker] = Field(None, description="When another run ranked the list (rank_by): that run; "
                                                       "the scores are then its own (ranked_by rank_score).")


class SearchResult(BaseModel):
    query: str
    movies: list[Movie]


class ModelInfo(BaseModel):
    run: str
    model: str
    status: str
    finished: Optional[str] = None
    dataset: str
    users: int
    movies: int
    factors: Optional[int] = None
    rating_scale: list[float]
    rating_step: Optional[float] = None
    genres: list[str]
    years: Optional[list[int]] = None
    metrics: dict[str, float] = Field(description="The run's summary figures (train/val/test RMSE, MAE, ...).")
    supports: list[str] = Field(description="The requests this kind of run answers: like, user, users, similar, explain...")
    ranker: Optional[Ranker] = Field(None, description="The run that ranks made-up and existing users' lists under "
                                                       "rank_by auto (chosen at start), or null.")
    posterior_sd: bool = Field(False, description="Whether lists carry each predicted rating's posterior sd "
                                                  "(bayes runs with kept samples; lower_bound works).")
    defaults: dict[str, Union[int, str]]
    caps: dict[str, int] = Field(description="What one request may ask for.")


class Health(BaseModel):
    status: str
    run: str
    process: int = Field(description="The id of the server process that answered (mfrec serve --processes N).")


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence saying what was wrong with the request.")
    status: int
    suggestions: list[Movie] = Field(default_factory=list, description="For an unknown or ambiguous title: movies it may mean.")
