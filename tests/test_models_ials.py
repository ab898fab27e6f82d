"""The ials model end to end on generated data: training-user fold-in, recency, exact explanations,
the rating protocol's refusal, and top-N quality against the popularity chart."""

from __future__ import annotations

import numpy as np
import pytest

import mfrec
from mfrec.errors import ModelError
from mfrec.models import ALSConfig, train
from mfrec.models.confidence import confidences


def taste_ratings(raw, n_groups: int = 4, per_user: int = 40, own: float = 0.8, seed: int = 11):
    """Ratings where what a user watches depends on their taste (the generator's own choice of movies
    follows global popularity only, which no top-N model can beat): user u belongs to group u % n_groups
    and picks a movie from its group's block (movies with index % n_groups equal to it) with
    probability ``own``, else any movie; within a block, Zipf-like popularity; timestamps increase."""
    import polars as pl

    rng = np.random.default_rng(seed)
    users = raw.users["userId"].to_numpy()
    movies = raw.movies["movieId"].to_numpy()
    weight = 1.0 / (rng.permutation(len(movies)) + 5.0)
    rows = []
    for u_idx, u in enumerate(users):
        block = np.arange(len(movies)) % n_groups == u_idx % n_groups
        p = weight * np.where(block, own / weight[block].sum(), (1 - own) / weight[~block].sum())
        picks = rng.choice(len(movies), per_user, replace=False, p=p / p.sum())
        for t, m in enumerate(picks):
            rows.append((int(u), int(movies[m]), float(rng.integers(3, 6) if block[m] else rng.integers(1, 4)), 1000 * u_idx + t))
    u, m, r, t = zip(*rows)
    return pl.DataFrame({"userId": np.array(u, np.int64), "movieId": np.array(m, np.int64),
                         "rating": np.array(r, np.float32), "timestamp": np.array(t, np.int64)})


@pytest.fixture(scope="module")
def user_last(tmp_path_factory, small_raw):
    """Taste-driven ratings of small_raw's users and movies (``taste_ratings``), each user's 3 latest
    held out for test and 10% of the rest for validation."""
    from dataclasses import replace

    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    raw = replace(small_raw, ratings=taste_ratings(small_raw))
    out, _ = prepare(raw, SplitSpec("user-last", holdout=3, val_fraction=0.1), name="small-last",
                     root=tmp_path_factory.mktemp("Training_data"))
    return load(out)


@pytest.fixture(scope="module")
def exact_model(user_last):
    return train(user_last, ALSConfig.for_model("ials", factors=8, epochs=4, solver="cholesky", patience=0))


def test_confidence_grows_with_the_rating():
    c = confidences([1, 2, 3, 4, 5], 5.0, alpha=2.0, power=1.0)
    assert np.all(np.diff(c) > 0) and c[-1] == pytest.approx(3.0)
    flat = confidences([1, 5], 5.0, alpha=2.0, power=0.0)
    assert flat[0] == flat[1] == pytest.approx(3.0)  # power 0: every rating the same confidence


def test_model_is_implicit_and_scores_are_not_ratings(exact_model, user_last):
    m = exact_model
    assert m.kind == "ials" and m.implicit and m.mu == 0 and m.rating_scale is None
    assert not np.any(m.user_bias) and not np.any(m.movie_bias)
    scores = m.score_users(np.arange(3))
    np.testing.assert_allclose(scores, m.user_factors[:3] @ m.movie_factors.T, rtol=1e-5, atol=1e-6)
    from mfrec.evaluation.protocols import rating_protocol

    with pytest.raises(ModelError, match="ranking"):
        rating_protocol(m, user_last)


def test_fold_in_of_a_training_user_reproduces_its_trained_vector(exact_model, user_last):
    train = user_last.train
    counts = np.bincount(np.asarray(train.user), minlength=user_last.n_users)
    for u in (0, int(np.argmax(counts))):
        mine = np.asarray(train.user) == u
        movies, ratings = np.asarray(train.movie)[mine], np.asarray(train.rating)[mine]
        times = np.asarray(train.timestamp)[mine]
        bias, vector = exact_model.fold_in_user(movies, ratings, times=times)
        assert bias == 0
        np.testing.assert_allclose(vector, exact_model.user_factors[u], rtol=1e-4, atol=1e-6)
        # without the times every rating counts as current: the older ones weigh more than in training
        _, current = exact_model.fold_in_user(movies, ratings)
        assert not np.allclose(current, vector, rtol=1e-3, atol=1e-5)


def test_recency_places_and_confidences():
    from mfrec.models.confidence import places_in_history

    t = places_in_history([0, 0, 0, 1], [30, 10, 20, 5], 2)
    np.testing.assert_allclose(t, [1.0, 0.0, 0.5, 1.0])
    c = confidences([5, 5, 5], 5.0, alpha=2.0, power=1.0, recent=[0.0, 0.5, 1.0], recency=8.0, scale=0.1)
    assert c[0] < c[1] < c[2] and c[2] == pytest.approx(3.0)  # the latest rating keeps its full confidence


def test_explanation_contributions_sum_to_the_score_exactly(exact_model):
    from mfrec.inference.foldin import explain_contributions

    movies = np.array([3, 17, 42, 5], np.int32)
    ratings = np.array([5.0, 1.0, 4.0, 3.0], np.float32)
    _, vector = exact_model.fold_in_user(movies, ratings)
    targets = np.arange(exact_model.n_movies)
    contrib, parts, population = explain_contributions(exact_model, movies, ratings, targets)
    assert not np.any(population)  # no baseline and no prior: the ratings make the whole score
    assert contrib.shape == (len(targets), len(movies))
    np.testing.assert_allclose(parts[:, 1:].sum(axis=0), vector, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(contrib.sum(axis=1), exact_model.movie_factors @ vector, rtol=1e-4, atol=1e-5)
    # a higher rating means a higher confidence, so that movie's share of the user grows
    _, more, _ = explain_contributions(exact_model, movies, np.array([5.0, 5.0, 4.0, 3.0], np.float32), targets)
    assert np.abs(more[1]).sum() > np.abs(parts[1]).sum()


def test_train_run_beats_popularity_on_the_ranking_protocol(user_last, tmp_path):
    from mfrec.evaluation.protocols import ranking_protocol
    from mfrec.evaluation.ranking import Popularity
    from mfrec.training import train_run

    run, summary = train_run(user_last, "ials", {"factors": 16}, runs_root=tmp_path)
    assert summary["val_ndcg@10"] is not None and summary["test_rmse"] is None
    exp = mfrec.load_experiment(run.path)
    assert exp.model.kind == "ials"
    metrics = [line for line in (run.path / "metrics.csv").read_text().splitlines()]
    assert "val_ndcg@10" in metrics[0] and len(metrics) == summary["epochs_run"] + 1
    assert (run.path / "plots" / "movie_map.png").is_file() and (run.path / "plots" / "ranking.png").is_file()
    ours = ranking_protocol(exp.model, user_last)
    pop = ranking_protocol(Popularity.fit(user_last), user_last)
    assert ours["ndcg@10"] > pop["ndcg@10"] and ours["hit@10"] > pop["hit@10"]


def test_validation_early_stopping_keeps_the_best_epoch(user_last):
    from mfrec.training import validation_ranking

    m = mfrec.models.ials.fit(user_last, ALSConfig.for_model("ials", factors=8, epochs=6, patience=1),
                              validate=validation_ranking(user_last))
    ndcg = [r.metrics["val_ndcg@10"] for r in m.history]
    assert m.best_epoch == int(np.argmax(ndcg)) + 1
    # validation only by default: the training loss is one more pass, asked for with train_metrics
    assert all(r.val_rmse is None for r in m.history) and all("train_loss" not in r.metrics for r in m.history)
