"""EASE (``--model ease``): the closed form against the paper's formula, the model file, the recommender
end to end, and the ranking protocol's ``--min-ratings`` candidate filter."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import mfrec
from mfrec.errors import DataError, MfrecError, ModelError
from mfrec.models.ease import EaseConfig, EaseModel, check_memory, ease_memory_bytes, solve_ease
from naive import naive_ease


# -- the closed form -------------------------------------------------------------------------------
def test_solve_matches_the_papers_formula_with_a_zero_diagonal():
    rng = np.random.default_rng(0)
    X = (rng.random((40, 12)) < 0.3).astype(np.float32)
    X[:, 5] = 0  # a movie nobody watched: its row and column of B are zero
    for reg in (0.5, 10.0):
        B = solve_ease(sp.csr_matrix(X), reg, block=5)  # several blocks of X^T X
        assert B.dtype == np.float32 and B.flags.c_contiguous
        assert np.all(np.diag(B) == 0)
        np.testing.assert_allclose(B, naive_ease(X, reg), rtol=1e-4, atol=1e-5)
        assert np.all(B[5] == 0) and np.all(B[:, 5] == 0)


def test_a_larger_penalty_shrinks_the_weights():
    rng = np.random.default_rng(1)
    X = sp.csr_matrix((rng.random((60, 15)) < 0.3).astype(np.float32))
    assert np.abs(solve_ease(X, 100.0)).sum() < np.abs(solve_ease(X, 1.0)).sum()


def test_memory_check_names_the_size_it_would_need():
    assert ease_memory_bytes(59_047) > 59_047 ** 2 * 4
    with pytest.raises(ModelError, match=r"59,047 x 59,047 float32 .* 16\.\d GiB .* only 1\.0 GiB"):
        check_memory(59_047, available=2**30)
    check_memory(100, available=2**30)  # fits: no error


@pytest.mark.parametrize("bad, what", [({"reg": 0}, "reg"), ({"reg": float("nan")}, "reg"),
                                       ({"weighting": "implicit"}, "weighting")])
def test_config_refuses_bad_values(bad, what):
    with pytest.raises(ModelError, match=what):
        EaseConfig(**bad).validate()


# -- a dataset with structure: two audiences, each watching its own movies -------------------------
@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """120 users in four audiences of 15 movies each (plus 6 blockbusters anyone may watch); each user
    watches 9 of their audience's movies and one blockbuster, in time order; user-last split, 2 test."""
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.raw import RawData
    from mfrec.data.splits import SplitSpec

    rng = np.random.default_rng(5)
    n_movies = 66
    rows = []
    for u in range(120):
        own = np.arange(15) + 15 * (u % 4)
        picks = list(rng.choice(own, 9, replace=False)) + list(rng.choice(np.arange(60, 66), 1))
        rng.shuffle(picks)
        rows += [(u + 1, int(m) + 1, float(rng.integers(3, 6)), 1000 * u + t) for t, m in enumerate(picks)]
    user, movie, rating, ts = (np.array(c) for c in zip(*rows))
    raw = RawData(
        dataset="clustered",
        ratings=pl.DataFrame({"userId": user.astype(np.int64), "movieId": movie.astype(np.int64),
                              "rating": rating.astype(np.float32), "timestamp": ts.astype(np.int64)}),
        movies=pl.DataFrame({"movieId": np.arange(1, n_movies + 1, dtype=np.int64),
                             "title": [f"Film {i} (2000)" for i in range(1, n_movies + 1)],
                             "year": np.full(n_movies, 2000, np.int32),
                             "genres": [["Drama"] if i <= 30 else ["Comedy"] for i in range(1, n_movies + 1)]}),
        users=None, rating_scale=(1.0, 5.0), rating_step=1.0, source="test", ratings_file="test",
    )
    out, _ = prepare(raw, SplitSpec("user-last", holdout=2, val_fraction=0.15), name="clustered",
                     root=tmp_path_factory.mktemp("td"))
    return load(out)


@pytest.fixture(scope="module")
def run(clustered, tmp_path_factory):
    from mfrec.cli.train import train

    root = tmp_path_factory.mktemp("runs-ease")
    res = CliRunner().invoke(train, ["--data", str(clustered.path), "--model", "ease", "--reg", "5",
                                     "--runs-root", str(root), "--quiet"])
    assert res.exit_code == 0, res.output
    (path,) = [p for p in root.iterdir() if p.is_dir()]
    return mfrec.load_experiment(path)


def test_training_writes_an_experiment_folder(run, clustered):
    names = {p.name for p in run.path.iterdir()}
    assert {"config.json", "metrics.csv", "train.log", "summary.json", "ease.npz"} <= names
    assert (run.path / "plots" / "ease_neighbours.png").stat().st_size > 10_000  # the weights among top movies
    assert not (run.path / "plots" / "rmse.png").exists()  # EASE scores are not ratings: no RMSE curve
    config = json.loads((run.path / "config.json").read_text())
    assert config["model"] == "ease" and config["reg"] == 5.0 and config["weighting"] == "binary"
    s = run.summary
    assert s["status"] == "ok" and s["model"] == "ease" and s.get("test_rmse") is None
    assert 0 <= s["hit@10"] <= 1 and "hit@10_min_ratings_10" in s and "val_hit@10" in s
    np.testing.assert_allclose(run.model.B, naive_ease(_binary_train(clustered), 5.0), rtol=1e-3, atol=1e-5)


def _binary_train(ds):
    X = np.zeros((ds.n_users, ds.n_movies))
    X[np.asarray(ds.train.user), np.asarray(ds.train.movie)] = 1.0
    return X


def test_ease_beats_popularity_on_data_with_structure(run, clustered):
    from mfrec.evaluation.protocols import ranking_protocol
    from mfrec.evaluation.ranking import Popularity

    ease = ranking_protocol(run.model, clustered)
    pop = ranking_protocol(Popularity.fit(clustered), clustered)
    assert ease["hit@10"] > pop["hit@10"] + 0.2 and ease["ndcg@10"] > pop["ndcg@10"]
    assert run.summary["hit@10"] == pytest.approx(ease["hit@10"])


def test_the_model_file_round_trips_bit_exactly(run, tmp_path):
    model = run.model
    again = EaseModel.load(model.save(tmp_path / "ease.npz"))
    for key in ("B", "x_indptr", "x_indices", "x_values", "user_ids", "movie_ids"):
        a, b = getattr(model, key), getattr(again, key)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
    assert again.config == model.config
    users = np.arange(model.n_users)
    assert again.score_users(users).tobytes() == model.score_users(users).tobytes()


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del arrays[k]
    np.savez(dst, **arrays)
    return dst


def test_a_damaged_model_file_is_one_model_error(run, tmp_path):
    src = run.path / "ease.npz"
    data = src.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    B = np.array(run.model.B)
    diag = B.copy()
    diag[3, 3] = 0.5
    nan = B.copy()
    nan[0, 1] = np.nan
    cases = {
        "cut.npz": "damaged", "empty.npz": "damaged",
        _rewrite(src, tmp_path / "nokey.npz", B=None).name: "lacks B",
        _rewrite(src, tmp_path / "kind.npz", kind=np.array("mf")).name: "not an EASE one",
        _rewrite(src, tmp_path / "diag.npz", B=diag).name: "zero diagonal",
        _rewrite(src, tmp_path / "nan.npz", B=nan).name: "not finite",
        _rewrite(src, tmp_path / "shape.npz", B=B[:, :-1]).name: "inconsistent",
        _rewrite(src, tmp_path / "csr.npz", x_indices=np.asarray(run.model.x_indices) + 1000).name: "not a valid CSR",
        _rewrite(src, tmp_path / "newer.npz", format_version=np.array(99)).name: "newer mfrec",
        _rewrite(src, tmp_path / "config.npz", config_json=np.array("{oops")).name: "config_json",
    }
    for name, message in cases.items():
        with pytest.raises(ModelError, match=message):
            EaseModel.load(tmp_path / name)
    with pytest.raises(ModelError, match="does not exist"):
        EaseModel.load(tmp_path / "absent.npz")
    with np.load(src, allow_pickle=False) as z:  # the saved file holds no pickled object
        assert all(z[k].dtype != object for k in z.files)


# -- recommendations -------------------------------------------------------------------------------
def test_made_up_user_is_x_times_b_with_exact_reasons(run, clustered):
    ids = clustered.movie_ids.ids
    liked = [int(ids[m]) for m in (0, 2, 4)]  # audience A's movies (0..14)
    table = run.recommend(like=liked, top=10, min_ratings=0)
    assert "predicted_rating" not in table.columns and "ease_score" in table.columns
    assert not set(table["movieId"].to_list()) & set(liked)
    x = np.zeros(clustered.n_movies)
    x[[0, 2, 4]] = 1
    expected = x @ np.asarray(run.model.B, np.float64)
    got = {clustered.movie_ids.index_of(int(m)): s for m, s in zip(table["movieId"], table["ease_score"])}
    for m, s in got.items():
        assert s == pytest.approx(expected[m], rel=1e-4, abs=1e-6)
    assert sum(1 for m in got if m < 15) >= 8  # the list stays in the audience's movies
    explained = run.explain(like=liked, top=3, min_ratings=0)
    sums = explained.group_by("movieId").agg(pl.col("contribution").sum(), pl.col("score").first())
    for total, score in zip(sums["contribution"], sums["score"]):
        assert total == pytest.approx(score, rel=1e-5, abs=1e-7)


def test_existing_user_similar_popular_and_refusals(run, clustered):
    uid = int(clustered.user_ids.ids[0])
    table = run.recommend(user=uid, top=5, min_ratings=0)
    u = 0
    rated = set(np.asarray(clustered.ratings.movie)[np.asarray(clustered.ratings.user) == u].tolist())
    assert table.height == 5 and not {clustered.movie_ids.index_of(int(m)) for m in table["movieId"]} & rated
    first = int(clustered.movie_ids.ids[0])
    sim = run.similar(first, top=5, min_ratings=0)
    B = np.asarray(run.model.B)
    best = np.argsort(-np.where(np.arange(clustered.n_movies) == 0, -np.inf, B[0]), kind="stable")[:5]
    assert [clustered.movie_ids.index_of(int(m)) for m in sim["movieId"]] == best.tolist()
    with pytest.raises(MfrecError, match="supports"):
        run.recommend(users=[uid, int(clustered.user_ids.ids[1])])
    with pytest.raises(DataError, match="at least one"):
        run.recommender.recommend([])
    with pytest.raises(MfrecError, match="999999"):
        run.recommend(user=999_999)
    everyone = run.recommender.recommend_all_users(n=3)
    assert everyone.height == 3 * clustered.n_users and "predicted_rating" not in everyone.columns


def test_inference_command_prints_an_ease_list(run):
    from mfrec.cli.recommend import recommend as recommend_main

    res = CliRunner().invoke(recommend_main, ["--experiment", str(run.path), "--like", "Film 1", "--top", "3",
                                              "--min-ratings", "0", "--out-dir", str(run.path / "predictions")])
    assert res.exit_code == 0, res.output
    assert "not a predicted rating" in res.output and "ease" in res.output
    res = CliRunner().invoke(recommend_main, ["--experiment", str(run.path), "--all-users", "--top", "2",
                                              "--min-ratings", "0", "--out-dir", str(run.path / "predictions")])
    assert res.exit_code == 0, res.output
    written = pl.read_csv(run.path / "predictions" / run.name / "all-users.csv")
    assert written.columns == ["userId", "rank", "movieId", "title", "ease_score"] and written.height == 240


# -- the ranking protocol's candidate filter -------------------------------------------------------
class RareFirst:
    """Scores movies by how rarely they were rated: without a filter, the rarest lead every list."""

    def __init__(self, ds):
        self.counts = np.diff(np.asarray(ds.train_by_movie.indptr)).astype(np.float32)

    def score_users(self, users):
        return np.broadcast_to(-self.counts, (len(users), len(self.counts)))


def test_min_ratings_filter_changes_the_candidates_as_documented(clustered):
    from mfrec.evaluation.protocols import history_and_targets, ranking_protocol
    from naive import naive_top_k

    counts = np.diff(np.asarray(clustered.train_by_movie.indptr))
    n = int(np.median(counts))
    res = ranking_protocol(RareFirst(clustered), clustered, min_ratings=n)
    assert res["min_ratings"] == n and "hit@10_min_ratings_0" not in res
    # the filtered metrics from a NumPy reference: candidates = unrated movies with >= n training ratings
    (hp, hi), (tp, ti) = history_and_targets(clustered)
    scores = np.tile(-counts.astype(np.float64), (clustered.n_users, 1))
    scores[:, counts < n] = -np.inf
    excluded = [set(hi[hp[u]:hp[u + 1]].tolist()) | set(np.flatnonzero(counts < n).tolist())
                for u in range(clustered.n_users)]
    top = naive_top_k(scores, excluded, 10)
    users = [u for u in range(clustered.n_users) if tp[u + 1] > tp[u]]
    hits = [bool(set(top[u]) & set(ti[tp[u]:tp[u + 1]].tolist())) for u in users]
    assert res["hit@10_min_ratings_%d" % n] == pytest.approx(np.mean(hits))
    listed = {m for u in users for m in top[u] if m >= 0}
    assert res["coverage@10_min_ratings_%d" % n] == pytest.approx(len(listed) / clustered.n_movies)
    assert all(counts[m] >= n for m in listed)
    # unfiltered, the rare movies lead the lists, so coverage differs from the filtered one
    assert res["coverage@10"] != res["coverage@10_min_ratings_%d" % n]
    assert "hit@10_min_ratings_0" not in ranking_protocol(RareFirst(clustered), clustered, min_ratings=0)
    with pytest.raises(DataError, match="min-ratings"):
        ranking_protocol(RareFirst(clustered), clustered, min_ratings=-1)


def test_evaluate_command_reports_both_and_records_them(run):
    from mfrec.cli.evaluate import evaluate

    res = CliRunner().invoke(evaluate, ["--experiment", str(run.path), "--protocol", "ranking", "--min-ratings", "8",
                                        "--quiet"])
    assert res.exit_code == 0, res.output
    assert "hit@10, min 8 ratings" in res.output
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["min_ratings"] == 8 and "ndcg@10_min_ratings_8" in summary
    assert "ndcg@10_min_ratings_10" not in summary  # the training run's figures for 10 were replaced
    res = CliRunner().invoke(evaluate, ["--experiment", str(run.path), "--protocol", "ranking", "--min-ratings", "0",
                                        "--quiet"])
    assert res.exit_code == 0, res.output
    summary = json.loads((run.path / "summary.json").read_text())
    assert "min_ratings" not in summary and not any("_min_ratings_" in k for k in summary)


def test_ease_refuses_options_that_do_not_apply(clustered, tmp_path):
    from mfrec.cli.train import train

    res = CliRunner().invoke(train, ["--data", str(clustered.path), "--model", "ease", "--factors", "8",
                                     "--runs-root", str(tmp_path), "--quiet"])
    assert res.exit_code != 0 and "--factors" in res.output and "do not apply" in res.output


def test_an_existing_users_recent_movies_weigh_more_exactly_as_documented(run, clustered):
    model = run.model
    s = model.settings
    assert s.recency_boost == 4.0 and s.recency_scale == 5.0
    u = 3
    a, b = model.x_indptr[u], model.x_indptr[u + 1]
    movies = np.asarray(model.x_indices[a:b])
    r = np.arange(len(movies))[::-1]  # 0 = the latest
    x = np.zeros(clustered.n_movies)
    x[movies] = 1.0 + s.recency_boost * np.exp(-r / s.recency_scale)
    expected = x @ np.asarray(model.B, np.float64)
    np.testing.assert_allclose(model.score_users([u])[0], expected, rtol=1e-4, atol=1e-6)
    # the protocol and the recommender read each history oldest first, the same weights
    order = np.lexsort((np.asarray(clustered.train.timestamp), np.asarray(clustered.train.user)))
    assert np.array_equal(order, np.arange(len(order)))  # the train split is stored oldest first per user
    plain = EaseModel(model.B, model.x_indptr, model.x_indices, model.x_values, model.user_ids, model.movie_ids,
                      {**model.config, "recency_boost": 0.0})
    np.testing.assert_allclose(plain.score_users([u])[0], np.isin(np.arange(clustered.n_movies), movies) @ model.B,
                               rtol=1e-5, atol=1e-6)
    # the "why" of an existing user's list decomposes the recency-weighted score exactly
    uid = int(clustered.user_ids.ids[u])
    explained = run.recommender.recommend_user(uid, n=3, explain=True, filters=None)
    assert explained.table.height == 3 and any("weighted 5x" in note for note in explained.notes)
    with pytest.raises(ModelError, match="recency_scale"):
        EaseConfig(recency_scale=0).validate()


def test_ease_ranks_a_list_whose_ratings_another_run_predicts(run, clustered, tmp_path):
    """--rank-by: EASE is a ranker (what to watch) beside a rating model (what you would rate it)."""
    from mfrec.training import train_run

    mf, _ = train_run(clustered, "mf", {"factors": 4, "epochs": 2, "patience": 0}, runs_root=tmp_path)
    predictor = mfrec.load_experiment(mf.path)
    ids = [int(clustered.movie_ids.ids[m]) for m in (0, 2, 4)]
    ranked = predictor.recommender.recommend_ranked_by(run.recommender, ratings=[(0, 5.0), (2, 4.0), (4, 5.0)], n=5,
                                                       filters=None)
    expected = run.recommend(like=ids, top=5, min_ratings=0)
    assert ranked.table["movieId"].to_list() == expected["movieId"].to_list()
    assert "predicted_rating" in ranked.table.columns
    with pytest.raises(ModelError, match="predicts no ratings"):
        run.recommender.recommend_ranked_by(predictor.recommender, ratings=[(0, 5.0)])
