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
