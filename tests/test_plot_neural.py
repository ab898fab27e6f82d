"""`mfrec plot` on neural runs: factors.npz gives neumf/genre-embedding their maps and biases;
sequential runs get their curves and a list of the figures skipped, with the reason.

Each model is trained for a few steps on tiny synthetic data (needs the torch extra).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from test_plot_helpers import assert_png

pytest.importorskip("torch", reason='the neural baselines need the torch extra: pip install -e ".[torch]"')

from test_inference_neural import tiny_dataset, train_runs  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("neural-plots")
    ds = tiny_dataset(base / "Training_data")
    return train_runs(ds, base / "Experiments_", ["neumf", "genre-embedding", "sequential"], finished=False)


def _plot(run, out):
    from mfrec.cli.plot import plot

    return CliRunner().invoke(plot, ["-e", str(run), "--out", str(out)])


def test_neumf_run_gets_its_movie_map_from_factors_npz(runs, tmp_path):
    res = _plot(runs["neumf"], tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "movie_map.png", "rmse.png"]
    for name in ("movie_map.png", "rmse.png", "loss.png"):
        assert_png(tmp_path / name)
    # neumf has no biases: said, not drawn as an empty histogram
    assert "skipped biases.png: this neumf model has no user or movie biases" in res.output


def test_genre_embedding_run_gets_biases_map_and_both_stages(runs, tmp_path):
    from mfrec.analysis import runs as R

    res = _plot(runs["genre-embedding"], tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["biases.png", "loss.png", "movie_map.png", "rmse.png"]
    assert_png(tmp_path / "biases.png")
    assert "skipped" not in res.output
    series = R.loss_curves(R.read_metrics(runs["genre-embedding"]))
    assert sorted(series) == ["train_loss (stage 1)", "train_loss (stage 2)", "val_loss (stage 2)"]
    assert len(series["train_loss (stage 1)"][0]) == 2 and len(series["train_loss (stage 2)"][0]) == 3


def test_sequential_run_gets_its_curves_and_the_skipped_figures(runs, tmp_path):
    res = _plot(runs["sequential"], tmp_path)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "ranking.png"]
    assert_png(tmp_path / "loss.png")
    assert_png(tmp_path / "ranking.png")
    lines = res.output.splitlines()
    assert "wrote 2 figures" in lines[0]
    skipped = {line.split(":")[0] for line in lines if line.startswith("skipped ")}
    assert skipped == {"skipped rmse.png", "skipped biases.png", "skipped movie_map.png"}
    assert "predicts no ratings" in res.output and "keeps a network in weights.pt" in res.output
