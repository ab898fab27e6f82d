"""mfrec.io: atomic writes leave the old file or the new one, and JSON is always valid."""

import json
import math

import numpy as np
import pytest

from mfrec import io


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left behind
    io.write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_path_suffix_keeps_the_extension(tmp_path):
    with io.atomic_path(tmp_path / "fig.png", suffix=".png") as tmp:
        assert tmp.name.endswith(".png") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "fig.png").read_bytes() == b"x"


def test_write_json_cleans_numpy_and_non_finite(tmp_path):
    f = io.write_json(tmp_path / "s.json", {"a": np.float32(1.5), "b": math.nan, "c": [np.int64(3), math.inf],
                                            "d": np.arange(2), "p": tmp_path, 4: None})
    data = json.loads(f.read_text())
    assert data == {"a": 1.5, "b": None, "c": [3, None], "d": [0, 1], "p": str(tmp_path), "4": None}


def test_write_npz_round_trips_without_pickles(tmp_path):
    f = io.write_npz(tmp_path / "m.npz", {"x": np.arange(3, dtype=np.float32), "s": np.asarray("{}")})
    with np.load(f, allow_pickle=False) as z:
        assert z["x"].tolist() == [0, 1, 2] and str(z["s"]) == "{}"
