"""The public API a newcomer finds: every saved thing has a documented loader, ``dir(mfrec)`` shows it,
result columns are named for what they hold, Predictions files are readable and never silently replaced,
and synthetic ratings say so in their dataset's name and manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_inference import make_run

README = Path(__file__).resolve().parents[1] / "README.md"


# -- loaders: every saved thing comes back through a documented public function ---------------------
def test_model_save_round_trips_through_mfrec_load_model(small_dataset, tmp_path):
    import mfrec

    model = mfrec.train(small_dataset, {"model": "mf-genre", "factors": 4, "epochs": 2, "seed": 1})
    model.save(tmp_path / "by-hand.npz")
    loaded = mfrec.load_model(tmp_path / "by-hand.npz")
    assert isinstance(loaded, mfrec.models.FactorModel)
    t = small_dataset.test
    np.testing.assert_array_equal(loaded.predict(t.user, t.movie), model.predict(t.user, t.movie))
    np.testing.assert_array_equal(loaded.effective_movie_factors, model.effective_movie_factors)
    assert mfrec.load_model is mfrec.models.load_model


def test_run_folder_round_trips_through_load_experiment_and_load_model(small_dataset, tmp_path):
    import mfrec

    run = make_run(tmp_path / "Experiments_", small_dataset, "mf", factors=4, epochs=2)
    exp = mfrec.load_experiment(run)
    from_folder = mfrec.load_model(run)  # a run folder means its model.npz
    np.testing.assert_array_equal(exp.model.user_factors, from_folder.user_factors)
    assert exp.recommend(like=[str(exp.recommender.movie_id_array[0])], n=3).height == 3


def test_prepared_folder_round_trips_through_data_load(small_raw, tmp_path):
    import mfrec
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    out, summary = prepare(small_raw, SplitSpec("random", 0.2, 0.0, seed=5), name="rt", root=tmp_path)
    ds = mfrec.data.load(out)
    assert mfrec.load_dataset is mfrec.data.load
    assert (ds.n_users, ds.n_movies, len(ds.ratings)) == (summary["users"], summary["movies"], summary["ratings"])
    assert len(ds.train) + len(ds.test) == summary["ratings"]


# neural weights: mfrec.neural.load_model round trips in tests/test_neural.py (sequential, attention), and a
# neural factors.npz through mfrec.load_model in test_rating_models_learn_save_and_reload.


# -- discoverable: __all__, __dir__, docstrings with examples, and a light import -------------------
def test_dir_and_all_list_the_public_functions():
    import mfrec

    for name in ("train", "load_experiment", "load_model", "load_dataset", "data", "models", "neural"):
        assert name in dir(mfrec) and name in mfrec.__all__
    for name in mfrec.__all__:
        assert getattr(mfrec, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mfrec.nope  # noqa: B018


@pytest.mark.parametrize("name", ["train", "load_model"])
def test_public_functions_show_an_example(name):
    import mfrec

    doc = getattr(mfrec, name).__doc__ or ""
    assert ">>> " in doc and f"mfrec.{name}(" in doc
    assert f"mfrec.{name}(" in (mfrec.__doc__ or "")  # help(mfrec) shows every loader in use


def test_import_mfrec_and_its_dir_stay_light():
    code = ("import sys, mfrec\n"
            "names = dir(mfrec); all_ = mfrec.__all__\n"
            "heavy = [m for m in ('numba', 'polars', 'torch') if m in sys.modules]\n"
            "print(heavy, 'train' in names and 'load_model' in names)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"
