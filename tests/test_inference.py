"""Inference: fold-in against the training step, exact explanations, exclusions, groups, similar, filters."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from naive import naive_explain

from mfrec.errors import DataError, ModelError, UnknownIdError


def make_run(root, dataset, model="mf-genre", factors=8, epochs=4, name=None, status="ok", seed=1):
    """Train a small ALS model and write it as a run folder under ``root`` (what Main.py leaves)."""
    import mfrec
    from mfrec.experiments import Run

    cfg = {"model": model, "epochs": epochs, "seed": seed}
    if model != "bias":
        cfg["factors"] = factors
    fitted = mfrec.train(dataset, cfg)
    run = Run.create(name or f"{dataset.name}-{model}", root, config=fitted.config)
    fitted.save(run.model_path)
    run.save_summary({"dataset": dataset.name, "model": model}, status=status)
    return run.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_dataset):
    root = tmp_path_factory.mktemp("Experiments_")
    return {m: make_run(root, small_dataset, m) for m in ("mf-genre", "mf", "bias")}


@pytest.fixture(scope="module")
def exp(runs):
    from mfrec import load_experiment

    return load_experiment(runs["mf-genre"])


@pytest.fixture(scope="module")
def rec(exp):
    return exp.recommender


def partial_title(rec) -> tuple[int, str]:
    """(movie, query): the first two words of a longer title that name that film alone (a partial match)."""
    from mfrec.errors import MfrecError

    for m in range(rec.model.n_movies):
        words = rec.title(m).split(" (")[0].split()
        if len(words) < 3:
            continue
        try:
            found = rec.titles.match(" ".join(words[:2]))
        except MfrecError:
            continue
        if found.how == "partial" and found.movie == m:
            return m, " ".join(words[:2])
    raise AssertionError("the generated catalogue has no title that two of its words name alone")


def _train_row(ds, u):
    csr = ds.train_by_user
    a, b = int(csr.indptr[u]), int(csr.indptr[u + 1])
    return np.asarray(csr.indices[a:b]), np.asarray(csr.values[a:b])


@pytest.mark.parametrize("model", ["mf-genre", "mf", "bias"])
def test_fold_in_equals_the_training_user_step(runs, small_dataset, model):
    """Folding in a user's own training row gives what the user half-step of training computes."""
    from mfrec import load_experiment
    from mfrec.kernels.als import solve_rows

    exp = load_experiment(runs[model])
    als, r = exp.model, exp.recommender
    c = als.als_config
    ucsr = small_dataset.train_by_user
    # one user half-step over every user, exactly as fit() runs it, against the final movie side
    P, bu = solve_rows(ucsr.indptr, ucsr.indices, ucsr.values, als.effective_movie_factors, als.movie_bias, float(als.mu),
                       reg=c.reg, reg_bias=c.reg_bias, weighted=c.weighted_reg, solver="cholesky", what="user",
                       reg_exponent=c.reg_exponent)
    for u in (0, 5, 77):
        movies, ratings = _train_row(small_dataset, u)
        bias, vector = als.fold_in_user(movies, ratings, prior=False)  # the plain half-step, without the prior
        np.testing.assert_allclose(bias, bu[u], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(vector, P[u], rtol=1e-5, atol=1e-5)
        v = r.fold_in(list(zip(movies.tolist(), ratings.tolist())))  # calibrated: near it, not equal
        assert 0 < abs(v.bias - bu[u]) < 0.2


def test_fold_in_does_not_modify_the_model(exp, rec):
    npz = exp.path / "model.npz"
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    before = {k: getattr(rec.model, k).copy() for k in ("user_factors", "movie_factors", "user_bias", "movie_bias", "effective_movie_factors")}
    als_before = exp.model.user_factors.copy()
    rec.recommend([(0, 5.0), (3, 1.0), (10, 4.0)], n=5, explain=True)
    exp.fold_in({int(rec.movie_id_array[1]): 5})
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(rec.model, k), v)
    np.testing.assert_array_equal(exp.model.user_factors, als_before)
    assert hashlib.sha256(npz.read_bytes()).hexdigest() == digest
    with pytest.raises(ValueError):
        rec.model.user_factors[0, 0] = 1.0  # read-only arrays


def test_made_up_user_scores_are_the_model_prediction(rec):
    ratings = [(2, 5.0), (8, 4.0), (30, 1.0)]
    v = rec.fold_in(ratings)
    res = rec.recommend(ratings, n=20)
    m = rec.model
    for row in res.table.iter_rows(named=True):
        i = rec.movie(str(row["movieId"]))
        expected = m.mu + m.movie_bias[i] + v.bias + float(m.effective_movie_factors[i] @ v.vector)
        assert row["score"] == pytest.approx(expected, abs=1e-3)
    scores = res.table["score"].to_numpy()
    assert np.all(np.diff(scores) <= 1e-9)


def test_rated_movies_are_never_recommended_back(rec):
    ratings = [(m, 5.0) for m in (0, 1, 2, 3, 4)] + [(50, 1.0)]
    res = rec.recommend(ratings, n=rec.model.n_movies)  # ask for everything
    ids = set(res.table["movieId"].to_list())
    assert len(ids) == rec.model.n_movies - len(ratings)
    assert not ids & {int(rec.movie_id_array[m]) for m, _ in ratings}


def test_explanation_is_exact_and_matches_the_normal_equations(rec):
    from mfrec.inference.foldin import explain_contributions

    ratings = [(2, 5.0), (8, 4.0), (30, 1.0), (41, 3.0)]
    rated = np.array([m for m, _ in ratings])
    values = np.array([r for _, r in ratings], np.float32)
    targets = np.arange(60, 80)
    contrib, parts, population = explain_contributions(rec.model, rated, values, targets)
    v = rec.fold_in(ratings)
    m = rec.model
    assert m.calibrated  # a run trained now folds in with the population prior
    scores = m.score_movies(v.bias, v.vector)[targets]
    # contributions and the population's part add up to score - (mu + b_i); with z_0 the parts add up to the fold-in
    np.testing.assert_allclose(contrib.sum(axis=1) + population, scores - m.mu - m.movie_bias[targets], atol=1e-4)
    z0 = np.linalg.solve(*m.fold_in_system(rated)[::2])
    np.testing.assert_allclose(parts.sum(axis=0) + z0, np.r_[v.bias, v.vector], atol=1e-5)
    cfg = m.config
    # the factor penalty of a row with n ratings: reg * n ** reg_exponent (weighted-lambda) or reg
    lam = cfg["reg"] * len(rated) ** cfg.get("reg_exponent", 1.0) if cfg["weighted_reg"] else cfg["reg"]
    ref, z, ref_pop = naive_explain(m.effective_movie_factors, m.movie_bias, m.mu, rated, values, targets, lam,
                                    cfg["reg_bias"], False, prior=(m.prior_mean, m.prior_precision))
    np.testing.assert_allclose(contrib, ref, atol=1e-4)
    np.testing.assert_allclose(population, ref_pop, atol=1e-4)
    np.testing.assert_allclose(z, np.r_[v.bias, v.vector], atol=1e-4)


def test_explain_table_and_cli_lines(rec, exp):
    res = rec.recommend([(2, 5.0), (8, 4.0), (30, 1.0)], n=3, explain=True)
    assert set(res.details) == {1, 2, 3}
    assert all(len(lines) == 4 for lines in res.details.values())  # baseline line + 3 rated movies
    assert any("explanation" in n for n in res.notes)
    table = exp.explain({int(rec.movie_id_array[2]): 5, int(rec.movie_id_array[8]): 4}, top=3)
    assert table.height == 6
    import polars as pl

    sums = table.group_by("movieId").agg(pl.col("share").abs().sum())
    np.testing.assert_allclose(sums["share"].to_numpy(), 1.0, atol=1e-6)


def test_existing_user_excludes_everything_they_rated(rec, small_dataset):
    u = 10
    uid = int(small_dataset.user_ids.ids[u])
    seen_all = set()
    for split in (small_dataset.train, small_dataset.val, small_dataset.test):
        seen_all |= set(np.asarray(split.movie)[np.asarray(split.user) == u].tolist())
    train_only = set(_train_row(small_dataset, u)[0].tolist())
    assert seen_all - train_only  # the user has val/test ratings
    res = rec.recommend_user(uid, n=rec.model.n_movies)
    listed = {rec.movie(str(i)) for i in res.table["movieId"].to_list()}
    assert not listed & seen_all and len(listed) == rec.model.n_movies - len(seen_all)
    assert "excluded the" in res.notes[0] and "train" in res.notes[0] and "test" in res.notes[0]
    res_train = rec.recommend_user(uid, n=rec.model.n_movies, exclude="train")
    listed = {rec.movie(str(i)) for i in res_train.table["movieId"].to_list()}
    assert not listed & train_only and listed & (seen_all - train_only)
    # the ranking is the stored user vector's prediction
    m = rec.model
    pred = m.score_movies(float(m.user_bias[u]), m.user_factors[u])
    top = res.table["movieId"].to_list()[:5]
    np.testing.assert_allclose(res.table["score"].to_numpy()[:5], pred[[rec.movie(str(i)) for i in top]], atol=1e-3)


def test_unknown_user_says_so(rec):
    with pytest.raises(UnknownIdError, match="user 999999 is not in dataset"):
        rec.recommend_user(999999)
    with pytest.raises(UnknownIdError, match="not a number"):
        rec.recommend_user("bob")


def test_group_is_ranked_by_the_least_satisfied_member(rec, small_dataset):
    ids = [int(small_dataset.user_ids.ids[u]) for u in (3, 4)]
    res = rec.recommend_group(ids, n=15)
    assert any("least misery" in n for n in res.notes)
    m = rec.model
    preds = np.stack([m.score_movies(float(m.user_bias[u]), m.user_factors[u]) for u in (3, 4)])
    group = preds.min(axis=0)
    seen = set(rec._seen(3, "all")[0].tolist()) | set(rec._seen(4, "all")[0].tolist())
    eligible = np.array([i for i in range(m.n_movies) if i not in seen])
    best = eligible[np.lexsort((eligible, -group[eligible]))][:15]
    got = [rec.movie(str(i)) for i in res.table["movieId"].to_list()]
    assert got == best.tolist()
    np.testing.assert_allclose(res.table["score"].to_numpy(), group[best], atol=1e-4)
    with pytest.raises(DataError, match="at least two"):
        rec.recommend_group([ids[0]])


def test_similar_is_cosine_of_the_effective_movie_factors(rec, exp, runs):
    from mfrec import load_experiment

    target = 7
    res = rec.similar(str(rec.movie_id_array[target]), n=5)
    Q = exp.model.effective_movie_factors.astype(np.float64)  # q_i + |G_i|^-1/2 sum y_g
    cos = Q @ Q[target] / (np.linalg.norm(Q, axis=1) * np.linalg.norm(Q[target]))
    cos[target] = -np.inf
    expected = np.argsort(-cos, kind="stable")[:5]
    assert [rec.movie(str(i)) for i in res.table["movieId"].to_list()] == expected.tolist()
    # the column says what it holds: a cosine, and no predicted rating (no user is asked about)
    assert res.table.columns == ["rank", "movieId", "title", "year", "genres", "cosine", "why"]
    assert res.ranked_by == "cosine"
    np.testing.assert_allclose(res.table["cosine"].to_numpy(), cos[expected], atol=1e-6)
    with pytest.raises(ModelError, match="bias-only"):
        load_experiment(runs["bias"]).recommender.similar("1")


def test_filters_genre_and_years(rec, small_dataset):
    from mfrec.inference.recommend import Filters

    f = Filters(("drama",), Filters.parse_years("1990-1999"))
    res = rec.recommend([(0, 5.0)], n=500, filters=f)
    assert len(res) > 0
    assert all("Drama" in g.split("|") for g in res.table["genres"].to_list())
    assert all(1990 <= y <= 1999 for y in res.table["year"].to_list())
    assert Filters.parse_years("1995") == (1995, 1995) and Filters.parse_years("1990-") == (1990, None)
    res = rec.recommend([(0, 5.0)], n=500, filters=Filters(min_ratings=60))
    counts = np.diff(np.asarray(small_dataset.train_by_movie.indptr))
    assert 0 < len(res) < rec.model.n_movies - 1
    assert all(counts[rec.movie(str(i))] >= 60 for i in res.table["movieId"].to_list())
    with pytest.raises(DataError, match="unknown genre"):
        rec.recommend([(0, 5.0)], filters=Filters(("Cowboy",)))
    for bad in ("199x", "2000-1990"):
        with pytest.raises(DataError, match="--years"):
            Filters.parse_years(bad)


def test_bad_profile_input(rec):
    with pytest.raises(DataError, match="outside the rating scale"):
        rec.profile(rates=[f"{rec.movie_id_array[0]}=7"])
    with pytest.raises(DataError, match="TITLE=RATING"):
        rec.profile(rates=["Some title"])
    with pytest.raises(DataError, match="not a number"):
        rec.profile(rates=[f"{rec.movie_id_array[0]}=good"])
    # --like is the top of the scale; a movie given twice keeps its last rating
    p = rec.profile(likes=[str(rec.movie_id_array[0])], rates=[f"{rec.movie_id_array[0]}=2.5"])
    assert p == [(0, 2.5)]
    assert rec.profile(likes=[str(rec.movie_id_array[1])]) == [(1, rec.scale[1])]


def test_notebook_api_matches_the_recommender(exp, rec):
    a = exp.recommend(like=[str(rec.movie_id_array[4])], top=5)
    b = rec.recommend([(4, rec.scale[1])], n=5).table
    assert a.equals(b)
    assert list(a.columns) == ["rank", "movieId", "title", "year", "genres", "predicted_rating", "score", "why"]
    assert exp.similar(str(rec.movie_id_array[4]), top=3).height == 3
    with pytest.raises(DataError, match="only one of"):
        exp.recommend(like=["1"], user=1)


def test_all_users_batch_matches_one_user_at_a_time(rec, small_dataset):
    table = rec.recommend_all_users(n=6)
    assert table.height == rec.model.n_users * 6
    for u in (0, 17, 123):
        uid = int(small_dataset.user_ids.ids[u])
        one = rec.recommend_user(uid, n=6).table
        mine = table.filter(table["userId"] == uid)
        assert mine["movieId"].to_list() == one["movieId"].to_list()
        np.testing.assert_allclose(mine["score"].to_numpy(), one["score"].to_numpy(), atol=1e-4)
    train_only = rec.recommend_all_users(n=3, exclude="train")
    u = 10
    seen_train = set(_train_row(small_dataset, u)[0].tolist())
    got = train_only.filter(train_only["userId"] == int(small_dataset.user_ids.ids[u]))["movieId"].to_list()
    assert not {rec.movie(str(i)) for i in got} & seen_train


def test_why_explains_every_rating_of_a_long_history(rec):
    """No cap on explained ratings: a made-up user who rated nearly every movie gets every "why" cell, and
    each cell is the one why_text makes from all the exact contributions (tests/naive.py), largest first."""
    from mfrec.inference.recommend import why_text

    m = rec.model
    rng = np.random.default_rng(3)
    rated = rng.permutation(m.n_movies)[: m.n_movies - 20]
    values = rng.integers(1, 6, len(rated)).astype(np.float32)
    ratings = [(int(j), float(r)) for j, r in zip(rated, values)]
    res = rec.recommend(ratings, n=10, explain=True)
    recs = np.array([rec.dataset.movie_ids.index_of(int(i)) for i in res.table["movieId"].to_list()])
    assert len(recs) == 10 and not any("left empty" in n for n in res.notes)
    cfg = m.config
    lam = cfg["reg"] * len(rated) ** cfg.get("reg_exponent", 1.0) if cfg["weighted_reg"] else cfg["reg"]
    ref, _, ref_pop = naive_explain(m.effective_movie_factors, m.movie_bias, m.mu, rated, values, recs, lam,
                                    cfg["reg_bias"], False, prior=(m.prior_mean, m.prior_precision))
    scores = res.table["score"].to_numpy()
    np.testing.assert_allclose(ref.sum(axis=1) + ref_pop, scores - m.mu - m.movie_bias[recs], atol=1e-4)
    above = values > m.mu + m.movie_bias[rated]
    for row, cell in enumerate(res.table["why"].to_list()):
        c = ref[row]
        order = np.argsort(-np.abs(c), kind="stable")
        share = c / np.abs(c).sum()
        assert cell == why_text([(rec._short(rated[j]), float(values[j]), bool(above[j]), float(c[j]), float(share[j]))
                                 for j in order])
        assert len(res.details[row + 1]) == 1 + 5 + 1  # baseline, the 5 largest, the other ratings together


def test_why_words_match_the_sign_of_each_contribution():
    from mfrec.inference.recommend import why_text

    # (title, rating, rated above the movie's average, contribution, share), largest |contribution| first
    items = [("Titanic", 1.0, False, 0.5, 0.5), ("Alien", 5.0, True, 0.3, 0.3), ("Heat", 4.0, True, -0.2, -0.2)]
    assert why_text(items) == "unlike Titanic [1] +50%, like Alien [5] +30%"
    # nothing pushes the film up: the largest pull is named as one it is recommended despite
    assert why_text([("Heat", 5.0, True, -0.4, -0.8), ("Fargo", 1.0, False, -0.1, -0.2)]) == "despite Heat [5] -80%"


def test_a_dislike_is_never_the_unnamed_top_reason(rec):
    """Every named reason's word matches its exact contribution; a user with only dislikes gets no 'like'."""
    from mfrec.inference.foldin import explain_contributions

    ratings = [(2, 1.0), (8, 1.0), (30, 2.0)]
    res = rec.recommend(ratings, n=8)
    assert all(not w.startswith("like ") and " like " not in w for w in res.table["why"].to_list())
    ratings = [(2, 5.0), (8, 4.0), (30, 1.0), (41, 3.0)]
    res = rec.recommend(ratings, n=10)
    recs = np.array([rec.dataset.movie_ids.index_of(int(i)) for i in res.table["movieId"].to_list()])
    rated = np.array([m for m, _ in ratings])
    contrib, _, _ = explain_contributions(rec.model, rated, np.array([r for _, r in ratings]), recs)
    above = {rec._short(m): r > rec.model.mu + rec.model.movie_bias[m] for m, r in ratings}
    sign = {rec._short(m): j for j, (m, _) in enumerate(ratings)}
    for row, cell in enumerate(res.table["why"].to_list()):
        for part in cell.split(", "):
            word, rest = part.split(" ", 1)
            title = rest.rsplit(" [", 1)[0]
            c = contrib[row, sign[title]]
            assert word == ("despite" if c < 0 else "like" if above[title] else "unlike"), (cell, c)


def test_a_made_up_user_with_few_ratings_gets_distinct_ratings_on_the_scale(rec):
    """3-5 ratings of the most-rated movies, loved: the calibrated fold-in and the run's rating map keep
    every predicted rating inside the scale and different from row to row."""
    lo, hi = rec.scale
    assert rec.model.calibrated and rec.model.config["rating_map"]["fitted_on"] == "val"
    top = np.argsort(-rec.popularity)
    for ratings in ([(m, hi) for m in top[:3]], [(m, hi) for m in top[:4]] + [(top[9], lo)],
                    [(m, hi) for m in top[5:10]]):
        res = rec.recommend([(int(m), float(r)) for m, r in ratings], n=10)
        pred = np.array(res.table["predicted_rating"].to_list())
        assert np.all((pred >= lo) & (pred <= hi)) and len(np.unique(pred)) == len(pred)
        assert np.all(np.diff(pred) <= 0)  # the map keeps the list's order
        np.testing.assert_allclose(pred, rec.model.rating(res.table["score"].to_numpy()))


def test_dislikes_down_only_takes_off_exactly_what_the_dislikes_lift(rec):
    from mfrec.inference.foldin import explain_contributions

    ratings = [(2, 5.0), (8, 5.0), (30, 1.0), (41, 1.5)]
    rated = np.array([m for m, _ in ratings])
    values = np.array([r for _, r in ratings])
    every = np.arange(rec.model.n_movies)
    contrib, _, _ = explain_contributions(rec.model, rated, values, every)
    below = values < rec.model.mu + rec.model.movie_bias[rated]
    assert below.tolist() == [False, False, True, True]
    lift = np.maximum(contrib[:, below], 0).sum(axis=1)
    np.testing.assert_allclose(rec.dislike_lift(ratings), lift, atol=1e-6)
    assert lift.max() > 0  # the dislikes do lift some films
    res = rec.recommend(ratings, n=15, dislikes="down-only", filters=None)
    recs = np.array([rec.dataset.movie_ids.index_of(int(i)) for i in res.table["movieId"].to_list()])
    ranked_by = res.table["score"].to_numpy() - lift[recs]
    assert np.all(np.diff(ranked_by) <= 1e-5)  # the list runs down score less lift; the score column stays the score
    assert any("down-only" in n for n in res.notes)
    likes_only = [(2, 5.0), (8, 5.0)]
    assert (rec.recommend(likes_only, n=10, dislikes="down-only").table.equals(rec.recommend(likes_only, n=10).table))
    with pytest.raises(DataError, match="--dislikes must be one of"):
        rec.recommend(ratings, dislikes="never")


def test_the_printed_ratings_tell_apart_what_two_decimals_would_not(rec):
    from mfrec.inference.output import format_table
    from mfrec.inference.recommend import Result

    def printed(preds):
        table = rec._table(np.arange(len(preds)), preds, np.arange(len(preds), 0, -1, dtype=float), [""] * len(preds))
        rows = format_table(Result(table)).splitlines()[2:]
        return [line.split()[-2] for line in rows]  # the rating column (the score's 3 decimals come after it)

    assert printed([4.1234, 3.9876]) == ["4.12", "3.99"]
    assert printed([4.7381, 4.7362, 4.70]) == ["4.738", "4.736", "4.700"]
