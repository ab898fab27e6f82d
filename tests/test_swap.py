"""Replacing a prepared dataset is crash-safe: killed, interrupted or raced, the old or the new one loads.

A child process prepares a dataset with ``mfrec.data.store._swap_point`` replaced, so that it kills
itself (SIGKILL: no clean-up runs), waits for a file, or leaves a mark at one step of the swap. The
old dataset has seed 1 and the new one seed 2; afterwards ``load`` must give one of them whole
(every SHA-256 checked), and the next prepare must leave no scratch folder behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mfrec
from mfrec.data import load, store
from mfrec.data.prepare import prepare
from mfrec.data.splits import SplitSpec
from mfrec.data.synthetic import SyntheticSpec, generate
from mfrec.errors import DataError

pytestmark = pytest.mark.skipif(os.name == "nt", reason="SIGKILL and flock are POSIX")

CHILD = """
import json, os, signal, sys, time
from pathlib import Path
from mfrec.data import store
from mfrec.data.prepare import prepare
from mfrec.data.splits import SplitSpec
from mfrec.data.synthetic import SyntheticSpec, generate

root, name, seed, stage, action, arg = json.loads(sys.argv[1])

def hook(at):
    if at != stage:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "mark":
        Path(arg).write_text("here")
    elif action == "wait":
        Path(arg + ".waiting").write_text("here")
        while not Path(arg).exists():
            time.sleep(0.02)

store._swap_point = hook
raw = generate(SyntheticSpec(n_users=60, n_movies=40, n_ratings=900, seed=seed))
prepare(raw, SplitSpec("random", seed=seed), name=name, root=root)
"""


def small(seed: int):
    return generate(SyntheticSpec(n_users=60, n_movies=40, n_ratings=900, seed=seed))


def child(root: Path, name: str, seed: int, stage: str = "", action: str = "", arg: str = "") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(mfrec.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps([str(root), name, seed, stage, action, arg])],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``path`` exists (the child reached its step); fails if the child ends first."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"the child never reached {path.name}"
        time.sleep(0.02)


def hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("stage, survivor", [
    ("writing", 1),   # killed while writing the new folder
    ("written", 1),   # the new folder complete, not yet swapped
    ("locked", 1),    # holding the lock, nothing renamed
    ("aside", 1),     # between the two renames: no Training_data/d until recovery
    ("swapped", 2),   # the new one in place, the old one not yet deleted
])
def test_killed_at_each_step_of_the_swap_leaves_a_whole_dataset(tmp_path, stage, survivor):
    prepare(small(1), SplitSpec("random", seed=1), name="d", root=tmp_path)
    proc = child(tmp_path, "d", 2, stage, "kill")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    assert hidden(tmp_path), "the kill should have left a scratch folder"
    assert store.list_datasets(tmp_path) == ([] if stage == "aside" else ["d"])  # scratch is never listed
    ds = load("d", data_root=tmp_path, verify=True)  # recovers the folder put aside, if that is where it was killed
    assert ds.manifest.seed == survivor
    prepare(small(3), SplitSpec("random", seed=3), name="other", root=tmp_path)  # the next run cleans up
    assert hidden(tmp_path) == []
    assert store.list_datasets(tmp_path) == ["d", "other"]
    assert load("d", data_root=tmp_path, verify=True).manifest.seed == survivor


def test_killed_during_a_first_prepare_leaves_no_dataset_and_is_cleaned_up(tmp_path):
    proc = child(tmp_path, "d", 2, "written", "kill")
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(DataError, match="no prepared dataset 'd'"):
        load("d", data_root=tmp_path)
    prepare(small(3), SplitSpec("random", seed=3), name="d", root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


@pytest.mark.parametrize("stage", ["written", "locked", "aside"])
def test_ctrl_c_during_the_swap_keeps_the_old_dataset_and_leaves_nothing(tmp_path, monkeypatch, stage):
    prepare(small(1), SplitSpec("random", seed=1), name="d", root=tmp_path)

    def interrupt(at):
        if at == stage:
            raise KeyboardInterrupt

    monkeypatch.setattr(store, "_swap_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(small(2), SplitSpec("random", seed=2), name="d", root=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    assert load("d", data_root=tmp_path, verify=True).manifest.seed == 1


def test_a_scratch_folder_of_a_live_process_is_left_alone(tmp_path):
    prepare(small(1), SplitSpec("random", seed=1), name="d", root=tmp_path)
    mine = tmp_path / f".d.tmp-{os.getpid()}-0123abcd"  # as if this process were writing it
    mine.mkdir()
    legacy = tmp_path / ".d.old-89abcdef"  # left by a version without the pid in the name
    legacy.mkdir()
    store.recover(tmp_path)
    assert hidden(tmp_path) == [mine.name]


def test_two_concurrent_prepares_of_one_name_both_succeed(tmp_path):
    prepare(small(1), SplitSpec("random", seed=1), name="d", root=tmp_path)
    go = tmp_path.parent / f"{tmp_path.name}-go"
    first = child(tmp_path, "d", 2, "aside", "wait", str(go))  # stops between its two renames, holding the lock
    wait_for(Path(f"{go}.waiting"), first)
    ready = tmp_path.parent / f"{tmp_path.name}-ready"
    second = child(tmp_path, "d", 3, "written", "mark", str(ready))  # then asks for the lock
    wait_for(ready, second)
    time.sleep(0.3)  # not a timing assertion: only lets the second reach the lock before the first goes on
    go.write_text("go")
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, err
    assert load("d", data_root=tmp_path, verify=True).manifest.seed in (2, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
