"""Helpers for the figure tests: check a PNG is a real picture, and build a small run folder.

``make_run`` writes an experiment folder following the contract in the team brief (config.json,
metrics.csv, summary.json, train.log, model.npz with the ALS keys) without training, so the figure
code is tested on exactly the files it reads; ``test_plot_run.py`` also trains a real tiny run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def assert_png(path, min_px: int = 300, max_px: int = 4000) -> np.ndarray:
    """The file is a PNG that matplotlib reads, of sensible size, and not blank; returns the pixels."""
    import matplotlib.image as mpimg

    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert min_px <= h <= max_px and min_px <= w <= max_px, f"{path.name} is {w}x{h} pixels"
    rgb = img[..., :3]
    non_white = (rgb < 0.95).any(axis=-1).mean()
    assert non_white > 0.02, f"{path.name} is nearly blank ({non_white:.1%} of pixels drawn)"
    assert len(np.unique(rgb.reshape(-1, 3)[::7], axis=0)) > 8, f"{path.name} has almost no colours"
    return img


def test_assert_png_rejects_a_blank_image(tmp_path):
    import matplotlib.image as mpimg
    import pytest

    blank = tmp_path / "blank.png"
    mpimg.imsave(blank, np.ones((500, 800, 3)))
    with pytest.raises(AssertionError, match="blank"):
        assert_png(blank)
    tiny = tmp_path / "tiny.png"
    mpimg.imsave(tiny, np.random.default_rng(0).random((40, 60, 3)))
    with pytest.raises(AssertionError, match="pixels"):
        assert_png(tiny)


def make_run(root, ds, name="mf-genre-run", model="mf-genre", k=4, epochs=6, seed=0, val=True,
             extra_columns=(), status="ok", with_model=True, test_curve=True, train_curve=True) -> Path:
    """A contract-shaped run folder for dataset ``ds`` under ``root`` (no training; factors are random
    with a little structure, the curves decrease). ``test_curve=False``/``train_curve=False``: the cells
    an ALS run leaves empty since per-epoch evaluation became a callback (test measured once, in the
    summary; training RMSE only on request or without validation)."""
    rng = np.random.default_rng(seed)
    path = Path(root) / name
    (path / "plots").mkdir(parents=True)
    config = {"model": model, "dataset": ds.name, "data_path": str(ds.path), "factors": k, "reg": 0.05 + 0.01 * seed,
              "reg_bias": 10.0, "epochs": epochs, "seed": seed}
    (path / "config.json").write_text(json.dumps(config))
    cols = ["epoch", "train_rmse", "val_rmse", "test_rmse", "seconds", *extra_columns]
    lines = [",".join(cols)]
    base = 0.9 + 0.02 * seed
    for e in range(1, epochs + 1):
        tr = base + 0.5 / e - 0.1
        vals = {"epoch": str(e), "train_rmse": f"{tr:.4f}" if train_curve else "",
                "val_rmse": f"{tr + 0.08:.4f}" if val else "", "test_rmse": f"{tr + 0.1:.4f}" if test_curve else "",
                "seconds": "0.25"}
        for c in extra_columns:
            vals[c] = f"{0.1 + 0.01 * e:.4f}"
        lines.append(",".join(vals[c] for c in cols))
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    summary = {"status": status, "dataset": ds.name, "model": model, "config": config, "epochs_run": epochs,
               "best_epoch": epochs, "train_rmse": base + 0.5 / epochs - 0.1, "val_rmse": base + 0.5 / epochs - 0.02,
               "test_rmse": base + 0.5 / epochs, "test_mae": 0.7 + 0.02 * seed, "train_seconds": 0.25 * epochs}
    for c in extra_columns:  # like the neural runs: per-epoch val_hit@10 in metrics.csv, test_hit@10 in the summary
        if "@" in c:
            summary[f"test_{c.removeprefix('val_')}"] = 0.1 + 0.01 * epochs
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "train.log").write_text("2026-01-01 00:00:00 trained\n")
    if with_model:
        kk = 0 if model == "bias" else k
        n_genres = len(ds.genres)
        y = rng.normal(0, 0.3, (n_genres, kk)).astype(np.float32) if model == "mf-genre" else np.zeros((0, kk), np.float32)
        np.savez(
            path / "model.npz",
            mu=np.array(3.5, np.float32),
            user_bias=rng.normal(0, 0.3, ds.n_users).astype(np.float32),
            movie_bias=rng.normal(0, 0.4, ds.n_movies).astype(np.float32),
            user_factors=rng.normal(0, 0.2, (ds.n_users, kk)).astype(np.float32),
            movie_factors=rng.normal(0, 0.2, (ds.n_movies, kk)).astype(np.float32),
            genre_factors=y,
            genre_indptr=np.asarray(ds.movie_genres.indptr, np.int64),
            genre_indices=np.asarray(ds.movie_genres.indices, np.int32),
            user_ids=np.asarray(ds.users.sort("user")["userId"].to_numpy(), np.int64),
            movie_ids=np.asarray(ds.movies.sort("movie")["movieId"].to_numpy(), np.int64),
            config_json=np.array(json.dumps(config)),
        )
    return path


def test_rmse_legend_says_whether_validation_chose_the_epoch(tmp_path, monkeypatch):
    import mfrec.plots.style as style
    from mfrec.plots.curves import plot_rmse

    labels = {}
    real_save = style.save

    def capture(fig, path, dpi=None):
        labels[Path(path).name] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        return real_save(fig, path, dpi)

    monkeypatch.setattr(style, "save", capture)
    base = {"epoch": [1, 2, 3], "train_rmse": [0.9, 0.8, 0.7], "test_rmse": [1.0, 0.95, 0.96]}
    plot_rmse({**base, "val_rmse": [0.99, 0.93, 0.94]}, tmp_path / "val.png", best_epoch=2)
    plot_rmse({**base, "val_rmse": [None, None, None]}, tmp_path / "noval.png", best_epoch=3)
    assert "best epoch (2, lowest validation RMSE)" in labels["val.png"]
    assert "kept epoch (3; no validation split)" in labels["noval.png"]
    assert not any(label.startswith("validation") for label in labels["noval.png"])
