"""A run is tied to the version of the dataset it trained on (issue 15, finding 4).

Every run records ``dataset_fingerprint`` (the SHA-256 of the dataset's file checksums) in
config.json and summary.json. Re-preparing the dataset under the same name with another split makes
every reader that mixes the run with its dataset (evaluate, Inference.py, plot, load_experiment)
refuse in one sentence; preparing it again with the original settings makes the run usable again;
runs written before the fingerprint existed keep working.
"""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

import mfrec
from mfrec.data import load
from mfrec.errors import MfrecError
from mfrec.experiments import Experiment, dataset_fingerprint


def _prepare(raw, root, seed, method="random"):
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    if method == "user-last":
        spec = SplitSpec("user-last", holdout=3, seed=seed)
    else:
        spec = SplitSpec("random", 0.2, 0.1, seed=seed)
    return prepare(raw, spec, name="d", root=root)[0]


@pytest.fixture(scope="module")
def raw(small_raw):
    return small_raw


@pytest.fixture(scope="module")
def trained(raw, tmp_path_factory):
    """One mf run on dataset "d" (split seed 3), kept pristine; tests work on copies."""
    from mfrec.training import train_run

    base = tmp_path_factory.mktemp("identity")
    data = _prepare(raw, base / "Training_data", seed=3)
    run, summary = train_run(load(data), "mf", {"factors": 3, "epochs": 2}, runs_root=base / "Experiments_")
    return base, run.path, summary


@pytest.fixture
def world(trained, tmp_path, monkeypatch):
    """A copy of the trained world, with the working directory inside it (Training_data/ is the default root)."""
    base, run_path, _ = trained
    shutil.copytree(base, tmp_path / "w")
    monkeypatch.chdir(tmp_path / "w")
    run = tmp_path / "w" / "Experiments_" / run_path.name
    cfg = json.loads((run / "config.json").read_text())
    cfg["data_path"] = str((tmp_path / "w" / "Training_data" / "d").resolve())  # the copy, not the original
    (run / "config.json").write_text(json.dumps(cfg))
    return tmp_path / "w", run


def _one_sentence(text: str, *words: str) -> None:
    assert "Traceback" not in text
    line = text.strip()
    assert line.count("\n") == 0, text
    for w in words:
        assert w in line, (w, line)


def test_a_run_records_its_datasets_fingerprint(trained):
    base, run_path, summary = trained
    want = dataset_fingerprint(load(base / "Training_data" / "d").manifest)
    assert len(want) == 64
    assert json.loads((run_path / "config.json").read_text())["dataset_fingerprint"] == want
    assert json.loads((run_path / "summary.json").read_text())["dataset_fingerprint"] == want
    assert summary["dataset_fingerprint"] == want


def test_the_fingerprint_is_the_files_not_the_name_or_the_time(raw, tmp_path):
    a = load(_prepare(raw, tmp_path / "a", seed=3)).manifest
    b = load(_prepare(raw, tmp_path / "b", seed=3)).manifest
    c = load(_prepare(raw, tmp_path / "c", seed=4)).manifest
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert dataset_fingerprint(a) != dataset_fingerprint(c)


def _reprepare(raw, world, seed):
    _prepare(raw, world / "Training_data", seed=seed)


def test_evaluate_refuses_a_dataset_prepared_again_with_another_split(world, raw):
    from mfrec.cli.evaluate import evaluate

    folder, run = world
    _reprepare(raw, folder, seed=4)
    r = CliRunner().invoke(evaluate, ["--experiment", str(run), "--protocol", "rating", "--quiet"])
    assert r.exit_code == 2, r.output
    _one_sentence(r.output, run.name, "Training_data/d", "train", "prepare")
    assert not (run / "evaluation.json").exists()  # nothing recorded from the wrong split


def test_inference_plot_and_the_notebook_api_refuse_it_too(world, raw):
    from mfrec.cli.plot import plot
    from mfrec.cli.recommend import recommend

    folder, run = world
    _reprepare(raw, folder, seed=4)
    exp = mfrec.load_experiment(run)
    with pytest.raises(MfrecError) as e:
        exp.recommend(user=int(exp.model.user_ids[0]))
    _one_sentence(str(e.value), run.name, "train", "prepare")
    with pytest.raises(MfrecError):
        _ = Experiment(run).movies
    title = load(folder / "Training_data" / "d").movies["title"][0]
    r = CliRunner().invoke(recommend, ["-e", str(run), "--like", title, "--out-dir", str(folder / "P")])
    assert r.exit_code == 2, r.output
    _one_sentence(r.output.splitlines()[-1], run.name)
    assert not (folder / "P").exists()
    r = CliRunner().invoke(plot, ["-e", str(run)])
    assert r.exit_code == 2, r.output
    _one_sentence(r.output, run.name)


def test_preparing_again_with_the_original_settings_makes_the_run_usable_again(world, raw):
    from mfrec.cli.evaluate import evaluate

    folder, run = world
    _reprepare(raw, folder, seed=4)
    assert CliRunner().invoke(evaluate, ["--experiment", str(run), "--protocol", "rating", "--quiet"]).exit_code == 2
    _reprepare(raw, folder, seed=3)
    r = CliRunner().invoke(evaluate, ["--experiment", str(run), "--protocol", "rating", "--quiet"])
    assert r.exit_code == 0, r.output


def test_runs_written_before_the_fingerprint_keep_working(world, raw):
    from mfrec.cli.evaluate import evaluate

    folder, run = world
    for name in ("config.json", "summary.json"):
        d = json.loads((run / name).read_text())
        d.pop("dataset_fingerprint")
        (run / name).write_text(json.dumps(d))
    _reprepare(raw, folder, seed=4)  # nothing to tell the versions apart: the old behaviour
    r = CliRunner().invoke(evaluate, ["--experiment", str(run), "--protocol", "rating", "--quiet"])
    assert r.exit_code == 0, r.output
    exp = mfrec.load_experiment(run)
    assert len(exp.recommend(like=[int(exp.model.movie_ids[0])], top=3, min_ratings=0)) == 3


def test_a_damaged_fingerprint_is_one_sentence(world):
    _, run = world
    cfg = json.loads((run / "config.json").read_text())
    cfg["dataset_fingerprint"] = [1, 2]
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(MfrecError) as e:
        _ = Experiment(run).dataset
    _one_sentence(str(e.value), "config.json", "dataset_fingerprint")


def test_popularity_and_neural_runs_record_it_too(raw, tmp_path):
    from mfrec.training import popularity_run, train_run

    ds = load(_prepare(raw, tmp_path / "Training_data", seed=3, method="user-last"))
    want = dataset_fingerprint(ds.manifest)
    path, summary = popularity_run(ds, runs_root=tmp_path / "E", top=5)
    assert json.loads((path / "config.json").read_text())["dataset_fingerprint"] == want
    assert summary["dataset_fingerprint"] == want
    pytest.importorskip("torch")
    run, summary = train_run(ds, "neumf", {"epochs": 1, "factors": 2, "progress": False}, runs_root=tmp_path / "E")
    assert json.loads((run.path / "config.json").read_text())["dataset_fingerprint"] == want
    assert summary["dataset_fingerprint"] == want
