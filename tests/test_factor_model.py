"""The persisted-model contract (``mfrec.models.factor.FactorModel``): schema, versions, old files,
damaged files, and the one fold-in checked against the NumPy reference in tests/naive.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mfrec.errors import DataError, ModelError
from mfrec.models.factor import FORMAT_VERSION, NPZ_KEYS, FactorModel
from naive import naive_effective_movie_factors, naive_fold_in, naive_population_prior

LEGACY = Path(__file__).parent / "fixtures" / "legacy-mf-genre-model.npz"


def _genre_lists(model):
    ptr, idx = model.genre_indptr, model.genre_indices
    return [list(idx[ptr[i]:ptr[i + 1]]) for i in range(model.n_movies)]


def test_legacy_file_loads_with_the_settings_it_was_trained_with():
    """A model.npz from before format versions and before reg_exponent existed: classic ALS-WR (exponent 1)."""
    with np.load(LEGACY, allow_pickle=False) as z:
        assert "format_version" not in z.files and "reg_exponent" not in json.loads(str(z["config_json"]))
    model = FactorModel.load(LEGACY)
    assert model.als_config.reg_exponent == 1.0 and model.kind == "mf-genre"
    settings = model.fold_in_settings
    assert (settings.reg, settings.reg_bias, settings.weighted, settings.reg_exponent) == (0.3, 0.5, True, 1.0)

    eff = naive_effective_movie_factors(model.movie_factors, model.genre_factors, _genre_lists(model))
    np.testing.assert_allclose(model.effective_movie_factors, eff, rtol=1e-6, atol=1e-6)
    movies, ratings = np.array([0, 1, 3, 4]), np.array([5.0, 3.0, 4.0, 1.0])
    bias, vec = model.fold_in_user(movies, ratings)
    ref_b, ref_v = naive_fold_in(movies, ratings, model.mu, model.movie_bias, eff, 0.3, 0.5, True, 1.0)
    np.testing.assert_allclose(bias, ref_b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vec, ref_v, rtol=1e-5, atol=1e-6)
    # the exponent matters here: the 0.75 default of newer runs would give another user
    _, other = naive_fold_in(movies, ratings, model.mu, model.movie_bias, eff, 0.3, 0.5, True, 0.75)
    assert np.abs(other - ref_v).max() > 1e-3


def test_save_writes_the_current_version_and_round_trips_bit_exactly(tmp_path):
    model = FactorModel.load(LEGACY)
    again = FactorModel.load(model.save(tmp_path / "m.npz"))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert int(z["format_version"]) == FORMAT_VERSION and set(NPZ_KEYS) <= set(z.files)
    for key in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors", "genre_indptr",
                "genre_indices", "user_ids", "movie_ids", "effective_movie_factors"):
        a, b = getattr(model, key), getattr(again, key)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
    assert again.mu == model.mu and again.config == model.config


def test_arrays_are_read_only_so_the_effective_factors_cannot_go_stale():
    model = FactorModel.load(LEGACY)
    for key in ("movie_factors", "genre_factors", "user_factors", "movie_bias", "effective_movie_factors"):
        with pytest.raises(ValueError):
            getattr(model, key)[0] = 1.0


def test_a_newer_format_is_refused_with_a_sentence(tmp_path):
    arrays = FactorModel.load(LEGACY).arrays()
    arrays["format_version"] = np.asarray(FORMAT_VERSION + 1)
    np.savez(tmp_path / "new.npz", **arrays)
    with pytest.raises(ModelError, match="newer than this mfrec reads"):
        FactorModel.load(tmp_path / "new.npz")


@pytest.mark.parametrize("damage", ["truncate", "empty", "missing-key", "bad-json", "bad-shape", "nan"])
def test_damaged_files_are_one_clear_model_error(tmp_path, damage):
    path = FactorModel.load(LEGACY).save(tmp_path / "model.npz")
    arrays = dict(np.load(path, allow_pickle=False))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        if damage == "missing-key":
            del arrays["movie_bias"]
        elif damage == "bad-json":
            arrays["config_json"] = np.asarray("{not json")
        elif damage == "bad-shape":
            arrays["user_factors"] = arrays["user_factors"][:, :2]
        elif damage == "nan":
            arrays["movie_factors"] = arrays["movie_factors"].copy()
            arrays["movie_factors"][1, 1] = np.nan
        np.savez(path, **arrays)
    with pytest.raises(ModelError, match=str(path)):
        FactorModel.load(path)


def test_fold_in_rejects_bad_rows():
    model = FactorModel.load(LEGACY)
    with pytest.raises(DataError, match="outside"):
        model.fold_in_user([0, 99], [4.0, 3.0])
    with pytest.raises(DataError, match="twice"):
        model.fold_in_user([1, 1], [4.0, 3.0])
    with pytest.raises(DataError, match="NaN"):
        model.fold_in_user([1, 2], [4.0, np.nan])


def test_fold_in_of_several_rows_is_each_row_alone():
    model = FactorModel.load(LEGACY)
    rows = [([0, 2], [4.0, 2.0]), ([5], [1.0]), ([1, 3, 4], [5.0, 5.0, 3.0])]
    indptr = np.cumsum([0] + [len(m) for m, _ in rows])
    bias, factors = model.fold_in(indptr, np.concatenate([m for m, _ in rows]), np.concatenate([r for _, r in rows]))
    for i, (m, r) in enumerate(rows):
        b, v = model.fold_in_user(m, r)
        assert bias[i] == pytest.approx(b, abs=1e-6) and np.allclose(factors[i], v, atol=1e-6)


def test_exported_neural_factors_fold_in_by_their_own_rule():
    """neumf-style factors: no biases, so a folded-in user's bias stays at zero; penalty reg x n."""
    rng = np.random.default_rng(3)
    model = FactorModel(3.6, np.zeros(4), np.zeros(7), rng.normal(size=(4, 3)), rng.normal(size=(7, 3)),
                        config={"model": "neumf", "exported_from": "neumf", "reg": 0.2})
    s = model.fold_in_settings
    assert (s.reg, s.weighted, s.reg_exponent) == (0.2, True, 1.0) and s.reg_bias >= 1e5
    with pytest.raises(ModelError, match="exported from neumf"):
        model.als_config
    movies, ratings = np.array([1, 4, 6]), np.array([5.0, 2.0, 4.0])
    bias, vec = model.fold_in_user(movies, ratings)
    ref_b, ref_v = naive_fold_in(movies, ratings, 3.6, model.movie_bias, model.movie_factors, 0.2, s.reg_bias, True, 1.0)
    assert abs(bias) < 1e-4 and np.allclose(vec, ref_v, atol=1e-4) and abs(ref_b) < 1e-4


def test_randomly_damaged_model_files_are_refused_in_one_sentence(tmp_path):
    """1,500 seeded byte flips, cuts and insertions: every one loads or is one ModelError naming the file
    (zipfile's own errors — encrypted, unsupported compression, broken headers — included)."""
    from test_corruption_matrix import _mutations

    path = FactorModel.load(LEGACY).save(tmp_path / "model.npz")
    original = path.read_bytes()
    refused = 0
    for mutated in _mutations(original, np.random.default_rng(15), 1500):
        path.write_bytes(mutated)
        try:
            FactorModel.load(path)
        except ModelError as e:
            refused += 1
            assert "\n" not in str(e) and str(path) in str(e)
    assert refused > 1000  # nearly every damage is noticed (a flip inside unused padding may not be)


# -- calibrated fold-in: the population prior ---------------------------------------------------
def _population(seed=5, n_movies=400, k=6, n_users=120, per_user=(20, 120), noise=0.5):
    """A model whose users were trained by the plain half-step on ratings drawn from true tastes, and the
    users' rows: what fit() leaves behind, at a size where every quantity can be checked densely."""
    rng = np.random.default_rng(seed)
    q = rng.normal(scale=0.5, size=(n_movies, k))
    bi = rng.normal(scale=0.4, size=n_movies)
    true_z = np.column_stack([rng.normal(scale=0.3, size=n_users), rng.normal(scale=0.6, size=(n_users, k))])
    base = FactorModel(3.5, np.zeros(n_users), bi, np.zeros((n_users, k)), q,
                       config={"model": "mf", "reg": 0.3, "reg_bias": 0.5, "weighted_reg": True, "reg_exponent": 0.75})
    rows, ratings = [], []
    for u in range(n_users):
        movies = rng.choice(n_movies, size=int(rng.integers(*per_user)), replace=False)
        r = 3.5 + bi[movies] + true_z[u, 0] + q[movies] @ true_z[u, 1:] + rng.normal(scale=noise, size=len(movies))
        rows.append(movies)
        ratings.append(r)
    indptr = np.cumsum([0] + [len(m) for m in rows])
    bu, pu = base.fold_in(indptr, np.concatenate(rows), np.concatenate(ratings), prior=False)
    return base, rows, ratings, indptr, bu, pu, noise ** 2


def test_population_prior_and_calibrated_fold_in_match_the_naive_references():
    from mfrec.models.factor import population_prior

    base, rows, _, indptr, bu, pu, noise_var = _population()
    s = base.fold_in_settings
    mean, precision = population_prior(indptr, np.concatenate(rows), base.effective_movie_factors, bu, pu, s, noise_var)
    ref_m, ref_p = naive_population_prior(rows, base.effective_movie_factors, bu, pu, s.reg, s.reg_bias, True, 0.75,
                                          noise_var)
    np.testing.assert_allclose(mean, ref_m, atol=1e-6)
    np.testing.assert_allclose(precision, ref_p, rtol=1e-6, atol=1e-6)
    model = FactorModel(base.mu, bu, base.movie_bias, pu, base.movie_factors, config=base.config,
                        prior_mean=mean, prior_precision=precision)
    assert model.calibrated and not base.calibrated
    movies, ratings = np.array([3, 17, 40, 99]), np.array([5.0, 4.0, 5.0, 1.0])
    bias, vec = model.fold_in_user(movies, ratings)
    ref_b, ref_v = naive_fold_in(movies, ratings, model.mu, model.movie_bias, model.effective_movie_factors, s.reg,
                                 s.reg_bias, True, 0.75, prior=(mean, precision))
    np.testing.assert_allclose(bias, ref_b, atol=1e-5)
    np.testing.assert_allclose(vec, ref_v, atol=1e-5)
    # no ratings at all: the population's user (its mean, the bias held by reg_bias as in training)
    b0, v0 = model.fold_in_user(np.zeros(0, np.int32), np.zeros(0))
    ref_b, ref_v = naive_fold_in(np.zeros(0, int), np.zeros(0), model.mu, model.movie_bias, model.effective_movie_factors,
                                 s.reg, s.reg_bias, True, 0.75, prior=(mean, precision))
    np.testing.assert_allclose(np.r_[b0, v0], np.r_[ref_b, ref_v], atol=1e-5)


def test_a_long_history_reproduces_the_training_user_step_and_a_short_one_is_shrunk():
    from mfrec.models.factor import population_prior

    base, rows, _, indptr, bu, pu, noise_var = _population(n_movies=3000, per_user=(20, 150))
    mean, precision = population_prior(indptr, np.concatenate(rows), base.effective_movie_factors, bu, pu,
                                       base.fold_in_settings, noise_var)
    model = FactorModel(base.mu, bu, base.movie_bias, pu, base.movie_factors, config=base.config,
                        prior_mean=mean, prior_precision=precision)
    rng = np.random.default_rng(11)
    taste = np.r_[0.2, rng.normal(scale=0.6, size=model.k)]
    gaps = {}
    for n in (4, 40, 400, 2500):
        movies = rng.choice(model.n_movies, size=n, replace=False)
        r = model.mu + model.movie_bias[movies] + taste[0] + model.movie_factors[movies] @ taste[1:] \
            + rng.normal(scale=0.5, size=n)
        plain = np.r_[model.fold_in_user(movies, r, prior=False)[0], model.fold_in_user(movies, r, prior=False)[1]]
        calibrated = np.r_[model.fold_in_user(movies, r)[0], model.fold_in_user(movies, r)[1]]
        scores = lambda z: model.score_movies(z[0], z[1:].astype(np.float32))  # noqa: E731
        gaps[n] = float(np.abs(scores(calibrated) - scores(plain)).max())
        # the prior pulls towards the population: the calibrated user is nearer its mean than the plain one
        assert np.linalg.norm(calibrated - mean) < np.linalg.norm(plain - mean)
    assert gaps[4] > gaps[40] > gaps[400] > gaps[2500]
    assert gaps[2500] < 0.02  # a long history: the training user step, to within 0.02 on every score
    assert gaps[4] > 0.1  # a short one is visibly shrunk


def test_calibrated_prior_round_trips_and_damaged_priors_are_refused(tmp_path):
    from mfrec.models.factor import population_prior

    base, rows, _, indptr, bu, pu, noise_var = _population()
    mean, precision = population_prior(indptr, np.concatenate(rows), base.effective_movie_factors, bu, pu,
                                       base.fold_in_settings, noise_var)
    model = FactorModel(base.mu, bu, base.movie_bias, pu, base.movie_factors, config=base.config,
                        prior_mean=mean, prior_precision=precision)
    again = FactorModel.load(model.save(tmp_path / "m.npz"))
    assert again.prior_mean.tobytes() == model.prior_mean.tobytes()
    assert again.prior_precision.tobytes() == model.prior_precision.tobytes()
    with pytest.raises(ModelError, match="needs both or neither"):
        FactorModel(base.mu, bu, base.movie_bias, pu, base.movie_factors, prior_mean=mean)
    with pytest.raises(ModelError, match="shape"):
        FactorModel(base.mu, bu, base.movie_bias, pu, base.movie_factors, prior_mean=mean[:-1],
                    prior_precision=precision)
    bad = precision.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        FactorModel(base.mu, bu, base.movie_bias, pu, base.movie_factors, prior_mean=mean, prior_precision=bad)
