"""Dataset analysis: the numbers (against plain NumPy/Polars recomputations), the figures, the CLI."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from test_plot_helpers import assert_png

from mfrec.analysis import dataset as A


def _frame(ds) -> pl.DataFrame:
    r = ds.ratings
    return pl.DataFrame({"user": np.asarray(r.user), "movie": np.asarray(r.movie),
                         "rating": np.asarray(r.rating, np.float64), "timestamp": np.asarray(r.timestamp)})


def test_counts_and_quantiles(small_dataset):
    ds = small_dataset
    per_user, per_movie = A.ratings_per_user(ds), A.ratings_per_movie(ds)
    f = _frame(ds)
    ref_u = f.group_by("user").len().sort("user")
    assert per_user.sum() == len(ds.ratings) == per_movie.sum()
    np.testing.assert_array_equal(per_user[ref_u["user"].to_numpy()], ref_u["len"].to_numpy())
    q = A.quantiles(per_user)
    assert q["min"] == per_user.min() and q["max"] == per_user.max() and q["median"] == np.median(per_user)
    assert q["min"] <= q["p5"] <= q["p25"] <= q["median"] <= q["p75"] <= q["p95"] <= q["max"]
    tail = A.long_tail(per_movie)
    assert np.all(np.diff(tail) <= 0) and tail.sum() == per_movie.sum()
    assert A.top_share(np.array([90, 5, 2, 1, 1, 1, 0, 0, 0, 0])) == pytest.approx(0.9)  # top 20% of 6 rated -> 1


def test_rating_distribution_and_stats(small_dataset):
    ds = small_dataset
    values, counts = A.rating_distribution(ds)
    r = np.asarray(ds.ratings.rating)
    assert counts.sum() == len(r)
    for v, c in zip(values, counts):
        assert c == int((r == v).sum())
    s = A.dataset_stats(ds)
    assert s["users"] == ds.n_users and s["movies"] == ds.n_movies and s["ratings"] == len(r)
    assert s["density"] == pytest.approx(len(r) / (ds.n_users * ds.n_movies))
    assert s["mean_rating"] == pytest.approx(float(r.mean()), rel=1e-6)
    assert sum(s["splits"].values()) == len(r)
    assert s["span_days"] == pytest.approx((ds.ratings.timestamp.max() - ds.ratings.timestamp.min()) / 86400)
    assert s["train_sequence_length"]["max"] == np.diff(ds.train_by_user.indptr).max()


def test_genre_stats_match_a_plain_recount(small_dataset):
    ds = small_dataset
    g = A.genre_stats(ds)
    f = _frame(ds)
    movie_genres = ds.movies.select("movie", "genres").explode("genres").drop_nulls()
    ref = (f.join(movie_genres, on="movie").group_by("genres")
           .agg(pl.len().alias("n"), pl.col("rating").mean().alias("m")))
    joined = g.join(ref, left_on="genre", right_on="genres")
    assert joined.height == ref.height > 5
    np.testing.assert_array_equal(joined["ratings"].to_numpy(), joined["n"].to_numpy())
    np.testing.assert_allclose(joined["mean_rating"].to_numpy(), joined["m"].to_numpy(), rtol=1e-9)
    assert (g["sem"].drop_nulls() > 0).all()
    assert g["ratings"].to_list() == sorted(g["ratings"].to_list(), reverse=True)


def test_main_genre_is_the_rarest_of_the_movie_genres(small_dataset):
    ds = small_dataset
    main = A.main_genre(ds)
    freq = np.bincount(np.asarray(ds.movie_genres.indices), minlength=len(ds.genres))
    for m in range(0, ds.n_movies, 7):
        gs = ds.movie_genres.indices[ds.movie_genres.indptr[m]:ds.movie_genres.indptr[m + 1]]
        if len(gs):
            assert main[m] in gs and freq[main[m]] == freq[gs].min()
        else:
            assert main[m] == -1


def test_ratings_over_time_cover_every_rating(small_dataset):
    ds = small_dataset
    for period in (None, "M", "W", "D"):
        t = A.ratings_over_time(ds, period)
        assert t["ratings"].sum() == len(ds.ratings)
        assert t["start"].is_sorted()
    monthly = A.ratings_over_time(ds, "M")
    r, ts = np.asarray(ds.ratings.rating, np.float64), np.asarray(ds.ratings.timestamp)
    month = ts.astype("datetime64[s]").astype("datetime64[M]")
    first = month.min()
    sel = month == first
    assert monthly["ratings"][0] == sel.sum()
    assert monthly["mean_rating"][0] == pytest.approx(r[sel].mean())


def _timed(first: str, last: str, n: int = 6000, seed: int = 0):
    """A dataset-like object with ``n`` ratings spread evenly between two times (ISO strings)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    lo, hi = (np.datetime64(t).astype("datetime64[s]").astype(np.int64) for t in (first, last))
    ts = np.sort(np.concatenate([[lo, hi], rng.integers(lo, hi, n - 2)]))
    rating = rng.integers(1, 6, n).astype(np.float32)
    return SimpleNamespace(name="timed", ratings=SimpleNamespace(timestamp=ts, rating=rating))


def test_ratings_over_time_marks_the_periods_the_data_cover_only_in_part():
    # Saturday 1997-09-20 to Monday 1998-04-20: numpy weeks run Thursday to Wednesday, so both ends are partial
    t = A.ratings_over_time(_timed("1997-09-20T10:00", "1998-04-20T13:00"), "W")
    assert t["complete"].to_list() == [False] + [True] * (t.height - 2) + [False]
    assert t["ratings"].sum() == 6000  # marked, not dropped
    # data from a period's first day to its last day (any hour): every period is whole
    t = A.ratings_over_time(_timed("1997-09-18T20:00", "1998-04-22T01:00"), "W")
    assert t["complete"].all()
    t = A.ratings_over_time(_timed("2000-01-01T00:00", "2002-10-17T18:00"))  # monthly: October 2002 is cut short
    assert t["start"][-1] == __import__("datetime").date(2002, 10, 1) and t["complete"].to_list()[-2:] == [True, False]
    assert A.ratings_over_time(_timed("2000-01-01T00:00", "2000-01-01T00:00", n=2), "D")["complete"].to_list() == [True]


def test_ratings_over_time_figure_draws_partial_periods_apart_and_keeps_legends_off_the_bars(tmp_path, monkeypatch):
    import mfrec.plots.dataset as P

    seen = {}
    real = P.save

    def keep(fig, path):
        fig.canvas.draw()
        ax, ax2 = fig.axes
        seen["bars"] = [(c.get_label(), len(c)) for c in ax.containers]
        seen["line"] = [(line.get_label(), len(line.get_xdata()), line.get_linestyle()) for line in ax2.get_lines()]
        boxes = [a.get_legend().get_window_extent() for a in (ax, ax2)]
        frames = [a.get_window_extent() for a in (ax, ax2)]
        seen["clear"] = all(not b.overlaps(f) or b.y0 >= f.y1 - 1 for b in boxes for f in frames)
        return real(fig, path)

    monkeypatch.setattr(P, "save", keep)
    ds = _timed("1997-09-20T10:00", "1998-04-20T13:00")
    weeks = A.ratings_over_time(ds).height
    assert_png(P.ratings_over_time_figure(ds, tmp_path / "t.png"))
    assert seen["bars"] == [("ratings per week", weeks - 2), ("partial week (the data start or end inside it)", 2)]
    assert seen["line"] == [("mean rating per week", weeks - 2, "-"), ("partial week", 2, "None")]
    assert seen["clear"]  # each legend sits above its panel, not on the bars or the line


def test_age_groups_for_codes_and_raw_ages():
    codes = np.array([1, 18, 25, 35, 45, 50, 56])
    np.testing.assert_array_equal(A.age_groups(codes), np.arange(7))
    raw = np.array([7, 17, 18, 24, 33, 44, 49, 55, 56, 73, np.nan, 0])
    np.testing.assert_array_equal(A.age_groups(raw), [0, 0, 1, 1, 2, 3, 4, 5, 6, 6, -1, -1])


def test_demographic_stats_match_a_group_by(small_dataset):
    ds = small_dataset
    d = A.demographic_stats(ds)
    assert d is not None and set(d.columns) >= {"age_group", "gender", "users", "ratings", "mean_rating"}
    f = _frame(ds).join(ds.users.select("user", "gender", "age"), on="user")
    f = f.with_columns(pl.Series("age_group", [A.AGE_LABELS[i] for i in A.age_groups(f["age"].to_numpy())]))
    ref = f.group_by("age_group", "gender").agg(pl.len().alias("n"), pl.col("rating").mean().alias("m"),
                                                 pl.col("user").n_unique().alias("u"))
    j = d.join(ref, on=["age_group", "gender"])
    assert j.height == ref.height == d.height
    np.testing.assert_array_equal(j["ratings"].to_numpy(), j["n"].to_numpy())
    np.testing.assert_array_equal(j["users"].to_numpy(), j["u"].to_numpy())
    np.testing.assert_allclose(j["mean_rating"].to_numpy(), j["m"].to_numpy(), rtol=1e-9)


def test_no_demographics_means_no_demographic_figure(small_raw, tmp_path):
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.plots.dataset import demographics_figure

    raw = small_raw
    raw_no_users = type(raw)(**{**raw.__dict__, "users": None})
    out, _ = prepare(raw_no_users, SplitSpec("random", 0.2, seed=1), name="nousers", root=tmp_path / "td")
    ds = load(out)
    assert A.demographic_stats(ds) is None
    assert demographics_figure(ds, tmp_path / "demographics.png") is None
    assert not (tmp_path / "demographics.png").exists()


def test_analyze_cli_prints_the_table_and_writes_every_figure(small_dataset, tmp_path):
    from mfrec.cli.analyze import analyze

    out = tmp_path / "figs"
    res = CliRunner().invoke(analyze, ["--data", str(small_dataset.path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for label in ("users", "movies", "ratings", "density", "mean rating", "ratings per user", "ratings per movie",
                  "genres", "time span", "train sequence length"):
        assert f"  {label} " in res.output
    assert f"{small_dataset.n_users:,}" in res.output
    expected = ["rating_distribution", "long_tail", "genre_ratings", "genre_mean_rating", "ratings_over_time",
                "demographics"]
    for name in expected:
        assert_png(out / f"{name}.png")
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.png" for n in expected)  # no temporary files


def test_analyze_cli_unknown_dataset_is_one_sentence(tmp_path):
    from mfrec.cli.analyze import analyze

    res = CliRunner().invoke(analyze, ["--data", "no-such-data", "--data-root", str(tmp_path)])
    assert res.exit_code == 2
    assert "no prepared dataset 'no-such-data'" in res.output and "Traceback" not in res.output


def test_data_processing_analyze_flag_writes_figures_under_figures_name(tmp_path, monkeypatch):
    from mfrec.cli.prepare import prepare

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(prepare, ["--users", "120", "--movies", "90", "--ratings", "3000", "--name", "tiny",
                                       "--quiet", "--analyze"])
    assert res.exit_code == 0, res.output
    assert "ratings per movie" in res.output
    assert_png(tmp_path / "figures" / "tiny" / "long_tail.png")
    assert_png(tmp_path / "figures" / "tiny" / "demographics.png")
