"""Inference.py on neural runs: neumf (factors.npz), sequential (histories), attention (pairs), refusals.

Each model is trained for a few steps on tiny synthetic data (needs the torch extra).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch", reason='the neural baselines need the torch extra: pip install -e ".[torch]"')

OPTIONS = {
    "neumf": {"epochs": 3, "factors": 6, "lr": 0.02, "batch_size": 128},
    "genre-embedding": {"epochs": 3, "factors": 6, "lr": 0.02, "batch_size": 128, "genre_epochs": 2},
    "sequential": {"epochs": 2, "factors": 16, "lr": 0.02, "batch_size": 256, "min_length": 3},
    "attention": {"epochs": 2, "factors": 8, "heads": 2, "hidden": 16, "lr": 0.01, "batch_size": 128},
}


def tiny_dataset(root):
    """60 users x 50 movies, 1,400 ratings, user-last split (3 test + 3 val per user)."""
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.data.synthetic import SyntheticSpec, generate

    raw = generate(SyntheticSpec(n_users=60, n_movies=50, n_ratings=1400, seed=11))
    out, _ = prepare(raw, SplitSpec("user-last", holdout=3, val_fraction=0.1, seed=1), name="tiny", root=root)
    return load(out)


def train_runs(dataset, root, models, finished=True):
    """Train each model into ``root/<model>-...``; returns {model: run folder}. With ``finished``, the
    summaries' finish times are set one second apart in the order given (the latest-run tests need it)."""
    from mfrec.training import train_run

    torch.set_num_threads(1)
    out = {}
    for i, model in enumerate(models):
        run, _ = train_run(dataset, model, {**OPTIONS[model], "seed": 1}, runs_root=root, name=model)
        if finished:
            f = run.path / "summary.json"
            s = json.loads(f.read_text())
            s["finished"] = f"2026-01-01T00:00:{10 + i:02d}+0000"
            f.write_text(json.dumps(s))
        out[model] = run.path
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("neural-work")
    ds = tiny_dataset(base / "Training_data")
    runs = train_runs(ds, base / "Experiments_", ["neumf", "sequential", "attention"])
    return {"base": base, "ds": ds, "runs": runs, "movies": ds.movies.sort("movie")}


def invoke(world, args, monkeypatch):
    from mfrec.cli.recommend import recommend

    monkeypatch.chdir(world["base"])
    # the expectations below rank every movie; on this tiny data many have < 10 ratings (the default filter)
    return CliRunner().invoke(recommend, [*args, "--min-ratings", "0"], catch_exceptions=False)


def _predictions(world, model):
    import polars as pl

    out = world["base"] / "Predictions" / world["runs"][model].name
    return {p.stem: pl.read_csv(p) for p in out.glob("*.csv")} if out.exists() else {}


def _rated(ds, u, splits=("train", "val", "test")):
    movies = set()
    for name in splits:
        s = ds.split(name)
        movies |= set(np.asarray(s.movie)[np.asarray(s.user) == u].tolist())
    return movies


def test_neumf_existing_user_and_similar_read_factors_npz(world, monkeypatch):
    ds, run = world["ds"], world["runs"]["neumf"]
    uid = int(ds.user_ids.ids[4])
    res = invoke(world, ["-e", run.name, "--user", str(uid), "--top", "5"], monkeypatch)
    assert res.exit_code == 0, res.output
    table = _predictions(world, "neumf")[f"user-{uid}"]
    assert table.height == 5
    with np.load(run / "factors.npz", allow_pickle=False) as z:
        pred = z["mu"] + z["user_bias"][4] + z["movie_bias"] + z["movie_factors"] @ z["user_factors"][4]
        q = z["movie_factors"].astype(np.float64)
    movies = [int(ds.movie_ids.index_of(m)) for m in table["movieId"].to_list()]
    assert not set(movies) & _rated(ds, 4)  # every split's movies excluded
    allowed = np.array([m for m in range(ds.n_movies) if m not in _rated(ds, 4)])
    expect = allowed[np.argsort(-pred[allowed], kind="stable")][:5]
    assert movies == expect.tolist()
    np.testing.assert_allclose(table["score"].to_numpy(), pred[movies], atol=1e-3)
    # the neural model itself gives the same ratings as its exported factors
    from mfrec.neural import load_model

    np.testing.assert_allclose(table["predicted_rating"].to_numpy(), load_model(run).predict([4] * 5, movies), atol=1e-3)

    title = world["movies"]["title"][7]
    res = invoke(world, ["-e", run.name, "--similar", title, "--top", "4"], monkeypatch)
    assert res.exit_code == 0, res.output
    sim = _predictions(world, "neumf")[f"similar-{int(ds.movie_ids.ids[7])}"]
    cos = q @ q[7] / (np.linalg.norm(q, axis=1) * np.linalg.norm(q[7]))
    cos[7] = -np.inf
    assert [int(ds.movie_ids.index_of(m)) for m in sim["movieId"].to_list()] == np.argsort(-cos, kind="stable")[:4].tolist()


def test_neumf_made_up_user_is_the_ridge_half_step_and_says_so(world, monkeypatch):
    from mfrec import load_experiment

    ds, run = world["ds"], world["runs"]["neumf"]
    titles = world["movies"]["title"]
    res = invoke(world, ["-e", run.name, "--like", titles[2], "--rate", f"{titles[9]}=2", "--top", "3"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "approximation" in res.output and "neumf run's movie factors" in res.output
    # the fold-in solves (Q^T Q + reg * n * I) p = Q^T (r - mu) with neumf's own reg and no user bias
    vec = load_experiment(run).fold_in({titles[2]: 5.0, titles[9]: 2.0})
    with np.load(run / "factors.npz", allow_pickle=False) as z:
        Q = z["movie_factors"][[2, 9]].astype(np.float64)
        mu = float(z["mu"])
    reg = json.loads((run / "config.json").read_text())["reg"]
    p = np.linalg.solve(Q.T @ Q + reg * 2 * np.eye(Q.shape[1]), Q.T @ (np.array([5.0, 2.0]) - mu))
    assert abs(vec.bias) < 1e-3
    np.testing.assert_allclose(vec.vector, p, atol=2e-3)
    assert not {2, 9} & {int(ds.movie_ids.index_of(m)) for m in _predictions(world, "neumf")["made-up-user"]["movieId"]}


def test_sequential_made_up_user_is_a_history(world, monkeypatch):
    from mfrec import load_experiment
    from mfrec.neural import load_model

    ds, run = world["ds"], world["runs"]["sequential"]
    titles = world["movies"]["title"]
    res = invoke(world, ["-e", run.name, "--like", titles[3], "--like", titles[11], "--top", "6"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "history for sequential run" in res.output and "ratings are not used" in res.output
    table = _predictions(world, "sequential")["made-up-user"]
    scores = load_model(run).score_histories([np.array([3, 11])])[0]
    scores[[3, 11]] = -np.inf
    expect = np.argsort(-scores, kind="stable")[:6]
    assert [int(ds.movie_ids.index_of(m)) for m in table["movieId"].to_list()] == expect.tolist()
    # a next-movie model predicts no ratings: no predicted_rating, and its ranking column is a logit
    assert table.columns == ["rank", "movieId", "title", "year", "genres", "logit", "why"]
    np.testing.assert_allclose(table["logit"].to_numpy(), scores[expect], atol=1e-4)  # the CSV: 4 decimals
    # the notebook API takes the same path
    nb = load_experiment(run).recommend(like=[titles[3], titles[11]], top=6, min_ratings=0)  # as invoke() passes
    assert nb["movieId"].to_list() == table["movieId"].to_list()


def test_attention_pair_uses_recommend_pair(world, monkeypatch):
    from mfrec.neural import load_model

    ds, run = world["ds"], world["runs"]["attention"]
    a, b = int(ds.user_ids.ids[1]), int(ds.user_ids.ids[2])
    res = invoke(world, ["-e", run.name, "--users", f"{a},{b}", "--top", "5"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert "predicted mean rating of the pair" in res.output
    table = _predictions(world, "attention")[f"users-{a}-{b}"]
    seen = _rated(ds, 1) | _rated(ds, 2)
    full = load_model(run).recommend_pair(1, 2, k=ds.n_movies)
    expect = [m for m, _ in full if m not in seen][:5]
    assert [int(ds.movie_ids.index_of(m)) for m in table["movieId"].to_list()] == expect
    assert table["predicted_rating"].to_list() == pytest.approx([s for m, s in full if m in expect], abs=1e-3)


def test_attention_pair_of_one_user_twice_is_refused(world, monkeypatch):
    """``--users 1,1`` is not a pair: one sentence pointing to --user (which scores the pair (u, u))."""
    ds, run = world["ds"], world["runs"]["attention"]
    a = int(ds.user_ids.ids[1])
    before = _predictions(world, "attention")
    res = invoke(world, ["-e", run.name, "--users", f"{a},{a}"], monkeypatch)
    assert res.exit_code == 2
    assert f"--users lists user {a} twice" in res.output and f"--user {a}" in res.output
    assert _predictions(world, "attention").keys() == before.keys()


@pytest.mark.parametrize("model,args,names", [
    ("sequential", ["--similar", "1"], "similar movies (--similar) is not supported"),
    ("sequential", ["--users", "1,2"], "a pair or group (--users) is not supported"),
    ("sequential", ["--like", "1", "--explain"], "explanations (--explain) is not supported"),
    ("attention", ["--like", "1"], "a made-up user (--like/--rate) is not supported"),
    ("attention", ["--all-users"], "every user's list (--all-users) is not supported"),
])
def test_unsupported_requests_name_what_is_supported(world, monkeypatch, model, args, names):
    before = _predictions(world, model)
    res = invoke(world, ["-e", world["runs"][model].name, *args], monkeypatch)
    assert res.exit_code == 2
    assert names in res.output and "which supports" in res.output and "Traceback" not in res.output
    assert _predictions(world, model).keys() == before.keys()  # nothing written


def test_attention_refuses_groups_and_the_interactive_loop(world, monkeypatch):
    ds, run = world["ds"], world["runs"]["attention"]
    ids = ",".join(str(int(i)) for i in ds.user_ids.ids[:3])
    res = invoke(world, ["-e", run.name, "--users", ids], monkeypatch)
    assert res.exit_code == 2 and "give exactly two user ids" in res.output
    res = invoke(world, ["interactive", "-e", run.name], monkeypatch)
    assert res.exit_code == 2 and "the interactive loop is not supported" in res.output


def test_latest_run_may_be_neural(world, monkeypatch):
    """attention is the latest run: --users takes it; --like passes over it to the newest run that can."""
    ds = world["ds"]
    a, b = int(ds.user_ids.ids[0]), int(ds.user_ids.ids[5])
    res = invoke(world, ["--users", f"{a},{b}", "--top", "3"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert f"most recent successful run: {world['runs']['attention'].name}" in res.output
    res = invoke(world, ["--like", world["movies"]["title"][0], "--top", "3"], monkeypatch)
    assert res.exit_code == 0, res.output
    first = res.output.splitlines()[0]
    assert f"most recent successful run: {world['runs']['sequential'].name}" in first
    assert f"passed over the newer {world['runs']['attention'].name} (attention)" in first
    res = invoke(world, ["--similar", world["movies"]["title"][0], "--top", "3"], monkeypatch)
    assert res.exit_code == 0, res.output
    assert f"most recent successful run: {world['runs']['neumf'].name}" in res.output.splitlines()[0]


def test_latest_run_without_a_mode_is_the_latest_als_run(world, small_dataset):
    """The notebook's ``latest_run()`` reads ALS arrays: a later neural run does not displace the ALS one."""
    from test_inference import make_run

    from mfrec.errors import MfrecError
    from mfrec.inference import latest_run

    root = world["base"] / "Experiments_"
    with pytest.raises(MfrecError, match="no successful ALS run with a model.npz"):
        latest_run(root)
    assert latest_run(root, mode="users") == world["runs"]["attention"]
    als = make_run(root, small_dataset, "mf", name="als-early")
    try:
        s = json.loads((als / "summary.json").read_text())
        s["finished"] = "2026-01-01T00:00:00+0000"  # before every neural run
        (als / "summary.json").write_text(json.dumps(s))
        assert latest_run(root) == als
        assert latest_run(root, mode="users") == world["runs"]["attention"]
    finally:
        import shutil

        shutil.rmtree(als)
