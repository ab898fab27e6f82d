"""``mfrec tune``: grid parsing, the search on a problem whose best setting is known, resuming,
failed trials, the files it writes and ``Main.py --config best.json``."""

from __future__ import annotations

import csv
import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from mfrec.errors import MfrecError
from mfrec.tuning import lower_is_better, parse_grid, settings_of, tune

# ratings = 3 + b_u + b_i + noise with b ~ N(0, 0.5^2) and noise ~ N(0, 1): the ridge penalty that
# predicts held-out ratings best is noise variance / bias variance = 4, so among reg_bias
# 0.01 (no shrinkage), 4 and 1000 (all biases ~ 0) the search must choose 4.
BEST_REG_BIAS = 4.0
GRID = {"reg_bias": [0.01, BEST_REG_BIAS, 1000.0]}


@pytest.fixture(scope="module")
def bias_problem(tmp_path_factory):
    import mfrec.data
    from mfrec.data.store import write_dataset

    rng = np.random.default_rng(5)
    nu, nm = 300, 120
    bu, bi = rng.normal(0, 0.5, nu), rng.normal(0, 0.5, nm)
    mask = rng.random((nu, nm)) < 0.12
    user, movie = np.nonzero(mask)
    rating = 3.0 + bu[user] + bi[movie] + rng.normal(0, 1.0, len(user))
    split = np.where(rng.random(len(user)) < 0.25, 1, 0).astype(np.int8)  # 25% validation, no test
    gp = np.arange(nm + 1, dtype=np.int64)
    out = write_dataset(
        tmp_path_factory.mktemp("Training_data") / "biases",
        user=user.astype(np.int32), movie=movie.astype(np.int32), rating=rating.astype(np.float32),
        timestamp=np.arange(len(user), dtype=np.int64), split=split, n_users=nu, n_movies=nm,
        movies=pl.DataFrame({"movie": np.arange(nm, dtype=np.int32), "movieId": np.arange(1, nm + 1),
                             "title": [f"m{i}" for i in range(nm)], "year": np.full(nm, 2000, np.int32),
                             "genres": [["Drama"]] * nm}),
        users=pl.DataFrame({"user": np.arange(nu, dtype=np.int32), "userId": np.arange(1, nu + 1)}),
        genres=["Drama"], genre_indptr=gp, genre_indices=np.zeros(nm, np.int32),
        manifest={"name": "biases", "dataset": "synthetic", "rating_scale": [-10.0, 15.0], "seed": 0},
    )
    return mfrec.data.load(out)


def test_parse_grid_types_values_like_the_options_defaults():
    grid = parse_grid(["factors=16,64", "reg=0.2,0.4", "weighted-reg=true,false", "solver=cg,cholesky"], "mf")
    assert grid == {"factors": [16, 64], "reg": [0.2, 0.4], "weighted_reg": [True, False], "solver": ["cg", "cholesky"]}
    assert all(isinstance(v, int) for v in grid["factors"]) and all(isinstance(v, float) for v in grid["reg"])


@pytest.mark.parametrize("items, message", [
    (["nonsense=1,2"], "has no option 'nonsense'"),
    (["factors=16,sixty"], "is not a int"),
    (["factors"], "NAME=V1,V2"),
    (["reg=0.1", "reg=0.2"], "given twice"),
    ([], "at least one --grid"),
])
def test_parse_grid_refuses_bad_items_in_one_sentence(items, message):
    with pytest.raises(MfrecError, match=message):
        parse_grid(items, "mf")


def test_settings_are_the_whole_grid_or_a_seeded_sample_of_it():
    grid = {"factors": [16, 32, 64], "reg": [0.1, 0.2, 0.4, 0.8]}
    full = settings_of(grid)
    assert len(full) == 12 and full[0] == {"factors": 16, "reg": 0.1} and full[-1] == {"factors": 64, "reg": 0.8}
    sample = settings_of(grid, random=5, seed=3)
    assert len(sample) == 5 and all(s in full for s in sample) and len({json.dumps(s) for s in sample}) == 5
    assert sample == settings_of(grid, random=5, seed=3) and sample != settings_of(grid, random=5, seed=4)
    assert settings_of(grid, random=50) == full


def test_metric_direction():
    assert lower_is_better("val_rmse") and lower_is_better("val_loss")
    assert not lower_is_better("val_ndcg@10") and not lower_is_better("val_hit@10")


def _leaderboard(path):
    with open(path / "leaderboard.csv") as f:
        return list(csv.DictReader(f))


def test_tune_finds_the_known_best_and_writes_its_files(bias_problem, tmp_path):
    result = tune(bias_problem, "bias", GRID, options={"epochs": 4}, workers=2, runs_root=tmp_path)
    assert result.best is not None and result.best.setting == {"reg_bias": BEST_REG_BIAS}
    rows = _leaderboard(result.path)
    assert [float(r["reg_bias"]) for r in rows][0] == BEST_REG_BIAS and float(rows[-1]["reg_bias"]) == 1000.0
    values = [float(r["val_rmse"]) for r in rows]
    assert values == sorted(values) and all(r["status"] == "ok" for r in rows)
    assert not any("test" in column for column in rows[0])  # the test split plays no part
    assert result.figure.stat().st_size > 10_000
    best = json.loads(result.best_config.read_text())
    assert best["model"] == "bias" and best["reg_bias"] == BEST_REG_BIAS and best["train_with_validation"] is True
    assert best["epochs"] == best["tuned"]["best_epoch"] == result.best.summary["best_epoch"]
    assert best["tuned"]["metric"] == "val_rmse" and best["tuned"]["value"] == pytest.approx(values[0])
    # every trial is an ordinary run folder under the parent, with one Numba thread per parallel trial
    trials = sorted(p for p in result.path.iterdir() if p.is_dir())
    assert len(trials) == 3 and all((p / "model.npz").is_file() for p in trials)
    assert {json.loads((p / "config.json").read_text())["threads"] for p in trials} == {1}


def test_a_rerun_resumes_only_the_trials_not_done(bias_problem, tmp_path):
    first = tune(bias_problem, "bias", GRID, options={"epochs": 2}, workers=1, runs_root=tmp_path)
    # lose one trial as a kill would (no summary), then search again
    lost = next(p for p in first.path.iterdir() if p.name.startswith("trial002"))
    (lost / "summary.json").unlink()
    steps = []
    second = tune(bias_problem, "bias", GRID, options={"epochs": 2}, workers=1, runs_root=tmp_path,
                  callback=steps.append)
    assert second.path == first.path
    assert [t.resumed for t in sorted(second.trials, key=lambda t: t.number)] == [True, False, True]
    assert steps[0].advance == 2 and steps[0].total == 3  # the bar starts at the two trials already done
    assert second.best.setting == {"reg_bias": BEST_REG_BIAS}


def test_a_failed_trial_is_a_leaderboard_row_not_the_end(bias_problem, tmp_path):
    # reg_bias -1 fails validation in its trial; the others finish
    result = tune(bias_problem, "bias", {"reg_bias": [BEST_REG_BIAS, -1.0]}, options={"epochs": 2}, workers=2,
                  runs_root=tmp_path)
    rows = _leaderboard(result.path)
    assert [r["status"] for r in rows] == ["ok", "failed"] and "reg_bias" in rows[1]["error"]
    assert result.best.setting == {"reg_bias": BEST_REG_BIAS}


def test_tune_refuses_a_dataset_without_validation(tmp_path):
    from types import SimpleNamespace

    with pytest.raises(MfrecError, match="no validation split"):
        tune(SimpleNamespace(name="no-val", val=None), "bias", GRID, runs_root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_tune_on_dask_finds_the_same_best(bias_problem, tmp_path, dask_scheduler):
    result = tune(bias_problem, "bias", GRID, options={"epochs": 4}, scheduler=dask_scheduler, runs_root=tmp_path)
    assert result.best.setting == {"reg_bias": BEST_REG_BIAS}
    assert all(t.status == "ok" for t in result.trials)


def test_cli_tune_then_main_py_config_best_json(bias_problem, tmp_path):
    from mfrec.cli import main

    runner = CliRunner()
    out = runner.invoke(main, ["tune", "--data", str(bias_problem.path), "--model", "bias",
                               "--grid", "reg-bias=0.01,4,1000", "--set", "epochs=3", "--workers", "2",
                               "--runs-root", str(tmp_path), "--quiet"])
    assert out.exit_code == 0, out.output
    assert "leaderboard (3 trials, val_rmse" in out.output and "best: reg_bias=4.0" in out.output
    best = next(tmp_path.glob("tune-*/best.json"))
    again = runner.invoke(main, ["train", "--data", str(bias_problem.path), "--config", str(best), "--epochs", "2",
                                 "--runs-root", str(tmp_path / "retrain"), "--quiet"])
    assert again.exit_code == 0, again.output
    folder = next((tmp_path / "retrain").glob("*/"))
    config = json.loads((folder / "config.json").read_text())
    assert config["model"] == "bias" and config["reg_bias"] == 4.0 and config["epochs"] == 2  # the command line wins
    summary = json.loads((folder / "summary.json").read_text())
    assert config["trained_on"] == "train+validation" and summary["n_val"] == 0
    assert summary["n_train"] == len(bias_problem.train) + len(bias_problem.val)


def test_train_with_validation_moves_the_validation_ratings_into_train(bias_problem):
    merged = bias_problem.train_with_validation()
    assert merged.val is None and merged.validation_in_train and not bias_problem.validation_in_train
    assert len(merged.train) == len(bias_problem.train) + len(bias_problem.val)
    for csr, n in ((merged.train_by_user, bias_problem.n_users), (merged.train_by_movie, bias_problem.n_movies)):
        assert csr.n_rows == n and csr.indptr[-1] == len(merged.train)
    counts = np.bincount(np.concatenate([bias_problem.train.user, bias_problem.val.user]), minlength=bias_problem.n_users)
    np.testing.assert_array_equal(merged.train_by_user.row_counts(), counts)
    # every (user, movie, rating) is where the movie CSR says
    u = np.repeat(np.arange(bias_problem.n_movies), merged.train_by_movie.row_counts())
    by_movie = set(zip(np.asarray(merged.train_by_movie.indices).tolist(), u.tolist(),
                       np.asarray(merged.train_by_movie.values).tolist()))
    assert by_movie == set(zip(merged.train.user.tolist(), merged.train.movie.tolist(), merged.train.rating.tolist()))
    assert merged.test is bias_problem.test or (merged.test is None and bias_problem.test is None)


def test_config_file_model_must_agree_with_model(bias_problem, tmp_path):
    from mfrec.cli import main

    f = tmp_path / "best.json"
    f.write_text(json.dumps({"model": "bias", "reg_bias": 4.0}))
    out = CliRunner().invoke(main, ["train", "--data", str(bias_problem.path), "--config", str(f), "--model", "mf",
                                    "--runs-root", str(tmp_path)])
    assert out.exit_code == 2 and "disagrees" in out.output


def test_the_core_never_imports_dask_and_a_missing_extra_names_its_install(monkeypatch):
    import subprocess
    import sys

    code = ("import sys, mfrec.training, mfrec.tuning, mfrec.models.dask_als, mfrec.cli.tune, mfrec.cli.train; "
            "print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from mfrec.errors import ModelError
    from mfrec.models.dask_als import dask_client

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ModelError, match=r'pip install -e "\.\[dask\]"'):
        dask_client(workers=1)
