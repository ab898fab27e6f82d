"""summary.json as a validated dataclass: what runs write reads back, and damage is one sentence."""

from __future__ import annotations

import json

import pytest

from mfrec.errors import MfrecError
from mfrec.experiments import Run, Summary


def test_a_written_summary_reads_back_with_types_and_extras(tmp_path):
    run = Run.create("s", tmp_path)
    written = run.save_summary({"dataset": "d", "model": "mf", "epochs_run": 3, "best_epoch": 2, "test_rmse": 0.91,
                                "val_rmse": None, "hit@10": 0.25, "config": {"reg": 0.4}})
    s = Summary.read(run.path / "summary.json")
    assert (s.status, s.model, s.epochs_run, s.best_epoch, s.test_rmse) == ("ok", "mf", 3, 2, 0.91)
    assert s.extra == {"hit@10": 0.25} and s.config == {"reg": 0.4} and s.run == run.name
    # a read-only mapping over the file's keys
    assert s.get("hit@10") == 0.25 and s["model"] == "mf" and s.get("val_rmse") is None and "versions" in s
    assert json.loads((run.path / "summary.json").read_text()) == written


def test_an_absent_summary_is_an_unfinished_run(tmp_path):
    s = Summary.read(tmp_path / "summary.json")
    assert s.status is None and len(s) == 0 and s.get("test_rmse") is None


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "not an object"),
    ('{"status": "maybe"}', 'status should be "ok" or "failed"'),
    ('{"status": "ok", "best_epoch": "two"}', "best_epoch should be a whole number"),
    ('{"status": "ok", "test_rmse": "0.9"}', "test_rmse should be a finite number"),
    ('{"status": "ok", "config": [1]}', "config should be an object"),
    ('{"status": "ok", "model": 3}', "model should be text"),
])
def test_a_damaged_summary_is_one_sentence(tmp_path, content, message):
    f = tmp_path / "summary.json"
    f.write_text(content)
    with pytest.raises(MfrecError, match=message) as err:
        Summary.read(f)
    assert str(f) in str(err.value) and "\n" not in str(err.value)


def test_a_run_refuses_to_write_a_summary_it_could_not_read(tmp_path):
    run = Run.create("bad", tmp_path)
    with pytest.raises(MfrecError, match="epochs_run"):
        run.save_summary({"epochs_run": -1})
    assert not (run.path / "summary.json").exists()


def test_load_experiment_names_a_damaged_summary(tmp_path):
    from mfrec import load_experiment

    run = Run.create("dmg", tmp_path)
    (run.path / "summary.json").write_text('{"status": "ok", "test_mae": [0.7]}')
    with pytest.raises(MfrecError, match="test_mae should be a finite number"):
        load_experiment(run.path)
