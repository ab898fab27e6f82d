"""``Inference.py --rank-by``: one run ranks the list, another gives the predicted ratings, and the output says which."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from test_inference import make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_raw):
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec
    from mfrec.training import popularity_run

    out, _ = prepare(small_raw, SplitSpec("user-last", holdout=4, val_fraction=0.1), name="last",
                     root=tmp_path_factory.mktemp("Training_data"))
    ds = load(out)
    root = tmp_path_factory.mktemp("Experiments_")
    mf = make_run(root, ds, "mf", name="mf")
    other = make_run(root, ds, "mf-genre", name="other")
    pop, _ = popularity_run(ds, root, name="pop")
    return root, ds, mf, other, pop


def _invoke(*args):
    from mfrec.cli.recommend import recommend

    return CliRunner().invoke(recommend, list(args))


def test_popularity_ranks_and_the_explicit_run_predicts(runs, tmp_path):
    root, ds, mf, _, pop = runs
    from mfrec import load_experiment

    rec = load_experiment(mf).recommender
    liked = [str(int(rec.movie_id_array[m])) for m in (0, 1)]
    r = _invoke("-e", "mf", "--runs-root", str(root), "--rank-by", "popularity", "--like", liked[0], "--like", liked[1],
                "--top", "5", "--min-ratings", "0", "--out-dir", str(tmp_path))
    assert r.exit_code == 0, r.output
    assert f"ranking with the newest finished popularity run on the same dataset: {pop.name}" in r.output
    assert f"ranked by run {pop.name} (popularity" in r.output and f"predicted_rating from run {mf.name} (mf" in r.output
    table = pl.read_csv(tmp_path / mf.name / "made-up-user.csv")
    counts = np.diff(np.asarray(ds.train_by_movie.indptr))
    order = [m for m in np.argsort(-counts, kind="stable") if m not in (0, 1)][:5]
    assert table["movieId"].to_list() == [int(rec.movie_id_array[m]) for m in order]  # popularity's order
    assert table["rank_score"].to_list() == [float(counts[m]) for m in order]
    # the predicted ratings are the mf run's, for the same made-up user
    vec, pred, _ = rec.made_up_scores([(0, 5.0), (1, 5.0)])
    np.testing.assert_allclose(table["predicted_rating"].to_numpy(), rec._clip(pred[order]), atol=1e-3)


def test_a_factor_run_can_rank_an_existing_users_list_and_mistakes_are_one_sentence(runs, tmp_path):
    root, ds, mf, other, _ = runs
    uid = str(int(ds.user_ids.ids[3]))
    r = _invoke("-e", str(mf), "--rank-by", str(other), "--user", uid, "--top", "4", "--out-dir", str(tmp_path),
                "--runs-root", str(root))
    assert r.exit_code == 0, r.output
    assert f"ranking with run {other.name}" in r.output and f"ranked by run {other.name} (mf-genre" in r.output
    for args, says in ((["--rank-by", "ease"], "neither a run nor a model kind"),
                       (["--rank-by", "mf"], "names the run that predicts"),
                       (["--rank-by", "popularity", "--similar", "1"], "--rank-by ranks a made-up user")):
        r = _invoke("-e", "mf", "--runs-root", str(root), "--user", uid, *args) if "--similar" not in args else \
            _invoke("-e", "mf", "--runs-root", str(root), *args)
        assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output, r.output


def test_rank_by_auto_ranks_a_rating_runs_list_with_an_ials_run_on_the_same_data(runs, tmp_path):
    from mfrec.training import train_run

    _, ds, _, _, _ = runs
    root = tmp_path / "runs"
    mf, _ = train_run(ds, "mf", {"factors": 4, "epochs": 2}, runs_root=root, name="mf")
    liked = [str(int(ds.movie_ids.ids[m])) for m in (0, 1)]
    ask = ("-e", "mf", "--runs-root", str(root), "--like", liked[0], "--like", liked[1], "--top", "5",
           "--min-ratings", "0", "--out-dir", str(tmp_path / "out"))
    alone = _invoke(*ask)  # no ials or ease run on this dataset yet: mf ranks its own list
    assert alone.exit_code == 0, alone.output
    assert "--rank-by auto" not in alone.output and "rank_score" not in alone.output
    ials, _ = train_run(ds, "ials", {"factors": 4, "epochs": 2}, runs_root=root, name="ials")
    auto = _invoke(*ask)
    assert auto.exit_code == 0, auto.output
    assert f"--rank-by auto: ials run {ials.name} ranks, {mf.name} predicts the ratings" in auto.output
    assert f"ranked by run {ials.name} (ials" in auto.output and f"predicted_rating from run {mf.name} (mf" in auto.output
    # --rank-by none, and --explain (which explains the run's own list), keep mf's own ranking
    for extra in (("--rank-by", "none"), ("--explain",)):
        own = _invoke(*ask, *extra)
        assert own.exit_code == 0 and "--rank-by auto" not in own.output and "ranked by run" not in own.output, own.output
