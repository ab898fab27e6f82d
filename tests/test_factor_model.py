"""The persisted-model contract (``mfrec.models.factor.FactorModel``): schema, versions, old files,
damaged files, and the one fold-in checked against the NumPy reference in tests/naive.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mfrec.errors import DataError, ModelError
from mfrec.models.factor import FORMAT_VERSION, NPZ_KEYS, FactorModel
from naive import naive_effective_movie_factors, naive_fold_in

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
