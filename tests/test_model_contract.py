"""The contract every ALS model keeps, as a mixin each model's test class inherits (bias, mf, mf-genre).

A run trained through the real command, loaded back with ``load_experiment``: the model file round-trips
bit-exactly, a new user is folded in by exactly the training user step, unknown ids raise, the same
seed gives the same model, and the movies a made-up user gave never come back as recommendations.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import mfrec
from mfrec.errors import MfrecError
from mfrec.kernels.als import solve_rows
from mfrec.models.als import ALSModel


class ModelContract:
    model: str = ""
    options: tuple[str, ...] = ()

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, small_dataset, tmp_path_factory):
        from mfrec.cli.train import train

        root = tmp_path_factory.mktemp(f"runs-{cls.model}")
        res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", cls.model, "--epochs", "3",
                                         "--patience", "0", "--root", str(root), "--quiet", *cls.options])
        assert res.exit_code == 0, res.output
        (path,) = [p for p in root.iterdir() if p.is_dir()]
        return mfrec.load_experiment(path)

    def test_model_file_round_trips_bit_exactly(self, run, tmp_path):
        model = run.model
        again = ALSModel.load(model.save(tmp_path / "again.npz"))
        for key in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors", "user_ids", "movie_ids"):
            a, b = getattr(model, key), getattr(again, key)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
        assert again.mu == model.mu and again.config == model.config
        test = run.dataset.test
        assert model.predict(test.user, test.movie).tobytes() == again.predict(test.user, test.movie).tobytes()

    def test_fold_in_is_the_training_user_step(self, run):
        ds, model = run.dataset, run.model
        csr = ds.train_by_user
        u = int(np.argmax(np.diff(csr.indptr)))  # the most active user
        sl = slice(csr.indptr[u], csr.indptr[u + 1])
        ratings = {int(ds.movie_ids.ids[m]): float(r) for m, r in zip(csr.indices[sl], csr.values[sl])}
        folded = run.fold_in(ratings)
        c = model.config
        factors, bias = solve_rows(csr.indptr, csr.indices, csr.values, model.effective_movie_factors, model.movie_bias,
                                   model.mu, reg=c.reg, reg_bias=c.reg_bias, weighted=c.weighted_reg,
                                   reg_exponent=c.reg_exponent)
        np.testing.assert_allclose(folded.bias, bias[u], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(folded.vector, factors[u], rtol=1e-4, atol=1e-5)

    def test_unknown_ids_raise_instead_of_guessing(self, run):
        with pytest.raises(MfrecError, match="999999"):
            run.recommend(user=999_999)
        with pytest.raises(MfrecError, match="999999"):
            run.recommend(ratings={999_999: 4.0})

    def test_same_seed_same_model(self, run):
        again = mfrec.train(run.dataset, {k: v for k, v in run.model.config.to_dict().items() if k != "rating_scale"})
        for key in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors"):
            np.testing.assert_array_equal(getattr(again, key), getattr(run.model, key), err_msg=key)

    def test_given_movies_are_never_recommended_back(self, run):
        ids = [int(x) for x in run.dataset.movie_ids.ids[:5]]
        table = run.recommend(ratings={i: 5.0 for i in ids}, n=50)
        assert table.height > 0 and not set(table["movieId"].to_list()) & set(ids)
        lo, hi = run.dataset.rating_scale
        assert table["predicted_rating"].is_between(lo, hi).all()


class TestBiasContract(ModelContract):
    model = "bias"


class TestMfContract(ModelContract):
    model = "mf"
    options = ("--factors", "6")


class TestMfGenreContract(ModelContract):
    model = "mf-genre"
    options = ("--factors", "6")
