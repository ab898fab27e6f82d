"""Main.py / `mfrec train` through click's CliRunner: complete run folders, failures marked failed."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from mfrec.cli.train import train
from mfrec import load_experiment

FILES = ("config.json", "metrics.csv", "train.log", "model.npz", "summary.json", "plots/rmse.png")
SUMMARY_FIELDS = ("status", "dataset", "model", "config", "epochs_run", "best_epoch", "train_rmse", "val_rmse",
                  "test_rmse", "test_mae", "train_seconds", "seconds_per_epoch", "peak_rss_mb", "versions", "finished")


def _only_run(root):
    runs = [d for d in root.iterdir() if d.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.mark.parametrize("model,extra", [("bias", []), ("mf", ["--solver", "cg", "--cg-steps", "2"]),
                                         ("mf-genre", ["--no-weighted-reg", "--reg", "5"])])
def test_train_writes_a_complete_folder(small_dataset, tmp_path, model, extra):
    root = tmp_path / "Experiments_"
    args = ["--data", str(small_dataset.path), "--model", model, "--epochs", "3", "--factors", "4",
            "--runs-root", str(root), "--name", "t", "--quiet", *extra]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    run = _only_run(root)
    assert run.name.startswith("t-")
    for f in FILES:
        assert (run / f).is_file(), f
    assert (run / "plots/rmse.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run / "summary.json").read_text())
    for key in SUMMARY_FIELDS:
        assert key in summary, key
    assert summary["status"] == "ok" and summary["model"] == model and summary["epochs_run"] >= 1
    assert 0.3 < summary["test_rmse"] < 1.5
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model and config["data_path"] == str(small_dataset.path.resolve())
    assert config["seed"] == 42 and ("weighted_reg" in config)
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_rmse,val_rmse,test_rmse,seconds" and len(lines) == summary["epochs_run"] + 1
    assert "test RMSE" in result.output and str(run) in result.output

    exp = load_experiment(run)
    assert exp.summary == summary and exp.config == config
    with np.load(run / "model.npz", allow_pickle=False) as z:
        for key in ("user_factors", "movie_factors", "user_bias", "movie_bias", "genre_factors"):
            assert z[key].tobytes() == getattr(exp.model, key).tobytes()
    test = exp.dataset.test
    assert exp.model.evaluate(test)["rmse"] == pytest.approx(summary["test_rmse"], rel=1e-12)
    assert exp.movies.height == small_dataset.n_movies


def test_defaults_alone_train_mf_genre(small_dataset, tmp_path):
    result = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--runs-root", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((_only_run(tmp_path) / "summary.json").read_text())
    assert summary["model"] == "mf-genre" and summary["config"]["factors"] > 0


def test_failed_run_is_marked_failed(small_dataset, tmp_path, monkeypatch):
    import mfrec.models.als as als
    from mfrec.models import NonFiniteFactorsError

    def explode(*args, **kwargs):
        raise NonFiniteFactorsError("epoch 1: movie_factors contain NaN or inf")

    monkeypatch.setattr(als, "fit", explode)
    result = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "mf", "--runs-root", str(tmp_path)])
    assert result.exit_code == 2 and "NaN" in result.output
    assert "Traceback" not in result.output
    run = _only_run(tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "NaN" in summary["error"]
    assert "FAILED" in (run / "train.log").read_text()
    assert not (run / "model.npz").exists()


def test_bad_options_leave_no_folder(small_dataset, tmp_path):
    result = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--factors", "0", "--runs-root", str(tmp_path)])
    assert result.exit_code == 2 and "factors" in result.output
    result = CliRunner().invoke(train, ["--data", str(tmp_path / "nope"), "--runs-root", str(tmp_path)])
    assert result.exit_code == 2 and "no prepared dataset" in result.output
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("absent", ["mfrec.neural", "torch"])
def test_neural_model_without_the_extra_leaves_no_run_folder(small_dataset, tmp_path, monkeypatch, absent):
    monkeypatch.setitem(sys.modules, absent, None)  # import fails as if absent
    result = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "neumf", "--runs-root", str(tmp_path)])
    assert result.exit_code == 2 and "torch" in result.output and "Traceback" not in result.output
    assert 'pip install -e ".[torch]"' in result.output
    assert not any(tmp_path.iterdir())  # nothing for `mfrec compare` to list as a failed run


def test_neural_hook_gets_dataset_options_and_run(small_dataset, tmp_path, monkeypatch):
    import types

    seen = {}

    from mfrec.callbacks import EpochReport

    def fit(dataset, model_name, opts, config, run, callback=None):
        seen.update(dataset=dataset, model=model_name, options=opts, run=run)
        callback(EpochReport(1, 0.9, None, 0.95, 2.0, 1, False, {"val_hit@10": 0.5}, "epoch 1: a fake epoch"))
        return {"test_rmse": 0.95, "epochs_run": 1, "best_epoch": 1}

    def resolve(dataset, model_name, options):
        return dict(options), {"model": model_name, "dataset": dataset.name, **options}

    fake = types.SimpleNamespace(fit=fit, resolve=resolve, extra_columns=lambda model: ("val_hit@10",))
    monkeypatch.setitem(sys.modules, "mfrec.neural", fake)
    result = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "attention", "--lr", "0.01",
                                        "--batch-size", "64", "--device", "cpu", "--runs-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen["model"] == "attention" and seen["options"]["lr"] == 0.01 and seen["options"]["batch_size"] == 64
    summary = json.loads((seen["run"].path / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["test_rmse"] == 0.95 and summary["model"] == "attention"
    # the model's own metric columns are in metrics.csv, and the epoch report became a row and a log line
    lines = (seen["run"].path / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,train_rmse,val_rmse,test_rmse,seconds,val_hit@10", "1,0.9,,0.95,2.0,0.5"]
    assert "epoch 1: a fake epoch" in (seen["run"].path / "train.log").read_text()


def test_help_lists_models_and_defaults():
    result = CliRunner().invoke(train, ["--help"])
    assert result.exit_code == 0
    for word in ("bias", "mf-genre", "--weighted-reg", "--solver", "--cg-steps", "Defaults per model"):
        assert word in result.output


def test_set_passes_typed_model_options_to_the_neural_hook(small_dataset, tmp_path, monkeypatch):
    import types

    seen = {}

    def fit(dataset, model_name, opts, config, run, callback=None):
        seen.update(opts)
        return {"epochs_run": 1}

    defaults = {"min_length": 5, "dropout": 0.1, "self_pair": True, "factors": 256}
    fake = types.SimpleNamespace(fit=fit, resolve=lambda d, m, o: (dict(o), {"model": m}), extra_columns=lambda m: (),
                                 default_options=lambda m: defaults)
    monkeypatch.setitem(sys.modules, "mfrec.neural", fake)
    args = ["--data", str(small_dataset.path), "--model", "sequential", "--runs-root", str(tmp_path)]
    ok = CliRunner().invoke(train, args + ["--set", "min_length=3", "--set", "dropout=0.25", "--set", "self-pair=false"])
    assert ok.exit_code == 0, ok.output
    assert seen["min_length"] == 3 and seen["dropout"] == 0.25 and seen["self_pair"] is False

    unknown = CliRunner().invoke(train, args + ["--set", "heads=2"])
    assert unknown.exit_code == 2 and "sequential has no option 'heads'" in unknown.output and "min_length" in unknown.output
    badtype = CliRunner().invoke(train, args + ["--set", "min_length=three"])
    assert badtype.exit_code == 2 and "'three' is not a int" in badtype.output
    nokey = CliRunner().invoke(train, args + ["--set", "min_length"])
    assert nokey.exit_code == 2 and "KEY=VALUE" in nokey.output


def test_set_is_refused_for_als_models(small_dataset, tmp_path):
    result = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "mf", "--set", "x=1",
                                        "--runs-root", str(tmp_path)])
    assert result.exit_code == 2 and "--set is for the neural models" in result.output


def test_verify_catches_a_same_size_change_before_training(small_dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_dataset.path, data)
    f = data / "rating.npy"
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x01  # the last rating's lowest bit: same size, other content
    f.write_bytes(bytes(raw))
    args = ["--data", str(data), "--model", "bias", "--epochs", "1", "--runs-root", str(tmp_path / "runs"), "--quiet"]
    res = CliRunner().invoke(train, args + ["--verify"])
    assert res.exit_code == 2 and "rating.npy" in res.output and "SHA-256" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "runs").exists()  # nothing trained, no run folder
    res = CliRunner().invoke(train, args)  # without --verify too: Main.py hashes a dataset whose files changed
    assert res.exit_code == 2 and "rating.npy" in res.output and "SHA-256" in res.output
