"""Fitted ALS models: known structure recovered, determinism, every hyperparameter matters, guards,
pickle-free save/load."""

from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest

import mfrec
from mfrec.errors import ModelError
from mfrec.callbacks import EpochReport
from mfrec.models import ALSConfig, FactorModel, NonFiniteFactorsError, ThreadOversubscriptionWarning, check_threads


@pytest.fixture(scope="module")
def known_dataset(tmp_path_factory):
    """Noise-free ratings from known biases and rank-3 factors (40 users x 30 movies, 60% observed)."""
    from mfrec.data.store import write_dataset

    rng = np.random.default_rng(11)
    nu, nm, k = 40, 30, 3
    bu, bi = rng.normal(0, 0.5, nu), rng.normal(0, 0.5, nm)
    P, Q = rng.normal(0, 0.7, (nu, k)), rng.normal(0, 0.7, (nm, k))
    full = 3.0 + bu[:, None] + bi[None, :] + P @ Q.T
    mask = rng.random((nu, nm)) < 0.6
    user, movie = np.nonzero(mask)
    split = (rng.random(len(user)) < 0.15).astype(np.int8) * 2  # 15% test
    genres = [sorted(rng.choice(4, rng.integers(1, 3), replace=False).tolist()) for _ in range(nm)]
    gp = np.zeros(nm + 1, np.int64)
    gp[1:] = np.cumsum([len(g) for g in genres])
    names = ["Action", "Comedy", "Drama", "Horror"]
    out = write_dataset(
        tmp_path_factory.mktemp("Training_data") / "known",
        user=user.astype(np.int32), movie=movie.astype(np.int32), rating=full[user, movie].astype(np.float32),
        timestamp=np.arange(len(user), dtype=np.int64), split=split, n_users=nu, n_movies=nm,
        movies=pl.DataFrame({"movie": np.arange(nm, dtype=np.int32), "movieId": np.arange(1, nm + 1),
                             "title": [f"m{i}" for i in range(nm)], "year": np.full(nm, 2000, np.int32),
                             "genres": [[names[g] for g in gs] for gs in genres]}),
        users=pl.DataFrame({"user": np.arange(nu, dtype=np.int32), "userId": np.arange(1, nu + 1)}),
        genres=names, genre_indptr=gp, genre_indices=np.array([g for gs in genres for g in gs], np.int32),
        manifest={"name": "known", "dataset": "synthetic", "rating_scale": [-10.0, 15.0], "seed": 0},
    )
    ds = mfrec.data.load(out)
    ds.truth = {"full": full, "bu": bu, "bi": bi}  # type: ignore[attr-defined]
    return ds


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_recovers_known_structure(known_dataset, solver):
    cfg = ALSConfig(model="mf", factors=3, epochs=25, reg=0.001, reg_bias=0.01, solver=solver, cg_steps=4, patience=0)
    seen = []
    model = mfrec.train(known_dataset, cfg, callback=lambda e: isinstance(e, EpochReport) and seen.append(e))
    train_curve = [r.train_rmse for r in seen]
    assert [r.epoch for r in seen] == list(range(1, 26))
    assert train_curve[-1] < train_curve[0] / 5 and train_curve[-1] < 0.05
    # held-out ratings are predicted from the recovered structure
    test = known_dataset.test
    assert model.evaluate(test)["rmse"] < 0.1
    # the full matrix, including never-seen pairs, is recovered
    uu, mm = np.meshgrid(np.arange(known_dataset.n_users), np.arange(known_dataset.n_movies), indexing="ij")
    pred = model.predict(uu.ravel(), mm.ravel()).reshape(uu.shape)
    assert np.corrcoef(pred.ravel(), known_dataset.truth["full"].ravel())[0, 1] > 0.99


def test_bias_model_is_k0_and_falls(known_dataset):
    model = mfrec.train(known_dataset, {"model": "bias", "reg_bias": 0.01})
    assert model.k == 0 and model.user_factors.shape == (known_dataset.n_users, 0)
    assert model.history[-1].train_rmse <= model.history[0].train_rmse
    # biases track the true ones (up to the factors' share of the signal)
    assert np.corrcoef(model.movie_bias, known_dataset.truth["bi"])[0, 1] > 0.7


def test_mf_genre_trains_and_uses_genres(known_dataset):
    model = mfrec.train(known_dataset, {"model": "mf-genre", "factors": 3, "epochs": 5})
    assert model.genre_factors.shape == (4, 3) and np.abs(model.genre_factors).sum() > 0
    np.testing.assert_array_equal(model.genre_indptr, known_dataset.movie_genres.indptr)
    assert not np.array_equal(model.effective_movie_factors, model.movie_factors)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_deterministic_with_seed_and_threads(small_dataset, solver):
    import numba

    a = mfrec.train(small_dataset, {"model": "mf-genre", "factors": 4, "epochs": 3, "seed": 1, "solver": solver})
    b = mfrec.train(small_dataset, {"model": "mf-genre", "factors": 4, "epochs": 3, "seed": 1, "threads": 1,
                                    "solver": solver})
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # restored after the fit
    for key in ("user_factors", "movie_factors", "genre_factors", "user_bias", "movie_bias"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


BASE = dict(model="mf-genre", factors=4, epochs=3, reg=0.08, reg_bias=3.0, reg_genre=0.08, weighted_reg=True, reg_exponent=1.0,
            solver="cholesky", cg_steps=2, init_std=0.1, seed=3, patience=0)
CHANGES = [("factors", 6), ("epochs", 4), ("reg", 0.5), ("reg_bias", 20.0), ("reg_genre", 5.0), ("weighted_reg", False), ("reg_exponent", 0.5),
           ("init_std", 0.3), ("seed", 4), ("model", "mf"), ("solver", "cg")]


@pytest.mark.parametrize("field,value", CHANGES)
def test_each_hyperparameter_changes_the_result(small_dataset, field, value):
    base = mfrec.train(small_dataset, ALSConfig(**BASE))
    other = mfrec.train(small_dataset, ALSConfig(**{**BASE, field: value}))
    test = small_dataset.test
    assert not np.array_equal(base.predict(test.user, test.movie), other.predict(test.user, test.movie))


def test_cg_steps_changes_the_result(small_dataset):
    cfg = ALSConfig(**{**BASE, "solver": "cg"})
    a = mfrec.train(small_dataset, cfg)
    b = mfrec.train(small_dataset, cfg.replace(cg_steps=5))
    assert not np.array_equal(a.user_factors, b.user_factors)


def test_early_stopping_keeps_best_epoch(small_dataset):
    # tiny unweighted reg and many factors overfit 8k ratings, so validation RMSE turns up
    cfg = ALSConfig(model="mf", factors=24, epochs=12, reg=0.01, reg_bias=0.1, weighted_reg=False, patience=1)
    model = mfrec.train(small_dataset, cfg)
    vals = [r.val_rmse for r in model.history]
    assert len(model.history) < 12 and model.history[-1].stop
    assert model.best_epoch == int(np.argmin(vals)) + 1
    assert model.evaluate(small_dataset.val)["rmse"] == pytest.approx(min(vals), abs=1e-9)
    full = mfrec.train(small_dataset, cfg.replace(patience=0))
    assert len(full.history) == 12


def test_save_load_round_trip_bit_exact(small_dataset, tmp_path):
    model = mfrec.train(small_dataset, {"model": "mf-genre", "factors": 5, "epochs": 2})
    path = model.save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as z:
        # an ALS run also stores its fold-in's population prior (mfrec.models.factor.PRIOR_KEYS)
        assert set(z.files) == set(mfrec.models.NPZ_KEYS) | {"format_version", "prior_mean", "prior_precision"}
        assert z["mu"].shape == () and z["mu"].dtype == np.float32
        assert z["user_ids"].dtype == np.int64 and z["config_json"].shape == ()
        cfg = json.loads(str(z["config_json"]))
    assert cfg["model"] == "mf-genre" and cfg["rating_scale"] == list(small_dataset.rating_scale)
    loaded = FactorModel.load(path)
    assert loaded.config == model.config and loaded.mu == model.mu
    for key in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors", "genre_indptr",
                "genre_indices", "user_ids", "movie_ids", "prior_mean", "prior_precision"):
        a, b = getattr(model, key), getattr(loaded, key)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
    test = small_dataset.test
    assert model.predict(test.user, test.movie).tobytes() == loaded.predict(test.user, test.movie).tobytes()
    np.testing.assert_array_equal(loaded.user_ids, small_dataset.user_ids.ids)


def test_bias_model_round_trip_has_empty_genres(small_dataset, tmp_path):
    model = mfrec.train(small_dataset, "bias")
    loaded = FactorModel.load(model.save(tmp_path / "b.npz"))
    assert loaded.k == 0 and loaded.genre_factors.shape == (0, 0)
    np.testing.assert_array_equal(loaded.movie_bias, model.movie_bias)


def test_load_rejects_bad_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="junk.npz"):
        FactorModel.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "partial.npz", mu=np.float32(3))
    with pytest.raises(ModelError, match="lacks"):
        FactorModel.load(tmp_path / "partial.npz")


def test_fold_in_matches_training_half_step(small_dataset):
    model = mfrec.train(small_dataset, {"model": "mf", "factors": 4, "epochs": 2})
    u = 5
    csr = small_dataset.train_by_user
    sl = slice(csr.indptr[u], csr.indptr[u + 1])
    from mfrec.kernels.als import solve_rows

    c = model.als_config
    f, b = solve_rows(csr.indptr, csr.indices, csr.values, model.effective_movie_factors, model.movie_bias, model.mu,
                      reg=c.reg, reg_bias=c.reg_bias, weighted=c.weighted_reg, reg_exponent=c.reg_exponent)
    bias, factors = model.fold_in_user(csr.indices[sl], csr.values[sl], prior=False)  # the plain half-step
    np.testing.assert_array_equal(factors, f[u])
    assert bias == b[u]


def test_nan_guard(small_dataset, monkeypatch):
    import mfrec.kernels.als as kals

    real = kals.solve_rows

    def poisoned(*args, **kwargs):
        f, b = real(*args, **kwargs)
        if kwargs.get("what") == "movie":
            f[0, 0] = np.nan
        return f, b

    monkeypatch.setattr(kals, "solve_rows", poisoned)
    with pytest.raises(NonFiniteFactorsError, match="epoch 1: movie_factors"):
        mfrec.train(small_dataset, {"model": "mf", "factors": 3, "epochs": 2})
    assert issubclass(NonFiniteFactorsError, ModelError)


def test_config_validation():
    with pytest.raises(ModelError, match="factors"):
        ALSConfig(model="mf", factors=0).validate()
    with pytest.raises(ModelError, match="reg"):
        ALSConfig(reg=-1.0).validate()
    with pytest.raises(ModelError, match="solver"):
        ALSConfig(solver="qr").validate()
    with pytest.raises(ModelError, match="unknown config field"):
        mfrec.models.make_config({"model": "mf", "factorz": 3})
    assert ALSConfig.from_dict({**ALSConfig().to_dict(), "dataset": "x"}) == ALSConfig()
    docs = mfrec.models.config.field_docs()
    assert set(docs) == set(ALSConfig().to_dict()) and all(docs.values())



def test_field_docs_are_each_fields_metadata_in_field_order():
    """--help and the README read one line per field from the dataclass fields' metadata."""
    from dataclasses import fields

    docs = mfrec.models.config.field_docs()
    assert list(docs) == [f.name for f in fields(ALSConfig)]
    assert all(d.strip() and "\n" not in d for d in docs.values())
    assert docs["model"] == ("Which model: bias (mu + b_u + b_i), mf (+ p_u.q_i), mf-genre (+ genre factors) or ials "
                             "(implicit feedback, p_u.q_i ranks).")
    assert docs["threads"] == "Numba threads (0 = Numba's default, all cores)."
    assert docs["patience"] == ("Early stopping: stop after this many epochs without a better validation RMSE "
                                "(ials: NDCG@10) (0 = never).")
    assert ALSConfig().cg_steps == 3 and ALSConfig().solver == "cg"  # the defaults moved into field() unchanged

def test_oversubscription_warning(monkeypatch):
    import numba

    import mfrec.models.als as als

    if numba.get_num_threads() < 2:
        pytest.skip("needs at least two Numba threads")
    monkeypatch.setattr(als, "blas_threads", lambda: 64)
    with pytest.warns(ThreadOversubscriptionWarning, match="oversubscribe"):
        check_threads(0)
    monkeypatch.setattr(als, "blas_threads", lambda: 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_threads(0)


def test_blas_threads_from_environment(monkeypatch):
    import mfrec.models.als as als

    monkeypatch.setitem(__import__("sys").modules, "threadpoolctl", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "5")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert als.blas_threads() == 5
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var)
    assert als.blas_threads() is None


def test_all_equal_ratings_train_and_fold_in_without_a_prior_or_a_map(tmp_path):
    """Every rating 4: the fit is exact, so there is no noise to weigh a prior by and no spread to map scores onto."""
    from mfrec.data.store import write_dataset

    rng = np.random.default_rng(0)
    nu, nm = 12, 9
    user, movie = np.nonzero(rng.random((nu, nm)) < 0.7)
    out = write_dataset(
        tmp_path / "flat", user=user.astype(np.int32), movie=movie.astype(np.int32),
        rating=np.full(len(user), 4.0, np.float32), timestamp=np.arange(len(user), dtype=np.int64),
        split=((rng.random(len(user)) < 0.2) * 1).astype(np.int8), n_users=nu, n_movies=nm,
        movies=pl.DataFrame({"movie": np.arange(nm, dtype=np.int32), "movieId": np.arange(1, nm + 1),
                             "title": [f"m{i}" for i in range(nm)], "year": np.full(nm, 2000, np.int32),
                             "genres": [["Drama"]] * nm}),
        users=pl.DataFrame({"user": np.arange(nu, dtype=np.int32), "userId": np.arange(1, nu + 1)}),
        genres=["Drama"], genre_indptr=np.arange(nm + 1, dtype=np.int64), genre_indices=np.zeros(nm, np.int32),
        manifest={"name": "flat", "dataset": "synthetic", "rating_scale": [1.0, 5.0], "seed": 0},
    )
    model = mfrec.train(mfrec.data.load(out), {"model": "mf", "factors": 2, "epochs": 3})
    assert "rating_map" not in model.config
    bias, vec = model.fold_in_user([0, 1], [4.0, 4.0])
    assert np.isfinite(bias) and np.all(np.isfinite(vec))
    assert model.rating(np.array([3.0, 6.0])).tolist() == [3.0, 5.0]  # clipped without a map


def test_rating_map_is_fitted_on_at_most_the_cap_of_training_ratings(small_dataset, monkeypatch):
    import mfrec.models.als as als_module
    from mfrec.models.factor import fit_rating_map

    full = mfrec.train(small_dataset, {"model": "mf", "factors": 4, "epochs": 2, "seed": 3})
    monkeypatch.setattr(als_module, "RATING_MAP_MAX_RATINGS", 40)
    capped = mfrec.train(small_dataset, {"model": "mf", "factors": 4, "epochs": 2, "seed": 3})
    held = "val" if small_dataset.val is not None and len(small_dataset.val) else "train"
    assert full.config["rating_map"]["fitted_on"] == capped.config["rating_map"]["fitted_on"] == held
    split = small_dataset.val if held == "val" else small_dataset.train
    assert full.config["rating_map"]["n"] == len(split) > 40 and capped.config["rating_map"]["n"] == 40
    # the capped map is the one fitted on the 40 evenly spaced pairs (by-user order when fitted on train)
    take = np.unique(np.linspace(0, len(split) - 1, 40).round().astype(np.int64))
    if held == "train":
        csr = small_dataset.train_by_user
        users = np.searchsorted(csr.indptr, take, side="right") - 1
        movies, ratings = np.asarray(csr.indices)[take], np.asarray(csr.values)[take]
    else:
        users, movies, ratings = (np.asarray(split.user)[take], np.asarray(split.movie)[take],
                                  np.asarray(split.rating)[take])
    expect = fit_rating_map(capped.predict(users, movies, clip=False), ratings, capped.rating_scale)
    assert capped.config["rating_map"]["a"] == pytest.approx(expect["a"], rel=1e-6)
    assert capped.config["rating_map"]["b"] == pytest.approx(expect["b"], rel=1e-6)
