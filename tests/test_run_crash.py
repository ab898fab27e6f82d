"""A training run killed while it writes its folder leaves every file whole, and is never used.

A child process trains a small model through ``mfrec.training.train_run`` with the rename inside
``mfrec.io.atomic_path`` replaced: on its n-th call the process kills itself with SIGKILL (no
clean-up runs) just before that file would have replaced its old version. Whatever the point,
every file left in the run folder must read back whole (config.json, metrics.csv, model.npz), the
run has no summary.json, and neither the default run selection nor its name picks it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")

CHILD = """
import json, os, signal, sys
import mfrec.io as io
from mfrec.data import load
from mfrec.training import train_run

data, root, kill_at = json.loads(sys.argv[1])
calls = []
real_replace = os.replace

class KillingOs:
    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def replace(src, dst):
        calls.append(str(dst))
        if len(calls) == kill_at:
            print("killed before", dst, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

io.os = KillingOs()
train_run(load(data), "mf-genre", {"factors": 3, "epochs": 2, "patience": 0}, runs_root=root, name="crash")
print("finished after", len(calls), "renames", flush=True)
"""


def _train(data: Path, root: Path, kill_at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps([str(data), str(root), kill_at])],
                          capture_output=True, text=True, timeout=300, env=env)


def test_a_run_killed_at_any_write_leaves_whole_files_and_is_never_picked(small_dataset, tmp_path):
    from mfrec.errors import MfrecError
    from mfrec.experiments import find_run, read_json, read_metrics
    from mfrec.inference import latest_run
    from mfrec.models.factor import FactorModel

    done = _train(small_dataset.path, tmp_path / "complete", kill_at=0)
    assert done.returncode == 0, done.stderr
    n_writes = int(done.stdout.split("finished after ")[1].split()[0])
    assert n_writes >= 4  # config.json, model.npz, figures, summary.json at least

    for kill_at in range(1, n_writes + 1):
        root = tmp_path / f"killed-{kill_at}"
        res = _train(small_dataset.path, root, kill_at)
        assert res.returncode == -signal.SIGKILL, (kill_at, res.stdout, res.stderr)
        (run,) = [p for p in root.iterdir() if p.is_dir()]
        assert not (run / "summary.json").exists(), kill_at  # summary.json is the last write
        read_json(run / "config.json")  # whole, or absent when the kill came first
        read_metrics(run)  # whole rows only
        if (run / "model.npz").exists():
            FactorModel.load(run / "model.npz")  # a model file is there whole or not at all
        with pytest.raises(MfrecError):
            find_run("crash", root)  # its name never resolves to an unfinished run
        with pytest.raises(MfrecError):
            latest_run(root)  # nor does the default selection
