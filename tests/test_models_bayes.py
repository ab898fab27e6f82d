"""The Gibbs-sampled Bayesian MF (``--model bayes``): determinism for a seed on any thread count,
accuracy against mf, every option changes the chain, the run folder, load_experiment and the
posterior spread Inference.py shows."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import mfrec
from mfrec.errors import ModelError
from mfrec.models.bayes import BayesConfig, BayesSamples, fit


@pytest.fixture(scope="module")
def noisy_dataset(tmp_path_factory):
    """Rounded, noisy ratings from rank-3 structure (200 users x 150 movies, 12% observed, 70/10/20)."""
    import polars as pl

    from mfrec.data.store import write_dataset

    rng = np.random.default_rng(5)
    nu, nm, k = 200, 150, 3
    full = (3.5 + rng.normal(0, 0.4, nu)[:, None] + rng.normal(0, 0.4, nm)[None, :]
            + rng.normal(0, 0.6, (nu, k)) @ rng.normal(0, 0.6, (nm, k)).T)
    user, movie = np.nonzero(rng.random((nu, nm)) < 0.12)
    rating = np.clip(np.round(full[user, movie] + rng.normal(0, 0.6, len(user))), 1, 5)
    r = rng.random(len(user))
    out = write_dataset(
        tmp_path_factory.mktemp("Training_data") / "noisy", user=user.astype(np.int32), movie=movie.astype(np.int32),
        rating=rating.astype(np.float32), timestamp=np.arange(len(user), dtype=np.int64),
        split=np.where(r < 0.2, 2, np.where(r < 0.3, 1, 0)).astype(np.int8), n_users=nu, n_movies=nm,
        movies=pl.DataFrame({"movie": np.arange(nm, dtype=np.int32), "movieId": np.arange(1, nm + 1),
                             "title": [f"m{i}" for i in range(nm)], "year": np.full(nm, 2000, np.int32),
                             "genres": [["Drama"]] * nm}),
        users=pl.DataFrame({"user": np.arange(nu, dtype=np.int32), "userId": np.arange(1, nu + 1)}),
        genres=["Drama"], genre_indptr=np.arange(nm + 1, dtype=np.int64), genre_indices=np.zeros(nm, np.int32),
        manifest={"name": "noisy", "dataset": "synthetic", "rating_scale": [1.0, 5.0], "seed": 0},
    )
    return mfrec.data.load(out)


@pytest.fixture(scope="module")
def short():
    return BayesConfig(factors=4, samples=12, burn_in=3, stored_samples=4)


def _arrays(model):
    return [model.user_factors, model.movie_factors, model.user_bias, model.movie_bias,
            model.samples.user_factors, model.samples.movie_factors]


def test_same_seed_same_chain_on_any_thread_count(small_dataset, short):
    one = fit(small_dataset, short.replace(threads=1))
    top = numba.config.NUMBA_NUM_THREADS
    other = fit(small_dataset, short.replace(threads=min(2, top)))
    for a, b in zip(_arrays(one), _arrays(other)):
        np.testing.assert_array_equal(a, b)
    assert [r.test_rmse for r in one.history] == pytest.approx([r.test_rmse for r in other.history], rel=1e-12)
    third = fit(small_dataset, short.replace(seed=7))
    assert not np.array_equal(one.user_factors, third.user_factors)


def test_a_small_training_set_runs_on_one_thread_and_restores_the_thread_count(small_dataset, short):
    import mfrec.models.bayes as bayes

    before = numba.get_num_threads()
    assert len(small_dataset.train) < bayes.SERIAL_BELOW
    assert fit(small_dataset, short).config["numba_threads"] == 1
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("change", [{"factors": 5}, {"burn_in": 5}, {"implicit_user": False},
                                    {"implicit_movie": False}, {"init_std": 0.3}, {"samples": 13},
                                    {"time_bias": False}, {"time_bins": 3}])
def test_every_option_changes_the_result(small_dataset, short, change):
    base = fit(small_dataset, short)
    other = fit(small_dataset, short.replace(**change))
    assert base.user_factors.shape != other.user_factors.shape or not np.allclose(base.user_factors, other.user_factors)


def test_beats_mf_and_the_running_mean_converges(noisy_dataset):
    # missing-at-random synthetic ratings: who rated what says nothing here, so the implicit groups are
    # off, and the timestamps are a counter, so the time biases are too
    small_dataset = noisy_dataset
    bayes = fit(small_dataset, BayesConfig(factors=8, samples=60, burn_in=5, implicit_user=False,
                                           implicit_movie=False, time_bias=False))
    mf = mfrec.train(small_dataset, "mf")
    mf_rmse = mf.evaluate(small_dataset.test)["rmse"]
    posterior = bayes.config["posterior_test_rmse"]
    assert posterior < mf_rmse, (posterior, mf_rmse)
    assert bayes.evaluate(small_dataset.test)["rmse"] < mf_rmse  # the posterior-mean factors too
    curve = [r.test_rmse for r in bayes.history]
    assert curve[-1] < curve[5]  # the running posterior mean improves on the first kept sample
    # the kept samples give each prediction a spread of at least the noise
    mean, sd = bayes.samples.predictive(small_dataset.test.user[:50], small_dataset.test.movie[:50])
    assert mean.shape == sd.shape == (50,)
    assert np.all(sd >= bayes.config["noise_sd"] * 0.999)


def test_the_first_samples_at_a_rank_far_above_the_datas_do_not_overfit(noisy_dataset):
    # k = 32 on rank-3 data with 2,495 training ratings: the first sweep's prior is drawn from the
    # initial factors (sd 0.1), so the first samples stay near the data's scale; with a fixed starting
    # precision of 1 their test RMSE was about 2x that of predicting the training mean (1.7-2.0)
    ds = noisy_dataset
    model = fit(ds, BayesConfig(factors=32, samples=3, burn_in=2, implicit_user=False, implicit_movie=False,
                                time_bias=False))
    mean_only = float(np.sqrt(np.mean((ds.test.rating - np.mean(ds.train.rating)) ** 2)))
    first = [r.test_rmse for r in model.history]
    assert max(first) < 1.1 * mean_only, (first, mean_only)


def test_time_biases_find_a_planted_user_day_effect(tmp_path):
    """Each (user, day) shifts all of that day's ratings; the time-bias group learns the shift from
    the day's training ratings, and a test rating on a day without training ratings gets no term."""
    import polars as pl

    from mfrec.data.store import write_dataset
    from mfrec.models.bayes import _TimeBiases

    rng = np.random.default_rng(3)
    nu, nm = 120, 100
    user, movie = np.nonzero(rng.random((nu, nm)) < 0.25)
    day = rng.integers(0, 4, len(user))
    shift = rng.normal(0, 0.8, (nu, 4))
    rating = np.clip(np.round(3.5 + rng.normal(0, 0.4, nm)[movie] + shift[user, day] + rng.normal(0, 0.3, len(user))),
                     1, 5)
    order = np.lexsort((day, user))
    user, movie, day, rating = user[order], movie[order], day[order], rating[order]
    split = np.where(rng.random(len(user)) < 0.2, 2, 0).astype(np.int8)
    ds = mfrec.data.load(write_dataset(
        tmp_path / "days", user=user.astype(np.int32), movie=movie.astype(np.int32), rating=rating.astype(np.float32),
        timestamp=(day * 86_400 + rng.integers(0, 80_000, len(user))).astype(np.int64), split=split, n_users=nu,
        n_movies=nm, movies=pl.DataFrame({"movie": np.arange(nm, dtype=np.int32), "movieId": np.arange(1, nm + 1),
                                          "title": [f"m{i}" for i in range(nm)], "year": np.full(nm, 2000, np.int32),
                                          "genres": [["Drama"]] * nm}),
        users=pl.DataFrame({"user": np.arange(nu, dtype=np.int32), "userId": np.arange(1, nu + 1)}),
        genres=["Drama"], genre_indptr=np.arange(nm + 1, dtype=np.int64), genre_indices=np.zeros(nm, np.int32),
        manifest={"name": "days", "dataset": "synthetic", "rating_scale": [1.0, 5.0], "seed": 0}))
    cfg = BayesConfig(factors=2, samples=40, burn_in=5, implicit_user=False, implicit_movie=False, stored_samples=0)
    with_days = fit(ds, cfg.replace(time_bias=True)).config["posterior_test_rmse"]
    without = fit(ds, cfg.replace(time_bias=False)).config["posterior_test_rmse"]
    assert with_days < without - 0.05, (with_days, without)
    tb = _TimeBiases(ds, 30)
    unseen = type("S", (), {"user": np.array([0]), "movie": np.array([0]), "timestamp": np.array([50 * 86_400])})
    ud, ib = tb.split_index(unseen)
    tb.b_ud[:] = 1.0  # every known (user, day) shifted by one: the unseen day must get none of it
    assert ud[0] == -1 and tb.offsets(ud, ib)[0] == 0.0
    ud, _ = tb.split_index(ds.test)
    assert np.all(ud >= 0) or np.mean(ud >= 0) > 0.9  # test days mostly seen in training


def test_config_is_validated():
    with pytest.raises(ModelError, match="burn_in"):
        BayesConfig(samples=5, burn_in=5).validate()
    with pytest.raises(ModelError, match="factors"):
        BayesConfig(factors=0).validate()
    with pytest.raises(ModelError, match="implicit_user"):
        BayesConfig(implicit_user=1).validate()


def test_run_folder_load_experiment_and_spread(small_dataset, tmp_path):
    from mfrec.training import train_run

    run, summary = train_run(small_dataset, "bayes", {"factors": 4, "samples": 10, "burn_in": 2},
                             runs_root=tmp_path)
    for f in ("config.json", "metrics.csv", "model.npz", "samples.npz", "summary.json", "plots/rmse.png"):
        assert (run.path / f).is_file(), f
    assert summary["status"] == "ok" and summary["model"] == "bayes" and summary["kept_samples"] == 8
    exp = mfrec.load_experiment(run.path)
    assert len(exp.metrics) == 10 and "noise_sd" in exp.metrics.columns
    model = exp.factors
    assert model.kind == "bayes" and model.k == 4
    # one test RMSE everywhere: the model's prediction, the posterior mean of the predictions, in the
    # summary, metrics.csv's last row and what load_experiment reads; model.npz's factors are labelled
    assert summary["test_rmse"] == pytest.approx(summary["posterior_test_rmse"], abs=1e-9)
    assert exp.metrics["test_rmse"][-1] == pytest.approx(summary["test_rmse"], abs=1e-9)
    assert exp.summary["test_rmse"] == pytest.approx(summary["test_rmse"], abs=1e-12)
    assert model.evaluate(small_dataset.test)["rmse"] == pytest.approx(summary["factor_test_rmse"], abs=1e-6)
    assert summary["factor_test_rmse"] != pytest.approx(summary["test_rmse"], abs=1e-6)
    assert f"test RMSE {summary['test_rmse']}" in (run.path / "train.log").read_text()
    # mfrec evaluate re-evaluates model.npz: it shows the run's test RMSE and labels the factors' own
    from click.testing import CliRunner

    from mfrec.cli.evaluate import evaluate

    out = CliRunner().invoke(evaluate, ["--experiment", str(run.path), "--protocol", "rating", "--quiet"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.split()[:2] == ["test", "RMSE"] and f"{summary['test_rmse']:.4f}" in line for line in lines)
    assert any("mean factors: RMSE" in line and f"{summary['factor_test_rmse']:.4f}" in line for line in lines)
    samples = BayesSamples.load(run.path / "samples.npz")
    assert len(samples) == 8  # every kept sample, up to stored_samples (20)
    # existing user: rating ± sd, and ranking by the lower bound puts surer movies first
    rec = exp.recommender
    assert rec.samples is not None
    uid = int(small_dataset.user_ids.ids[0])
    plain = rec.recommend_user(uid, n=20)
    assert "uncertainty" in plain.table.columns and (plain.table["uncertainty"] > 0).all()
    from mfrec.inference.output import format_table

    assert " ± " in format_table(plain)
    rec.lower_bound = 2.0
    cautious = rec.recommend_user(uid, n=20)
    bound = (cautious.table["score"] - 2.0 * cautious.table["uncertainty"]).to_numpy()
    assert np.all(np.diff(bound) <= 1e-5)  # listed by the lower bound, the score column stays the model's
    assert any("lower bound" in note for note in cautious.notes)
    # a made-up user is folded in under the learned prior and gets a spread too
    rec.lower_bound = 0.0
    titles = rec.titles_list[:3]
    made_up = rec.recommend([(rec.movie(t), 5.0) for t in titles], n=5)
    assert "uncertainty" in made_up.table.columns
    assert any("learned prior" in note for note in made_up.notes)
