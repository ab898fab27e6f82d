"""``load(..., verify="auto")`` and Main.py: every file's SHA-256 is checked once per version of the
files; the check is repeated only when a size or modification time changed since it last passed."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner

from mfrec.cli.train import train
from mfrec.data import load
from mfrec.data import manifest as manifest_module
from mfrec.data.manifest import VERIFIED
from mfrec.errors import DataError


@pytest.fixture
def folder(small_dataset, tmp_path):
    """A fresh copy of the small prepared dataset (no check recorded yet)."""
    out = shutil.copytree(small_dataset.path, tmp_path / "small")
    (out / VERIFIED).unlink(missing_ok=True)
    return out


@pytest.fixture
def hashed(monkeypatch):
    """The names of the files hashed, in order."""
    seen = []
    real = manifest_module.sha256

    def counting(path):
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(manifest_module, "sha256", counting)
    return seen


def flip_keeping_size(path, offset=-10):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_auto_hashes_once_then_only_after_a_change(folder, hashed):
    load(folder, verify="auto")
    assert "rating.npy" in hashed and (folder / VERIFIED).is_file()
    hashed.clear()
    load(folder, verify="auto")
    assert hashed == []  # nothing changed: sizes checked, no hashing
    flip_keeping_size(folder / "rating.npy")  # same size, new mtime
    with pytest.raises(DataError, match=r"rating\.npy does not match manifest\.json.*prepare the dataset again"):
        load(folder, verify="auto")
    assert hashed


def test_a_failed_check_is_not_cached(folder):
    flip_keeping_size(folder / "movies.parquet")
    for _ in range(2):
        with pytest.raises(DataError, match=r"movies\.parquet does not match"):
            load(folder, verify="auto")
    assert not (folder / VERIFIED).exists()


def test_a_damaged_record_means_hashing_again(folder, hashed):
    (folder / VERIFIED).write_text("[1, 2")
    load(folder, verify="auto")
    assert "rating.npy" in hashed
    assert json.loads((folder / VERIFIED).read_text())["files"]["rating.npy"][0] == (folder / "rating.npy").stat().st_size


def test_a_change_that_restores_the_time_stamp_needs_verify_true(folder):
    load(folder, verify="auto")
    f = folder / "rating.npy"
    st = f.stat()
    flip_keeping_size(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    load(folder, verify="auto")  # documented: the record is by size and modification time
    with pytest.raises(DataError, match=r"rating\.npy does not match"):
        load(folder, verify=True)


def test_main_py_checks_hashes_by_default(folder, tmp_path):
    flip_keeping_size(folder / "rating.npy")
    args = ["--data", str(folder), "--model", "bias", "--epochs", "1", "--runs-root", str(tmp_path / "runs"), "--quiet"]
    res = CliRunner().invoke(train, args)
    assert res.exit_code == 2 and "rating.npy does not match manifest.json" in res.output, res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_verify_takes_true_false_or_auto(folder):
    with pytest.raises(ValueError, match="verify should be True, False or 'auto'"):
        load(folder, verify="yes")
