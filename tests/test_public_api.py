"""The public API a newcomer finds: every saved thing has a documented loader, ``dir(mfrec)`` shows it,
result columns are named for what they hold, Predictions files are readable and never silently replaced,
and synthetic ratings say so in their dataset's name and manifest."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_inference import make_run

README = Path(__file__).resolve().parents[1] / "README.md"


# -- loaders: every saved thing comes back through a documented public function ---------------------
def test_model_save_round_trips_through_mfrec_load_model(small_dataset, tmp_path):
    import mfrec

    model = mfrec.train(small_dataset, {"model": "mf-genre", "factors": 4, "epochs": 2, "seed": 1})
    model.save(tmp_path / "by-hand.npz")
    loaded = mfrec.load_model(tmp_path / "by-hand.npz")
    assert isinstance(loaded, mfrec.models.FactorModel)
    t = small_dataset.test
    np.testing.assert_array_equal(loaded.predict(t.user, t.movie), model.predict(t.user, t.movie))
    np.testing.assert_array_equal(loaded.effective_movie_factors, model.effective_movie_factors)
    assert mfrec.load_model is mfrec.models.load_model


def test_run_folder_round_trips_through_load_experiment_and_load_model(small_dataset, tmp_path):
    import mfrec

    run = make_run(tmp_path / "Experiments_", small_dataset, "mf", factors=4, epochs=2)
    exp = mfrec.load_experiment(run)
    from_folder = mfrec.load_model(run)  # a run folder means its model.npz
    np.testing.assert_array_equal(exp.model.user_factors, from_folder.user_factors)
    assert exp.recommend(like=[str(exp.recommender.movie_id_array[0])], top=3).height == 3


def test_prepared_folder_round_trips_through_data_load(small_raw, tmp_path):
    import mfrec
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    out, summary = prepare(small_raw, SplitSpec("random", 0.2, 0.0, seed=5), name="rt", root=tmp_path)
    ds = mfrec.data.load(out)
    assert mfrec.load_dataset is mfrec.data.load
    assert (ds.n_users, ds.n_movies, len(ds.ratings)) == (summary["users"], summary["movies"], summary["ratings"])
    assert len(ds.train) + len(ds.test) == summary["ratings"]


# neural weights: mfrec.neural.load_model round trips in tests/test_neural.py (sequential, attention), and a
# neural factors.npz through mfrec.load_model in test_rating_models_learn_save_and_reload.


# -- discoverable: __all__, __dir__, docstrings with examples, and a light import -------------------
def test_dir_and_all_list_the_public_functions():
    import mfrec

    for name in ("train", "load_experiment", "load_model", "load_dataset", "data", "models", "neural"):
        assert name in dir(mfrec) and name in mfrec.__all__
    for name in mfrec.__all__:
        assert getattr(mfrec, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mfrec.nope  # noqa: B018


@pytest.mark.parametrize("name", ["train", "load_model"])
def test_public_functions_show_an_example(name):
    import mfrec

    doc = getattr(mfrec, name).__doc__ or ""
    assert ">>> " in doc and f"mfrec.{name}(" in doc
    assert f"mfrec.{name}(" in (mfrec.__doc__ or "")  # help(mfrec) shows every loader in use


def test_import_mfrec_and_its_dir_stay_light():
    code = ("import sys, mfrec\n"
            "names = dir(mfrec); all_ = mfrec.__all__\n"
            "heavy = [m for m in ('numba', 'polars', 'torch') if m in sys.modules]\n"
            "print(heavy, 'train' in names and 'load_model' in names)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"


# -- columns named for what they hold ---------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory, small_dataset):
    base = tmp_path_factory.mktemp("api")
    run = make_run(base / "Experiments_", small_dataset, "mf-genre", name="api")
    return {"base": base, "run": run, "ds": small_dataset}


def _invoke(world, monkeypatch, *args):
    from mfrec.cli.recommend import recommend

    monkeypatch.chdir(world["base"])
    res = CliRunner().invoke(recommend, ["-e", world["run"].name, *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def _head(output: str) -> list[str]:
    return next(line for line in output.splitlines() if line.lstrip().startswith("#  title")).split()


def test_similar_popular_and_user_lists_name_their_ranking_column(world, monkeypatch):
    import polars as pl

    from mfrec import load_experiment

    mid = str(int(world["ds"].movies.sort("movie")["movieId"][0]))
    res = _invoke(world, monkeypatch, "--similar", mid, "--label", "sim")
    assert _head(res.output) == ["#", "title", "year", "genres", "cosine", "why"]
    out = world["base"] / "Predictions" / world["run"].name
    for table in (pl.read_csv(out / "sim.csv"), pl.read_parquet(out / "sim.parquet")):
        assert table.columns == ["rank", "movieId", "title", "year", "genres", "cosine", "why"]
    res = _invoke(world, monkeypatch, "--like", mid, "--label", "me")
    assert _head(res.output) == ["#", "title", "year", "genres", "rating", "score", "why"]
    rec = load_experiment(world["run"]).recommender
    popular = rec.popular(n=4)
    assert popular.ranked_by == "training_ratings" and popular.table["training_ratings"].dtype == pl.Int64
    counts = np.diff(np.asarray(world["ds"].train_by_movie.indptr))
    assert popular.table["training_ratings"].to_list() == sorted(counts, reverse=True)[:4]


def test_readme_explains_every_result_column():
    from mfrec.inference.recommend import COLUMNS, RANKED_BY

    text = README.read_text()
    section = text[text.index("## Recommendations"):]
    section = section[:section.index("\n## ", 1)]
    for column in (*COLUMNS, *RANKED_BY, "userId"):
        assert re.search(rf"`{re.escape(column)}`", section), f"README's Recommendations section never explains {column}"


# -- Predictions files: readable precision, no silent replacement -------------------------------------
def test_all_users_csv_is_rounded_and_parquet_keeps_full_precision(world, monkeypatch):
    import polars as pl

    _invoke(world, monkeypatch, "--all-users", "--top", "2", "--label", "batch")
    out = world["base"] / "Predictions" / world["run"].name
    lines = (out / "batch.csv").read_text().splitlines()
    decimals = [len(cell.split(".")[1]) for line in lines[1:] for cell in line.split(",") if re.fullmatch(r"-?\d+\.\d+", cell)]
    assert decimals and max(decimals) <= 4
    csv, pq = pl.read_csv(out / "batch.csv"), pl.read_parquet(out / "batch.parquet")
    assert csv.columns == pq.columns
    np.testing.assert_allclose(csv["score"].to_numpy(), pq["score"].to_numpy(), atol=5e-5)
    assert (pq["score"].to_numpy() != csv["score"].to_numpy()).any()  # the Parquet file is not rounded


def test_default_labels_never_replace_an_earlier_list_a_given_label_does(world, monkeypatch):
    titles = world["ds"].movies.sort("movie")["movieId"].to_list()
    out = world["base"] / "Predictions" / world["run"].name
    first = _invoke(world, monkeypatch, "--like", str(titles[3]))
    second = _invoke(world, monkeypatch, "--like", str(titles[4]))
    written = sorted(p.name for p in out.glob("made-up-user*.csv"))
    assert written == ["made-up-user-2.csv", "made-up-user.csv"]
    assert "made-up-user.csv" in first.output and "made-up-user-2.csv" in second.output
    import polars as pl

    assert pl.read_csv(out / "made-up-user.csv")["movieId"].to_list() != pl.read_csv(out / "made-up-user-2.csv")["movieId"].to_list()
    _invoke(world, monkeypatch, "--like", str(titles[5]), "--label", "mine")
    _invoke(world, monkeypatch, "--like", str(titles[6]), "--label", "mine")
    assert sorted(p.name for p in out.glob("mine*")) == ["mine.csv", "mine.parquet"]
    _invoke(world, monkeypatch, "--all-users", "--top", "1")
    _invoke(world, monkeypatch, "--all-users", "--top", "1")
    assert {"all-users.csv", "all-users-2.csv"} <= {p.name for p in out.glob("all-users*.csv")}


# -- synthetic ratings say so ------------------------------------------------------------------------
def test_raw_files_written_from_synthetic_data_are_prepared_under_a_synthetic_name(tmp_path):
    from test_data_files import write_ml1m

    from mfrec.cli.prepare import SYNTHETIC_MARKER, prepare
    from mfrec.data import load

    meta = write_ml1m(tmp_path / "meta")
    (meta / "ratings.dat").unlink()
    raw = tmp_path / "ml-1m-ids"

    def run(*args):
        res = CliRunner().invoke(prepare, ["--data-root", str(tmp_path / "TD"), "--quiet", "--split", "none", *args])
        assert res.exit_code == 0, res.output
        return res

    run("--ids-from", str(meta), "--ratings", "3", "--write-raw", str(raw), "--raw-format", "ml-1m")
    assert (raw / SYNTHETIC_MARKER).is_file()
    one_step = load(tmp_path / "TD" / "synthetic-none")
    assert "synthetic" in one_step.manifest.source and str(meta) in one_step.manifest.source
    res = run("--dataset", "ml-1m", "--source", str(raw))
    folders = sorted(p.name for p in (tmp_path / "TD").iterdir() if not p.name.startswith("."))
    assert folders == ["synthetic-ml-1m-none", "synthetic-none"]  # never ml-1m-none: it is not ML-1M
    ds = load(tmp_path / "TD" / "synthetic-ml-1m-none")
    assert ds.manifest.source.startswith("synthetic ratings in ml-1m files") and "synthetic" in res.output
    manifest = json.loads((ds.path / "manifest.json").read_text())
    assert manifest["source"] == ds.manifest.source
    # a real folder (no marker) keeps the dataset's own name
    real = write_ml1m(tmp_path / "real")
    run("--dataset", "ml-1m", "--source", str(real))
    assert (tmp_path / "TD" / "ml-1m-none").is_dir()


def test_made_up_user_notes_say_what_each_title_matched(tmp_path, small_dataset):
    from test_inference import make_run

    from mfrec import load_experiment
    from mfrec.inference.api import run_request

    from test_inference import partial_title

    rec = load_experiment(make_run(tmp_path, small_dataset, "mf", epochs=2)).recommender
    m, partial = partial_title(rec)
    other = 5 if m != 5 else 6
    result = run_request(rec, like=[partial], rate={int(rec.movie_id_array[other]): 4.0}, top=3)
    notes = [n for n in result.notes if n.startswith("title: ")]
    assert notes[1] == f"title: '{int(rec.movie_id_array[other])}' -> {rec.titles.describe(other)}"
    assert len(notes) == 2 and notes[0].startswith(f"title: {partial!r} -> {rec.titles.describe(m)} (partial title")


def test_the_notebook_api_keeps_the_notes_and_warns_about_a_partial_title(tmp_path, small_dataset):
    from test_inference import make_run

    from mfrec import load_experiment

    exp = load_experiment(make_run(tmp_path, small_dataset, "mf", epochs=2))
    rec = exp.recommender
    from test_inference import partial_title

    _, partial = partial_title(rec)
    with pytest.warns(UserWarning, match="partial title"):
        exp.recommend(like=[partial], top=3)
    assert exp.last_notes[0].startswith(f"title: {partial!r} -> {rec.titles.describe(rec.movie(partial))}")
    exp.recommend(like=[str(int(rec.movie_id_array[3]))], top=3)  # an id: noted, no warning
    assert exp.last_notes[0] == f"title: '{int(rec.movie_id_array[3])}' -> {rec.titles.describe(3)}"
