"""Inference.py (`mfrec recommend`): tables, Predictions files, bad input, latest run, interactive loop."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from test_inference import make_run

COLUMNS = ["rank", "movieId", "title", "year", "genres", "predicted_rating", "score", "why"]


@pytest.fixture(scope="module")
def world(tmp_path_factory, small_dataset):
    """A working folder with Experiments_/ holding an ok mf-genre run, and the dataset's titles."""
    base = tmp_path_factory.mktemp("work")
    run = make_run(base / "Experiments_", small_dataset, "mf-genre", name="cli")
    movies = small_dataset.movies.sort("movie")
    return {"base": base, "run": run, "movies": movies, "ds": small_dataset}


def invoke(world, args, monkeypatch, input=None):
    from mfrec.cli.recommend import recommend

    monkeypatch.chdir(world["base"])
    return CliRunner().invoke(recommend, args, input=input, catch_exceptions=False)


def _listing(world):
    out = world["base"] / "Predictions"
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


def _title(world, i):
    return world["movies"]["title"][i]


def test_like_writes_csv_and_parquet_with_the_same_columns(world, monkeypatch):
    import polars as pl

    t0, t1 = _title(world, 0), _title(world, 1)
    res = invoke(world, ["-e", world["run"].name, "--like", t0.upper(), "--rate", f"{t1}=2", "--top", "7", "--label", "mine"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "made-up user with 2 ratings" in res.output and "rank" not in res.output.split("\n")[0]
    out = world["base"] / "Predictions" / world["run"].name
    csv = pl.read_csv(out / "mine.csv")
    pq = pl.read_parquet(out / "mine.parquet")
    assert list(csv.columns) == COLUMNS and list(pq.columns) == COLUMNS
    assert csv.height == pq.height == 7
    assert csv["movieId"].to_list() == pq["movieId"].to_list()
    liked = set(world["movies"]["movieId"][[0, 1]].to_list())
    assert not liked & set(csv["movieId"].to_list())
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind
    for title in csv["title"].to_list()[:3]:
        assert title[:30] in res.output


def test_default_run_is_the_latest_successful_one(world, monkeypatch, small_dataset):
    # a later failed run must not be picked
    failed = make_run(world["base"] / "Experiments_", small_dataset, "bias", name="zz-failed", status="failed")
    summary = json.loads((failed / "summary.json").read_text())
    assert summary["status"] == "failed"
    res = invoke(world, ["--like", _title(world, 3)], monkeypatch)
    assert res.exit_code == 0, res.output
    assert f"most recent successful run: {world['run'].name}" in res.output
    res = invoke(world, ["-e", failed.name, "--like", _title(world, 3)], monkeypatch)
    assert res.exit_code == 2 and "failed" in res.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--like", "zzzz qqqq xxxx"], "no movie matches"),
        (["--user", "99999"], "user 99999 is not in dataset"),
        (["--users", "1,99999"], "user 99999 is not in dataset"),
        (["--similar", "no such film at all"], "no movie matches"),
        (["--rate", "1=9"], "outside the rating scale"),
        (["--genre", "Cowboy", "--like", "1"], "unknown genre"),
        (["--years", "20xx", "--like", "1"], "--years"),
        ([], "nothing to recommend for"),
        (["--like", "1", "--user", "1"], "only one of"),
        (["-e", "no-such-run", "--like", "1"], "no experiment"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(world, monkeypatch, args, message):
    before = _listing(world)
    res = invoke(world, ["-e", world["run"].name, *args] if "-e" not in args else args, monkeypatch)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert _listing(world) == before


def test_ambiguous_title_lists_the_candidates(world, monkeypatch):
    # find a title word shared by several movies of the synthetic catalogue
    titles = world["movies"]["title"].to_list()
    from mfrec.inference.titles import key

    words = {}
    for i, t in enumerate(titles):
        for w in set(key(t.rsplit(" (", 1)[0]).split()):
            words.setdefault(w, []).append(i)
    from mfrec.inference.titles import TitleIndex

    index = TitleIndex.from_movies(world["movies"])
    word = next(w for w, ms in sorted(words.items()) if len(ms) >= 3 and len(w) > 4 and index._by_key.get(w) is None)
    before = _listing(world)
    res = invoke(world, ["-e", world["run"].name, "--like", word, "--label", "ambiguous"], monkeypatch)
    assert res.exit_code == 2, res.output
    assert f"{word!r} matches {len(words[word])} movies" in res.output and "add the year or use the id" in res.output
    assert _listing(world) == before


def test_existing_user_pair_and_similar(world, monkeypatch):
    ds = world["ds"]
    uid = int(ds.user_ids.ids[5])
    res = invoke(world, ["-e", world["run"].name, "--user", str(uid), "--explain", "--top", "3"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert f"user {uid}" in res.output and "excluded the" in res.output and "baseline mu + movie bias" in res.output
    assert (world["base"] / "Predictions" / world["run"].name / f"user-{uid}.csv").is_file()
    pair = f"{int(ds.user_ids.ids[5])},{int(ds.user_ids.ids[6])}"
    res = invoke(world, ["-e", world["run"].name, "--users", pair, "--genre", "drama"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "rule: least misery" in res.output
    res = invoke(world, ["-e", world["run"].name, "--similar", str(int(world["movies"]["movieId"][0]))], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "cosine" in res.output


def test_all_users_writes_one_long_table(world, monkeypatch):
    import polars as pl

    res = invoke(world, ["-e", world["run"].name, "--all-users", "--top", "3"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "users/s" in res.output
    table = pl.read_parquet(world["base"] / "Predictions" / world["run"].name / "all-users.parquet")
    assert table.columns == ["userId", "rank", "movieId", "title", "predicted_rating", "score"]
    assert table.height == world["ds"].n_users * 3
    res = invoke(world, ["-e", world["run"].name, "--all-users", "--user", "1"], monkeypatch)
    assert res.exit_code == 2 and "--all-users" in res.output


def test_interactive_loop(world, monkeypatch):
    t0, t1 = _title(world, 0), _title(world, 1)
    mid1 = int(world["movies"]["movieId"][1])
    script = "\n".join([
        "help",
        f"search {t0.split(' (')[0]}",
        f"add {t0}",
        f"add {mid1} 2",
        "add no such movie anywhere",
        f"add {mid1} 11",
        "show",
        "recommend 4",
        "recommend many",
        f"similar {t0}",
        "popular",
        "remove 1",
        "show",
        "frobnicate",
        "recomend",
        "add",
        "remove 99999",
        "clear",
        "recommend",
        "exit",
        "show",  # never reached
    ]) + "\n"
    res = invoke(world, ["interactive", "-e", world["run"].name, "--top", "4"], monkeypatch, input=script)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Traceback" not in out
    assert "search <query>" in out  # help
    assert f"added {t0} = 5" in out and f"added {t1} = 2" in out
    assert "no movie matches" in out and "outside the rating scale" in out
    assert "made-up user with 2 ratings" in out
    assert "usage: recommend [N]" in out
    assert "cosine" in out and "training ratings" in out
    assert f"removed {t0}" in out
    assert "unknown command 'frobnicate'" in out and "did you mean `recommend`" in out
    assert "usage: add" in out
    assert "no ratings yet" in out
    assert out.count("mfrec> ") == 20  # the loop stopped at exit


def test_interactive_ends_cleanly_at_end_of_input(world, monkeypatch):
    res = invoke(world, ["interactive", "-e", world["run"].name], monkeypatch, input="show\n")
    assert res.exit_code == 0 and "no ratings yet" in res.output


def test_inference_script_help_is_fast_to_import():
    import subprocess
    import sys

    code = "import sys; from mfrec.cli.recommend import recommend; print('numba' in sys.modules, 'polars' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_rare_movies_are_left_out_by_default_and_kept_with_min_ratings_0(tmp_path):
    """The default --min-ratings 10 drops movies with fewer training ratings; 0 keeps every movie."""
    import numpy as np
    import polars as pl
    from click.testing import CliRunner

    from mfrec.cli.recommend import recommend
    from mfrec.cli.train import train
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate

    raw = generate(SyntheticSpec(n_users=150, n_movies=120, n_ratings=3000, seed=5))
    ds = load(prepare(raw, SplitSpec("random", 0.1, seed=1), name="rare", root=tmp_path / "td")[0])
    counts = np.diff(np.asarray(ds.train_by_movie.indptr))
    assert (counts < 10).sum() > 5  # the data has rare movies to filter
    runner = CliRunner()
    res = runner.invoke(train, ["--data", str(ds.path), "--model", "mf", "--factors", "4", "--epochs", "2",
                                "--runs-root", str(tmp_path / "exp"), "--name", "r", "--quiet"])
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "exp").iterdir())
    base = ["-e", str(run), "--runs-root", str(tmp_path / "exp"), "--user", str(int(ds.user_ids.ids[0])), "--top", "40",
            "--out-dir", str(tmp_path / "pred")]

    def listed(extra, label):
        r = runner.invoke(recommend, [*base, *extra, "--label", label])
        assert r.exit_code == 0, r.output
        table = pl.read_csv(tmp_path / "pred" / run.name / f"{label}.csv")
        return counts[ds.movie_ids.index_of(table["movieId"].to_numpy())]

    assert listed([], "default").min() >= 10
    assert listed(["--min-ratings", "0"], "all").min() < 10


def test_interactive_add_takes_a_quoted_title_with_a_rating(world, monkeypatch):
    t2 = _title(world, 2)
    script = f'add "{t2.lower()}" 2\nshow\nexit\n'
    res = invoke(world, ["interactive", "-e", world["run"].name], monkeypatch, input=script)
    assert res.exit_code == 0, res.output
    assert f"added {t2} = 2" in res.output


def test_table_rule_is_as_wide_as_the_table(world, monkeypatch):
    res = invoke(world, ["-e", world["run"].name, "--like", _title(world, 0), "--top", "5", "--min-ratings", "0"],
                 monkeypatch)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    at = next(i for i, line in enumerate(lines) if line and set(line) == {"-"})
    rows = [line for line in lines[at + 1:] if line[:3].strip().isdigit()]
    assert len(rows) == 5
    assert len(lines[at]) == max(len(lines[at - 1]), *map(len, rows))
