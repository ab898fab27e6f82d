"""Interrupts: SIGTERM is handled like Ctrl-C, an interrupted run is marked failed, and no run that did
not finish is ever picked by name (``-e NAME``) or as "the latest successful run"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mfrec
from mfrec.errors import MfrecError
from mfrec.experiments import Run, find_run

SRC = Path(mfrec.__file__).resolve().parents[1]

# Main.py in a fresh interpreter, slowed down: every epoch report writes the run folder to a marker
# file and sleeps, so the parent can signal it in the middle of a real training.
CHILD = """
import signal, sys, time
from pathlib import Path
from mfrec.callbacks import EpochReport
import mfrec.training as training

signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even when started in the background
marker = Path(sys.argv[1])
plain = training.recorder

def slow(run, callback):
    inner = plain(run, callback)
    def on_event(event):
        inner(event)
        if isinstance(event, EpochReport):
            marker.write_text(str(run.path))
            time.sleep(0.2)
    return on_event

training.recorder = slow
from mfrec.cli import run_script
sys.argv = ["Main.py", *sys.argv[2:]]
run_script("train")
"""


@pytest.mark.parametrize("sig, code, says", [(signal.SIGTERM, 143, "interrupted by SIGTERM"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_a_signalled_training_is_marked_failed_and_exits_with_the_signal_code(tmp_path, small_dataset, sig, code, says):
    marker = tmp_path / "started"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker), "--data", str(small_dataset.path), "--model", "mf", "--factors", "4",
         "--epochs", "100000", "--patience", "0", "--name", "slow", "--quiet", "--runs-root", str(tmp_path / "runs")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), child.communicate(timeout=5)
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == says
    assert [line for line in err.splitlines() if "interrupted" in line] == [says]

    run = Path(marker.read_text())
    summary = mfrec.experiments.Summary.read(run / "summary.json")
    assert summary.status == "failed" and summary.error.startswith(says)
    assert f"FAILED: {summary.error}" in (run / "train.log").read_text()
    assert not (run / "model.npz").exists()
    assert [p.name for p in run.rglob("*") if ".tmp-" in p.name] == []  # nothing half-written
    # the interrupted run is never picked: not by its name, not as the latest successful run
    with pytest.raises(MfrecError, match=r"the newest run named 'slow', .*, failed \(interrupted"):
        find_run("slow", tmp_path / "runs")
    from mfrec.inference import open_run

    with pytest.raises(MfrecError, match="no successful run"):
        open_run(None, tmp_path / "runs", mode="user")


def test_sigterm_inside_a_command_is_one_line_and_exit_143():
    import click
    from click.testing import CliRunner

    from mfrec.cli.common import friendly_errors

    before = signal.getsignal(signal.SIGTERM)

    @click.command()
    @friendly_errors
    def work():
        # without the handler SIGTERM would end the test run itself: check first, then signal
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler raises long before this ends

    res = CliRunner().invoke(work, [])
    assert res.exit_code == 143, (res.output, res.exception)
    assert res.output.strip() == "interrupted by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before  # restored: only the command is covered


def test_an_interrupt_in_training_marks_the_run_failed(tmp_path, small_dataset):
    from mfrec.callbacks import EpochReport
    from mfrec.training import train_run

    def ctrl_c(event):
        if isinstance(event, EpochReport) and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_run(small_dataset, "mf", {"factors": 4, "epochs": 5}, runs_root=tmp_path, name="x", callback=ctrl_c)
    (run,) = tmp_path.iterdir()
    summary = mfrec.experiments.Summary.read(run / "summary.json")
    assert summary.status == "failed" and summary.error == "interrupted by Ctrl-C (SIGINT)"
    assert not (run / "model.npz").exists()


def _run(root, name, status, model=True):
    """A run folder named ``name``: status "ok"/"failed", or None for one that never wrote its summary."""
    run = Run.create(name, root, config={"model": "mf"})
    if model:
        (run.path / "model.npz").write_bytes(b"not read here")
    if status == "failed":
        run.fail(KeyboardInterrupt())
    elif status == "ok":
        run.save_summary({"model": "mf"})
    time.sleep(1.05)  # the next run gets a later time stamp
    return run.path


def test_a_name_resolves_to_its_latest_run_only_when_that_run_finished(tmp_path):
    ok = _run(tmp_path, "base", "ok")
    assert find_run("base", tmp_path) == ok
    failed = _run(tmp_path, "base", "failed")
    with pytest.raises(MfrecError, match=rf"the newest run named 'base', {failed.name}, failed \(interrupted by "
                                         rf"Ctrl-C \(SIGINT\)\): to use the latest that finished, pass {ok.name}; "
                                         rf"to open this one anyway, pass its folder name$"):
        find_run("base", tmp_path)
    unfinished = _run(tmp_path, "base", None)
    with pytest.raises(MfrecError, match=rf"{unfinished.name}, did not finish \(no summary.json"):
        find_run("base", tmp_path)
    lonely = _run(tmp_path, "lonely", None)
    with pytest.raises(MfrecError, match=rf"{lonely.name}, did not finish.*no run of that name finished"):
        find_run("lonely", tmp_path)
    # a run's own folder name or path still opens it (to plot a failed run's curves, say)
    assert find_run(failed.name, tmp_path) == failed and find_run(unfinished) == unfinished


def test_open_run_refuses_an_unfinished_run_and_the_default_skips_it(tmp_path):
    from mfrec.inference import _latest, open_run

    ok = _run(tmp_path, "a", "ok")
    _run(tmp_path, "b", "failed")  # newer, with a model file, but failed
    unfinished = _run(tmp_path, "c", None)  # newest, with a model file, killed before its summary
    assert _latest(tmp_path, "user")[0] == ok and _latest(tmp_path, None)[0] == ok
    with pytest.raises(MfrecError, match=rf"run {unfinished.name} did not finish \(no summary.json"):
        open_run(unfinished, tmp_path, mode="user")
