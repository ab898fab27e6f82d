"""The Dask engine (``Main.py --engine dask``) against a LocalCluster of 2 worker processes: the same
model as one machine for any number of blocks, empty blocks, a killed worker."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

pytest.importorskip("distributed")

from mfrec.callbacks import EpochReport  # noqa: E402
from mfrec.models.als import fit  # noqa: E402
from mfrec.models.config import ALSConfig  # noqa: E402
from mfrec.data.blocks import blocks_by_count  # noqa: E402
from mfrec.models.dask_als import fit_dask, initial_rows  # noqa: E402


@pytest.fixture(scope="module")
def client(dask_scheduler):
    from distributed import Client

    with Client(dask_scheduler) as c:
        yield c


def test_blocks_are_contiguous_balanced_and_may_be_empty():
    indptr = np.cumsum([0] + [10] * 10)
    assert blocks_by_count(indptr, 2).tolist() == [0, 5, 10]
    b = blocks_by_count(indptr, 3)
    assert b[0] == 0 and b[-1] == 10 and np.all(np.diff(b) >= 0) and max(np.diff(b)) - min(np.diff(b)) <= 1
    heavy = np.cumsum([0, 1000, 1, 1])  # one row outweighs a block: the blocks after it are empty
    b = blocks_by_count(heavy, 4)
    assert b[0] == 0 and b[-1] == 3 and np.all(np.diff(b) >= 0) and (np.diff(b) == 0).any()
    assert blocks_by_count(np.array([0]), 3).tolist() == [0, 0, 0, 0]


def test_initial_rows_are_the_single_machine_draw_whatever_the_blocks():
    nu, nm, k = 50, 30, 4
    rng = np.random.default_rng(9)
    P = (rng.standard_normal((nu, k)) * 0.1).astype(np.float32)
    Q = (rng.standard_normal((nm, k)) * 0.1).astype(np.float32)
    np.testing.assert_array_equal(np.concatenate([initial_rows(9, 0, lo, hi, k, 0.1) for lo, hi in
                                                  ((0, 7), (7, 7), (7, 50))]), P)
    np.testing.assert_array_equal(initial_rows(9, nu, 11, 30, k, 0.1), Q[11:])


def _config(model, **kw):
    return ALSConfig.for_model(model, **{"factors": 8, "epochs": 3, "patience": 0, "threads": 1, **kw})


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_mf_genre_on_dask_is_the_single_machine_model(small_dataset, client, blocks):
    config = _config("mf-genre", train_metrics=True)
    local = fit(small_dataset, config)
    dist = fit_dask(small_dataset, config, client, n_blocks=blocks)
    assert dist.config["dask_blocks"] == blocks and dist.config["dask_workers"] == 2
    for a, b in zip(local.history, dist.history):
        assert b.train_rmse == pytest.approx(a.train_rmse, abs=1e-5)
        assert b.val_rmse == pytest.approx(a.val_rmse, abs=1e-4)
        assert a.test_rmse is None and b.test_rmse is None  # the test split is not read during training
    np.testing.assert_allclose(dist.user_factors, local.user_factors, atol=1e-4)
    np.testing.assert_allclose(dist.genre_factors, local.genre_factors, atol=1e-4)
    assert dist.evaluate(small_dataset.test)["rmse"] == pytest.approx(local.evaluate(small_dataset.test)["rmse"], abs=1e-4)


@pytest.mark.parametrize("model", ["bias", "mf"])
def test_bias_and_mf_on_dask(small_dataset, client, model):
    config = _config(model, solver="cholesky")
    local, dist = fit(small_dataset, config), fit_dask(small_dataset, config, client, n_blocks=2)
    assert dist.evaluate(small_dataset.test)["rmse"] == pytest.approx(local.evaluate(small_dataset.test)["rmse"], abs=1e-4)
    np.testing.assert_allclose(dist.movie_bias, local.movie_bias, atol=1e-4)


@pytest.fixture(scope="module")
def three_users(tmp_path_factory):
    """3 users x 4 movies, every pair rated, one of each split."""
    import polars as pl

    import mfrec.data
    from mfrec.data.store import write_dataset

    rng = np.random.default_rng(2)
    user, movie = np.divmod(np.arange(12), 4)
    split = np.zeros(12, np.int8)
    split[[3, 5]] = 1, 2
    out = write_dataset(
        tmp_path_factory.mktemp("Training_data") / "three",
        user=user.astype(np.int32), movie=movie.astype(np.int32), rating=rng.integers(1, 6, 12).astype(np.float32),
        timestamp=np.arange(12, dtype=np.int64), split=split, n_users=3, n_movies=4,
        movies=pl.DataFrame({"movie": np.arange(4, dtype=np.int32), "movieId": np.arange(1, 5),
                             "title": [f"m{i}" for i in range(4)], "year": np.full(4, 2000, np.int32),
                             "genres": [["Drama"], ["Comedy"], ["Drama", "Comedy"], []]}),
        users=pl.DataFrame({"user": np.arange(3, dtype=np.int32), "userId": np.arange(1, 4)}),
        genres=["Comedy", "Drama"], genre_indptr=np.array([0, 1, 2, 4, 4]), genre_indices=np.array([1, 0, 0, 1], np.int32),
        manifest={"name": "three", "dataset": "synthetic", "rating_scale": [1.0, 5.0], "seed": 0},
    )
    return mfrec.data.load(out)


def test_more_blocks_than_rows_leaves_empty_blocks_that_change_nothing(three_users, client):
    config = _config("mf-genre", factors=2, epochs=2, reg=0.5)
    assert (np.diff(blocks_by_count(three_users.train_by_user.indptr, 5)) == 0).sum() >= 2
    local, dist = fit(three_users, config), fit_dask(three_users, config, client, n_blocks=5)
    assert dist.history[-1].val_rmse == pytest.approx(local.history[-1].val_rmse, abs=1e-4)
    np.testing.assert_allclose(dist.user_factors, local.user_factors, atol=1e-4)


def test_train_run_on_dask_writes_the_same_folder_plus_the_engine(small_dataset, tmp_path, dask_scheduler):
    from mfrec import load_experiment
    from mfrec.training import train_run

    options = {"factors": 8, "epochs": 2, "patience": 0, "threads": 1}
    run, summary = train_run(small_dataset, "mf-genre", options, runs_root=tmp_path,
                             engine={"engine": "dask", "scheduler": dask_scheduler})
    local_run, local = train_run(small_dataset, "mf-genre", options, runs_root=tmp_path)
    assert summary["test_rmse"] == pytest.approx(local["test_rmse"], abs=1e-4)
    assert summary["engine"] == "dask" and summary["dask_workers"] == 2 and summary["dask_blocks"] == 2
    assert summary["bytes_between_workers_per_epoch"] > 0 and len(summary["worker_peak_rss_mb"]) == 2
    assert json.loads((run.path / "config.json").read_text())["engine"] == "dask"
    names = {p.name for p in run.path.iterdir()}
    assert names >= {"config.json", "metrics.csv", "train.log", "model.npz", "summary.json", "plots"}
    exp = load_experiment(run.path)  # the notebook API cannot tell the difference
    np.testing.assert_allclose(exp.model.predict([0, 1], [0, 1]), load_experiment(local_run.path).model.predict([0, 1], [0, 1]),
                               atol=1e-4)


def test_engine_options_are_refused_for_neural_models(small_dataset, tmp_path):
    from mfrec.errors import MfrecError
    from mfrec.training import train_run

    with pytest.raises(MfrecError, match="trains on this machine"):
        train_run(small_dataset, "neumf", {}, runs_root=tmp_path, engine={"engine": "dask", "workers": 1})
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_killed_worker_is_survived_or_fails_the_run_clearly(small_dataset, tmp_path):
    """Kill one of two workers after the first epoch: Dask either recomputes what it held (then the
    model is the single-machine one) or the run fails with a sentence and is marked failed."""
    from distributed import Client, LocalCluster

    from mfrec.models.dask_als import WorkerLostError
    from mfrec.training import train_run

    options = {"factors": 8, "epochs": 3, "patience": 0, "threads": 1}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        pids = c.run(os.getpid)
        victim = sorted(pids)[0]

        def kill_after_epoch_one(event):
            if isinstance(event, EpochReport) and event.epoch == 1:
                os.kill(pids[victim], signal.SIGKILL)

        try:
            run, summary = train_run(small_dataset, "mf", options, runs_root=tmp_path, callback=kill_after_epoch_one,
                                     engine={"engine": "dask", "scheduler": cluster.scheduler_address})
        except WorkerLostError as e:
            print("kill outcome: failed clearly:", e)
            assert "Dask fit stopped at epoch 2" in str(e)
            folder = next(tmp_path.iterdir())
            failed = json.loads((folder / "summary.json").read_text())
            assert failed["status"] == "failed" and "WorkerLostError" in failed["error"]
        else:
            print("kill outcome: recovered")
            _, local = train_run(small_dataset, "mf", options, runs_root=tmp_path / "local")
            assert summary["status"] == "ok" and summary["epochs_run"] == 3
            assert summary["test_rmse"] == pytest.approx(local["test_rmse"], abs=1e-4)


def test_block_files_are_what_the_workers_read(small_dataset, client, tmp_path):
    import shutil

    from mfrec.data import load
    from mfrec.data.blocks import find_blocks, read_block, write_blocks

    ds = load(shutil.copytree(small_dataset.path, tmp_path / "small"))
    folder = write_blocks(ds, 2)
    assert find_blocks(ds, 2) == folder and find_blocks(ds, 3) is None
    parts = [read_block(folder, "user", b) for b in range(2)]
    assert sum(len(p["values"]) for p in parts) == len(ds.train)
    np.testing.assert_array_equal(np.concatenate([p["values"] for p in parts]), np.asarray(ds.train_by_user.values))
    said = []
    config = _config("mf-genre", epochs=2)
    dist = fit_dask(ds, config, client, n_blocks=2, log=said.append)
    assert any("read their blocks from" in line for line in said)
    np.testing.assert_allclose(dist.user_factors, fit(ds, config).user_factors, atol=1e-4)
    # a damaged block file is one sentence naming it
    (folder / "movies-001.npz").write_bytes(b"not a zip")
    with pytest.raises(Exception, match="movies-001.npz is not a readable block file"):
        fit_dask(ds, config, client, n_blocks=2)
