"""The contract every model kind keeps, as a mixin each kind's test class inherits.

A run trained through the real command (``Main.py``), loaded back with ``load_experiment``: the model
file round-trips bit-exactly through the one loader, a new user is folded in exactly as the NumPy
reference in tests/naive.py computes it (the effective movie factors rebuilt from the genre lists,
the ridge solved densely with the penalties the run's config.json states), unknown ids raise, the
same seed gives the same model, and the movies a made-up user gave never come back.

ALS models (bias, mf, mf-genre), the neural models that export factors (neumf, genre-embedding) and EASE
all inherit it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import mfrec
from mfrec.errors import MfrecError
from mfrec.models.factor import FactorModel
from naive import naive_effective_movie_factors, naive_fold_in


class ModelContract:
    model: str = ""
    options: tuple[str, ...] = ()

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, small_dataset, tmp_path_factory):
        from mfrec.cli.train import train

        root = tmp_path_factory.mktemp(f"runs-{cls.model}")
        res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", cls.model, "--epochs", "3",
                                         "--patience", "0", "--runs-root", str(root), "--quiet", *cls.options])
        assert res.exit_code == 0, res.output
        (path,) = [p for p in root.iterdir() if p.is_dir()]
        return mfrec.load_experiment(path)

    def expected_penalties(self, config: dict, model: FactorModel) -> tuple[float, float, bool, float]:
        """(reg, reg_bias, weighted, reg_exponent) of the user half-step, from the run's config.json."""
        return (config["reg"], config["reg_bias"], config["weighted_reg"], config["reg_exponent"])

    def test_model_file_round_trips_bit_exactly(self, run, tmp_path):
        model = run.factors
        again = FactorModel.load(model.save(tmp_path / "again.npz"))
        for key in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors", "user_ids", "movie_ids",
                    "effective_movie_factors"):
            a, b = getattr(model, key), getattr(again, key)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
        assert again.mu == model.mu and again.config == model.config
        test = run.dataset.test
        assert model.predict(test.user, test.movie).tobytes() == again.predict(test.user, test.movie).tobytes()

    def test_fold_in_matches_the_naive_reference(self, run):
        ds, model = run.dataset, run.factors
        csr = ds.train_by_user
        u = int(np.argmax(np.diff(csr.indptr)))  # the most active user
        movies, ratings = csr.indices[csr.indptr[u]:csr.indptr[u + 1]], csr.values[csr.indptr[u]:csr.indptr[u + 1]]
        folded = run.fold_in({int(ds.movie_ids.ids[m]): float(r) for m, r in zip(movies, ratings)})

        g = ds.movie_genres
        genre_lists = [list(g.indices[g.indptr[i]:g.indptr[i + 1]]) for i in range(ds.n_movies)]
        eff = naive_effective_movie_factors(model.movie_factors, model.genre_factors, genre_lists)
        config = json.loads((run.path / "config.json").read_text())
        reg, reg_bias, weighted, exponent = self.expected_penalties(config, model)
        prior = (model.prior_mean, model.prior_precision) if model.calibrated else None
        bias, vector = naive_fold_in(movies, ratings, model.mu, model.movie_bias, eff, reg, reg_bias, weighted, exponent,
                                     prior=prior)
        np.testing.assert_allclose(folded.bias, bias, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(folded.vector, vector, rtol=1e-3, atol=1e-4)

    def test_unknown_ids_raise_instead_of_guessing(self, run):
        with pytest.raises(MfrecError, match="999999"):
            run.recommend(user=999_999)
        with pytest.raises(MfrecError, match="999999"):
            run.recommend(rate={999_999: 4.0})

    def test_same_seed_same_model(self, run, tmp_path):
        from mfrec.training import train_run

        config = json.loads((run.path / "config.json").read_text())
        options = {k: v for k, v in config.items() if k not in ("model", "dataset", "data_path", "dataset_fingerprint", "device")}
        again, _ = train_run(run.dataset, self.model, options, runs_root=tmp_path)
        first, second = run.factors, FactorModel.load(again.path)
        for key in ("user_bias", "movie_bias", "user_factors", "movie_factors", "genre_factors"):
            np.testing.assert_array_equal(getattr(second, key), getattr(first, key), err_msg=key)

    def test_given_movies_are_never_recommended_back(self, run):
        ids = [int(x) for x in run.dataset.movie_ids.ids[:5]]
        table = run.recommend(rate={i: 5.0 for i in ids}, top=50)
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


class NeuralExportContract(ModelContract):
    """neumf and genre-embedding runs export factors.npz; their fold-in is the ridge their loss amounts
    to: reg x n on the factors (exponent 1), the bias held at zero when the model has no biases."""

    options = ("--factors", "6", "--batch-size", "256", "--set", "genre_epochs=2")

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, small_dataset, tmp_path_factory):
        pytest.importorskip("torch", reason='the neural models need the torch extra: pip install -e ".[torch]"')
        from mfrec.cli.train import train

        root = tmp_path_factory.mktemp(f"runs-{cls.model}")
        options = [o for o in cls.options]
        if cls.model != "genre-embedding":
            options = options[:4]
        res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", cls.model, "--epochs", "2",
                                         "--patience", "0", "--runs-root", str(root), "--quiet", *options])
        assert res.exit_code == 0, res.output
        (path,) = [p for p in root.iterdir() if p.is_dir()]
        return mfrec.load_experiment(path)

    def expected_penalties(self, config: dict, model: FactorModel) -> tuple[float, float, bool, float]:
        has_bias = bool(np.any(model.user_bias) or np.any(model.movie_bias))
        return (config["reg"], 1.0 if has_bias else 1e6, True, 1.0)


@pytest.mark.torch
class TestNeumfContract(NeuralExportContract):
    model = "neumf"


@pytest.mark.torch
class TestGenreEmbeddingContract(NeuralExportContract):
    model = "genre-embedding"


class TestEaseContract(ModelContract):
    """EASE keeps the same contract with its own file and fold-in: ease.npz round-trips bit-exactly, a
    made-up user's scores are x · B with B from the paper's formula (tests/naive.py), unknown ids raise,
    refitting gives the same B, and the given movies never come back (with no predicted rating shown:
    EASE scores are not ratings)."""

    model = "ease"

    @pytest.fixture(scope="class")
    @classmethod
    def run(cls, small_dataset, tmp_path_factory):
        from mfrec.cli.train import train

        root = tmp_path_factory.mktemp("runs-ease")
        res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "ease", "--reg", "20",
                                         "--runs-root", str(root), "--quiet"])
        assert res.exit_code == 0, res.output
        (path,) = [p for p in root.iterdir() if p.is_dir()]
        return mfrec.load_experiment(path)

    def test_model_file_round_trips_bit_exactly(self, run, tmp_path):
        from mfrec.models.ease import EaseModel

        model = run.model
        again = EaseModel.load(model.save(tmp_path / "again.npz"))
        for key in ("B", "x_indptr", "x_indices", "x_values", "user_ids", "movie_ids"):
            a, b = getattr(model, key), getattr(again, key)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
        assert again.config == model.config

    def test_fold_in_matches_the_naive_reference(self, run):
        from naive import naive_ease

        ds = run.dataset
        X = np.zeros((ds.n_users, ds.n_movies))
        X[np.asarray(ds.train.user), np.asarray(ds.train.movie)] = 1.0
        B = naive_ease(X, json.loads((run.path / "config.json").read_text())["reg"])
        movies = [int(m) for m in np.argsort(-X.sum(0))[:4]]
        table = run.recommend(rate={int(ds.movie_ids.ids[m]): 3.0 for m in movies}, top=20, min_ratings=0)
        x = np.zeros(ds.n_movies)
        x[movies] = 1.0
        expected = x @ B
        for movie_id, score in zip(table["movieId"], table["ease_score"]):
            assert score == pytest.approx(expected[ds.movie_ids.index_of(int(movie_id))], rel=1e-3, abs=1e-5)
        with pytest.raises(MfrecError, match="no user factors"):
            run.fold_in(rate={int(ds.movie_ids.ids[movies[0]]): 4.0})

    def test_same_seed_same_model(self, run, tmp_path):
        from mfrec.models.ease import EaseModel
        from mfrec.training import train_run

        again, _ = train_run(run.dataset, "ease", {"reg": run.model.reg}, runs_root=tmp_path)
        np.testing.assert_array_equal(EaseModel.load(again.path).B, run.model.B)

    def test_given_movies_are_never_recommended_back(self, run):
        ids = [int(x) for x in run.dataset.movie_ids.ids[:5]]
        table = run.recommend(rate={i: 5.0 for i in ids}, top=50)
        assert table.height > 0 and not set(table["movieId"].to_list()) & set(ids)
        assert "predicted_rating" not in table.columns  # EASE scores are not ratings


class TestIalsContract(ModelContract):
    """ials: mu and biases 0, and its fold-in is the implicit user half-step on the confidences of the
    ratings (checked against the dense reference over every movie, tests/naive.py)."""

    model = "ials"
    options = ("--factors", "6")

    def test_fold_in_matches_the_naive_reference(self, run):
        from naive import naive_implicit_rows

        from mfrec.models.confidence import confidence_of

        ds, model = run.dataset, run.factors
        csr = ds.train_by_user
        u = int(np.argmax(np.diff(csr.indptr)))
        movies, ratings = csr.indices[csr.indptr[u]:csr.indptr[u + 1]], csr.values[csr.indptr[u]:csr.indptr[u + 1]]
        folded = run.fold_in({int(ds.movie_ids.ids[m]): float(r) for m, r in zip(movies, ratings)})
        config = json.loads((run.path / "config.json").read_text())
        want = naive_implicit_rows(np.array([0, len(movies)]), movies, confidence_of(model, ratings),
                                   model.movie_factors, config["reg"], config["unobserved_weight"],
                                   config["reg_exponent"])[0]
        assert folded.bias == 0 and model.mu == 0 and not np.any(model.movie_bias)
        np.testing.assert_allclose(folded.vector, want, rtol=1e-3, atol=1e-5)

    def test_given_movies_are_never_recommended_back(self, run):
        ids = [int(x) for x in run.dataset.movie_ids.ids[:5]]
        table = run.recommend(rate={i: 5.0 for i in ids}, top=50)
        assert table.height > 0 and not set(table["movieId"].to_list()) & set(ids)
