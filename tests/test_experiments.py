"""Run folders: unique names under concurrency, metrics/summary/log files, failure marking, loading back."""

from __future__ import annotations

import json
import threading
import time

import pytest

from mfrec.errors import MfrecError
from mfrec import load_experiment
from mfrec.experiments import METRICS_COLUMNS, Run, find_run


def test_concurrent_runs_never_share_a_folder(tmp_path):
    paths, errors = [], []

    def make():
        try:
            paths.append(Run.create("same", root=tmp_path).path)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=make) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(paths)) == 12 and all(p.parent == tmp_path for p in paths)
    assert all(p.name.startswith("same-") for p in paths)


def test_run_files(tmp_path):
    run = Run.create("my run/1", root=tmp_path, config={"model": "mf", "reg": 0.1}, extra_columns=["hr@10"])
    assert "/" not in run.name and run.name.startswith("my-run-1-")
    assert (run.path / "plots").is_dir()
    assert json.loads((run.path / "config.json").read_text()) == {"model": "mf", "reg": 0.1}
    run.append_metrics(1, 0.9, None, float("nan"), 1.5)
    run.append_metrics(2, 0.8, 0.85, 0.86, 1.25, **{"hr@10": 0.3})
    lines = (run.path / "metrics.csv").read_text().splitlines()
    assert lines[0] == ",".join(METRICS_COLUMNS) + ",hr@10"
    assert lines[1] == "1,0.9,,,1.5,"
    with pytest.raises(ValueError, match="no column"):
        run.append_metrics(3, ndcg=0.1)
    run.log("hello\nworld")
    log = (run.path / "train.log").read_text()
    assert "hello" in log and "world" in log
    s = run.save_summary({"test_rmse": 0.9, "bad": float("inf")})
    on_disk = json.loads((run.path / "summary.json").read_text())
    assert on_disk == s and s["status"] == "ok" and s["bad"] is None
    assert s["peak_rss_mb"] > 0 and "numpy" in s["versions"] and s["finished"]


def test_failed_run_is_marked(tmp_path):
    run = Run.create("boom", root=tmp_path)
    try:
        raise RuntimeError("the solver exploded")
    except RuntimeError as e:
        run.fail(e, {"model": "mf"})
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["status"] == "failed" and "the solver exploded" in summary["error"]
    assert "FAILED: RuntimeError: the solver exploded" in (run.path / "train.log").read_text()
    exp = load_experiment(run.path)
    assert exp.status == "failed"
    # an outer guard failing the same run again keeps the first record and logs nothing twice
    again = run.fail(RuntimeError("the solver exploded"))
    assert again["model"] == "mf"
    assert (run.path / "train.log").read_text().count("FAILED:") == 1


def test_load_experiment_by_path_folder_or_name(tmp_path):
    first = Run.create("mf", root=tmp_path, config={"model": "mf"})
    time.sleep(1.1)  # a later timestamp
    second = Run.create("mf", root=tmp_path, config={"model": "mf", "seed": 2})
    Run.create("mf-genre", root=tmp_path, config={"model": "mf-genre"})
    for run in (first, second):  # a name resolves only to a run that finished
        run.save_summary({"model": "mf"})
    assert find_run(first.path) == first.path
    assert find_run(first.name, root=tmp_path) == first.path
    assert find_run("mf", root=tmp_path) == second.path  # the latest run of that name, not mf-genre
    second.append_metrics(1, 0.9, None, 0.95, 0.5)
    exp = load_experiment("mf", runs_root=tmp_path)
    assert exp.config == {"model": "mf", "seed": 2}
    m = exp.metrics
    assert m.columns == list(METRICS_COLUMNS) and m["val_rmse"].to_list() == [None]
    assert m["test_rmse"].to_list() == [0.95]
    with pytest.raises(MfrecError, match="no experiment"):
        load_experiment("nothing-like-this", runs_root=tmp_path)


def test_load_experiment_is_exported():
    import mfrec

    assert mfrec.load_experiment is load_experiment
