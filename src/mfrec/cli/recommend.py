"""``mfrec recommend`` / ``Inference.py``: recommendations from a trained run into Predictions/.

    python Inference.py --like "Star Wars" --like Alien --rate "Titanic=2" --explain
    python Inference.py --experiment RUN --user 12 --genre Comedy --years 1990-1999
    python Inference.py --users 12,345 --top 20
    python Inference.py --similar "Godfather, The"
    python Inference.py --all-users --top 10
    python Inference.py interactive --experiment RUN

numpy/numba/polars load inside the command bodies so ``--help`` stays fast.
"""

from __future__ import annotations

import click

from mfrec.cli.common import RUNS_ROOT_OPTION, Command, Group, friendly_errors, top_option
from mfrec.inference.defaults import DEFAULTS

_EXPERIMENT = click.option(
    "--experiment", "-e", metavar="RUN_OR_PATH", default=None,
    help="Run folder, its name under --runs-root, or a training --name (latest). Default: the most recent successful run.",
)
_MIN_RATINGS = click.option(
    "--min-ratings", default=DEFAULTS.min_ratings, show_default=True, type=click.IntRange(min=0),
    help="Only movies with at least this many training ratings: a movie rated by a handful of people "
         "has noisy factors and tends to crowd the top of every list (0 keeps them all).",
)
_RENAMED = {"--runs-dir": "--runs-root"}  # old spellings, accepted for one release


@click.group(cls=Group, renamed=_RENAMED, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@_EXPERIMENT
@click.option("--like", "likes", multiple=True, metavar="TITLE_OR_ID", help="A movie the made-up user likes (rated at the top of the scale). Repeatable.")
@click.option("--rate", "rates", multiple=True, metavar='"TITLE=4.5"', help="A movie and its rating for the made-up user. Repeatable.")
@click.option("--user", default=None, metavar="ID", help="An existing user (original MovieLens userId).")
@click.option("--users", default=None, metavar="ID,ID", help="A pair or group of existing users: one list, ranked by the least-satisfied member.")
@click.option("--similar", default=None, metavar="TITLE", help="Movies nearest to this one (cosine of the movie factors).")
@click.option("--all-users", is_flag=True, help="Top N for every user of the model (batch; Numba top-k), written as one long table.")
@top_option(DEFAULTS.top, "How many movies to list.", most=10_000)
@click.option("--genre", "genres", multiple=True, metavar="G", help="Only movies of this genre (repeat for any of several).")
@click.option("--years", default=None, metavar="1990-1999", help="Only movies from these years (1995, 1990-1999, 1990-, -1980).")
@_MIN_RATINGS
@click.option("--rank-by", default="auto", show_default=True, metavar="RUN_OR_KIND|auto|none",
              help="Rank the list with another run (a run folder or name, or a model kind such as ials or popularity: "
                   "the newest finished run of that kind on the same dataset); the --experiment run still gives the "
                   "predicted ratings. Made-up and existing users (--like/--rate, --user). auto: a rating model's "
                   "list is ranked by the newest ials, else ease, run on its dataset when there is one (they rank "
                   "4x better under full ranking); none: the --experiment run ranks its own list.")
@click.option("--dislikes", type=click.Choice(["score", "down-only"]), default=DEFAULTS.dislikes, show_default=True,
              help="A made-up user's list: rank by the model's score (a film unlike a disliked one is lifted), or "
                   "down-only (a dislike can pull a film down but never lift it).")
@click.option("--explain", is_flag=True, help="For each movie, the user's rated movies that contributed most, with shares.")
@click.option("--label", default=None, help="File name under Predictions/<run>/ (default: made-up-user, user-ID, users-ID-ID, similar-ID).")
@click.option("--exclude", type=click.Choice(["all", "train"]), default=DEFAULTS.exclude, show_default=True,
              help="Existing users: exclude the movies they rated in any split (all) or in training only.")
@click.option("--lower-bound", type=float, default=0.0, metavar="Z",
              help="bayes runs: rank by predicted rating - Z x its posterior sd (e.g. 1), so sure bets come first.")
@RUNS_ROOT_OPTION
@click.option("--out-dir", default="Predictions", show_default=True, type=click.Path(file_okay=False), help="Where the lists are written.")
@click.pass_context
@friendly_errors
def recommend(ctx, experiment, likes, rates, user, users, similar, all_users, top, genres, years, min_ratings, rank_by,
              dislikes, explain, label, exclude, lower_bound, runs_root, out_dir):
    """Recommend movies for a made-up user (--like/--rate), an existing user (--user), a pair or
    group (--users) or nearest to a movie (--similar); print a table and write
    Predictions/<run>/<label>.csv and .parquet. `interactive` starts the interactive loop."""
    if ctx.invoked_subcommand is not None:
        return
    from mfrec.inference import open_run
    from mfrec.inference.api import run_request
    from mfrec.inference.output import format_table, safe_label, write_predictions

    if label is not None:
        safe_label(label)  # a bad label fails before any work
    if not (likes or rates or user or users or similar or all_users):
        raise _usage()
    if all_users and (likes or rates or user or users or similar):
        from mfrec.errors import DataError

        raise DataError("--all-users lists every user: give it without --like/--rate/--user/--users/--similar")
    mode = "all-users" if all_users else "similar" if similar else "users" if users else "user" if user else "like"
    exp, how = open_run(experiment, runs_root, mode=mode)
    click.echo(how)
    rec = exp.recommender
    # neural runs answer fewer requests: refuse an unsupported one before any work (one sentence, exit 2)
    rec.check_supported(mode)
    if explain and not (users or similar or all_users):
        rec.check_supported("explain")
    if lower_bound:
        from mfrec.inference.recommend import check_lower_bound

        rec.lower_bound = check_lower_bound(rec, lower_bound)
    if all_users:
        _all_users(rec, exp, top, genres, years, min_ratings, exclude, label, out_dir)
        return
    rank_by = _auto_ranker(exp, rank_by, mode, explain, dislikes, runs_root, lower_bound)
    if rank_by is not None:
        _ranked_by(rec, exp, rank_by, likes, rates, user, users, similar, explain, dislikes, lower_bound, top, genres,
                   years, min_ratings, exclude, label, runs_root, out_dir)
        return
    result = run_request(rec, like=likes, rate=rates, user=user, users=users, similar=similar, top=top,
                         genre=genres, years=years, explain=explain, exclude=exclude, min_ratings=min_ratings,
                         dislikes=dislikes)
    if explain and (users or similar):
        result.notes.append("--explain applies to a made-up or existing user; this list shows its own 'why'")
    click.echo(format_table(result))
    csv, parquet = write_predictions(result, exp.name, label, out_dir)
    click.echo(f"wrote {csv} and {parquet.name}")


def _auto_ranker(exp, rank_by: str, mode: str, explain: bool, dislikes: str, runs_root, lower_bound: float) -> str | None:
    """What ranks the list (``mfrec.inference.rankers.choose_ranker``), saying so when ``auto`` chose a run."""
    from mfrec.inference.rankers import choose_ranker

    spec, note = choose_ranker(exp, rank_by, mode, explain, dislikes, runs_root, lower_bound)
    if note:
        click.echo(note)
    return spec


def _ranked_by(rec, exp, rank_by, likes, rates, user, users, similar, explain, dislikes, lower_bound, top, genres, years,
               min_ratings, exclude, label, runs_root, out_dir):
    from mfrec.inference.output import format_table, write_predictions
    from mfrec.inference.rankers import check_rankable, open_ranker, ranked_request

    check_rankable("similar" if similar else "users" if users else "user" if user is not None else "like",
                   explain, dislikes, lower_bound)
    ranker, how = open_ranker(rank_by, exp, runs_root)
    click.echo(how)
    result = ranked_request(rec, ranker, rate=list(rates), like=likes, user=user, top=top, genre=genres, years=years,
                            min_ratings=min_ratings, exclude=exclude)
    click.echo(format_table(result))
    csv, parquet = write_predictions(result, exp.name, label, out_dir)
    click.echo(f"wrote {csv} and {parquet.name}")


def _all_users(rec, exp, top, genres, years, min_ratings, exclude, label, out_dir):
    import time

    from mfrec.inference.api import _filters
    from mfrec.inference.output import write_frame

    t0 = time.perf_counter()
    table = rec.recommend_all_users(top, _filters(genres, years, min_ratings), exclude=exclude)
    seconds = time.perf_counter() - t0
    what = "any split" if exclude == "all" else "training"
    click.echo(f"top {top} for each of {rec.model.n_users:,} users in {seconds:.1f} s "
               f"({rec.model.n_users / max(seconds, 1e-9):,.0f} users/s); movies they rated ({what}) excluded")
    preview = table.head(min(2 * top, table.height))
    # a list that predicts no rating (ials, ease) shows the column it is ranked by instead
    if "predicted_rating" in table.columns:
        shown, head = "predicted_rating", "rating"
    else:
        shown = "score" if "score" in table.columns else table.columns[-1]
        head = "score"
    click.echo(f"{'user':>7}  {'#':>3}  {'title':<44}  {head:>6}")
    for row in preview.iter_rows(named=True):
        title = row["title"] if len(row["title"]) <= 44 else row["title"][:43] + "…"
        click.echo(f"{row['userId']:>7}  {row['rank']:>3}  {title:<44}  {row[shown]:>6.2f}")
    if table.height > preview.height:
        click.echo(f"... {table.height - preview.height:,} more rows in the files")
    csv, parquet = write_frame(table, exp.name, label, out_dir, default="all-users")
    click.echo(f"wrote {csv} and {parquet.name}")


def _usage():
    from mfrec.errors import DataError

    return DataError(
        "nothing to recommend for: give --like/--rate (a made-up user), --user ID, --users ID,ID or "
        "--similar TITLE, or run `Inference.py interactive`"
    )


@recommend.command(cls=Command, renamed=_RENAMED)
@_EXPERIMENT
@RUNS_ROOT_OPTION
@top_option(DEFAULTS.top, "List length for recommend/similar/popular.", most=10_000)
@_MIN_RATINGS
@friendly_errors
def interactive(experiment, runs_root, top, min_ratings):
    """An interactive loop: search, add/remove ratings, recommend, similar, popular (type help)."""
    from mfrec.inference import open_run
    from mfrec.inference.interactive import run_loop

    exp, how = open_run(experiment, runs_root, mode="interactive")
    click.echo(how)
    rec = exp.recommender
    rec.check_supported("interactive")
    import sys

    run_loop(rec, sys.stdin, click.echo, top=top, min_ratings=min_ratings)
