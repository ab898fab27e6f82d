"""`mfrec plot`: the maths behind the run figures, label placement, and every figure of a run."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from test_plot_helpers import assert_png, make_run

from mfrec.analysis import runs as R

RUN_FIGURES = ["rmse.png", "biases.png", "movie_map.png", "genre_factors.png", "genre_map.png"]


def test_pca_2d_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) @ np.diag([3.0, 2.0, 1.0, 0.5, 0.1]) + 7.0
    coords, explained = R.pca_2d(x)
    xc = x - x.mean(axis=0)
    evals, evecs = np.linalg.eigh(np.cov(xc, rowvar=False))
    order = np.argsort(-evals)
    for c in range(2):
        ref = xc @ evecs[:, order[c]]
        assert abs(np.corrcoef(ref, coords[:, c])[0, 1]) == pytest.approx(1.0, abs=1e-9)
        assert np.var(coords[:, c], ddof=1) == pytest.approx(evals[order[c]], rel=1e-9)
    np.testing.assert_allclose(explained, evals[order[:2]] / evals.sum(), rtol=1e-9)
    # sign convention: the same data scaled gives the same picture, not a mirrored one
    coords2, _ = R.pca_2d(2.0 * x)
    np.testing.assert_allclose(coords2, 2.0 * coords, atol=1e-9)
    one_col, ex1 = R.pca_2d(x[:, :1])
    assert np.all(one_col[:, 1] == 0) and ex1[0] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        R.pca_2d(np.zeros((0, 3)))


def test_mapped_movies_and_label_choice():
    counts = np.array([0, 50, 3, 25, 100, 19, 20])
    keep = R.mapped_movies(counts, min_ratings=20, max_movies=10)
    assert list(keep) == [0, 1, 2, 3, 4, 5, 6]  # fewer than 50 pass: fall back to the most rated
    big = np.arange(1000)
    keep = R.mapped_movies(big, min_ratings=20, max_movies=300)
    assert len(keep) == 300 and keep.min() == 700
    coords = np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 0.5], [0.1, 4.0], [0.2, -6.0]])
    pick = R.label_choice(coords, np.array([10, 1, 2, 3, 4]), n=1)
    assert pick[0] == 0 and set(pick) == {0, 1, 2, 3, 4}


def test_labels_never_overlap_even_in_a_dense_cluster():
    from mfrec.plots.labels import overlapping_pairs, place_labels
    from mfrec.plots.style import figure, styled

    rng = np.random.default_rng(2)
    xs, ys = rng.normal(0, 0.3, 40), rng.normal(0, 0.3, 40)
    with styled():
        fig, ax = figure()
        ax.scatter(xs, ys)
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        arts = place_labels(ax, xs, ys, [f"A fairly long movie title number {i} (1999)" for i in range(40)])
        assert 3 <= len(arts) < 40  # some fit, the rest are dropped rather than drawn on top
        assert overlapping_pairs(arts) == []
        assert all(len(a.get_text()) <= 32 for a in arts)
        ax_box = ax.get_window_extent()
        for a in arts:
            b = a.get_window_extent()
            assert ax_box.x0 <= b.x0 and b.x1 <= ax_box.x1 and ax_box.y0 <= b.y0 and b.y1 <= ax_box.y1
        import matplotlib.pyplot as plt

        plt.close(fig)


@pytest.fixture(scope="module")
def genre_run(small_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("Experiments_")
    return make_run(root, small_dataset, name="mf-genre-x", model="mf-genre", k=6)


def test_plot_cli_writes_every_figure_of_an_mf_genre_run(genre_run):
    from mfrec.cli.plot import plot

    res = CliRunner().invoke(plot, ["--experiment", str(genre_run)])
    assert res.exit_code == 0, res.output
    plots = genre_run / "plots"
    for name in RUN_FIGURES:
        assert_png(plots / name)
    assert sorted(p.name for p in plots.iterdir()) == sorted(RUN_FIGURES)
    assert "wrote 5 figures" in res.output


def test_movie_map_labels_the_most_rated_titles_without_overlap(genre_run, small_dataset, tmp_path):
    from mfrec.plots.labels import overlapping_pairs
    from mfrec.plots.run import movie_map_figure

    from mfrec.models.factor import FactorModel

    q = FactorModel.load(genre_run).effective_movie_factors
    path, labels = movie_map_figure(q, small_dataset, tmp_path / "map.png", "x", return_labels=True,
                                    n_labels=8)
    assert_png(path)
    counts = np.diff(small_dataset.train_by_movie.indptr)
    titles = small_dataset.movies.sort("movie")["title"].to_list()
    top = titles[int(np.argmax(counts))]
    texts = [a.get_text() for a in labels]
    assert len(labels) >= 5 and top[:31] in " ".join(texts)
    assert overlapping_pairs(labels) == []


def test_bias_run_has_no_factor_figures(small_dataset, tmp_path):
    from mfrec.plots.run import plot_run

    run = make_run(tmp_path, small_dataset, name="bias-x", model="bias", k=0)
    names = sorted(p.name for p in plot_run(run))
    assert names == ["biases.png", "rmse.png"]
    for n in names:
        assert_png(run / "plots" / n)


def test_run_without_model_file_gets_its_curves_only(small_dataset, tmp_path):
    """A run with neither model.npz nor factors.npz: only the RMSE, ranking and loss curves are drawn,
    and the output says which figures were skipped and why."""
    from mfrec.cli.plot import plot

    make_run(tmp_path, small_dataset, name="neural-x", model="ncf", with_model=False, val=False,
             extra_columns=("train_loss", "val_hit@10", "val_ndcg@10"))
    out = tmp_path / "figs"
    res = CliRunner().invoke(plot, ["-e", "neural-x", "--runs-root", str(tmp_path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["loss.png", "ranking.png", "rmse.png"]
    assert_png(out / "rmse.png")
    assert_png(out / "ranking.png")
    assert_png(out / "loss.png")
    assert "skipped biases.png: the run has no model.npz or factors.npz" in res.output
    assert "skipped movie_map.png" in res.output


def test_plot_cli_errors_are_one_sentence(small_dataset, tmp_path):
    from mfrec.cli.plot import plot

    res = CliRunner().invoke(plot, ["-e", "nothing-here", "--runs-root", str(tmp_path)])
    assert res.exit_code == 2 and "no experiment 'nothing-here'" in res.output and "Traceback" not in res.output
    run = make_run(tmp_path, small_dataset, name="mf-y", model="mf", k=3)
    from mfrec.models.factor import FactorModel

    arrays = FactorModel.load(run).arrays()  # a model of 5 movies: whole, but for other data
    arrays.update(movie_factors=np.zeros((5, 3), np.float32), movie_bias=np.zeros(5, np.float32),
                  movie_ids=np.arange(5), genre_factors=np.zeros((0, 3), np.float32))
    np.savez(run / "model.npz", **arrays)
    res = CliRunner().invoke(plot, ["-e", str(run)])
    assert res.exit_code == 2 and "trained on other data" in res.output
    (run / "model.npz").write_bytes(b"not a zip")
    res = CliRunner().invoke(plot, ["-e", str(run)])
    assert res.exit_code == 2 and "model.npz is not a readable model file" in res.output


def test_tsne_option(genre_run, tmp_path):
    from mfrec.cli.plot import plot

    res = CliRunner().invoke(plot, ["-e", str(genre_run), "--tsne", "--out", str(tmp_path / "t")])
    if R.tsne_available():
        assert res.exit_code == 0, res.output
        assert_png(tmp_path / "t" / "movie_map_tsne.png")
    else:
        assert res.exit_code == 2 and "scikit-learn" in res.output



def test_figures_of_real_trained_runs(small_dataset, tmp_path):
    """Train tiny mf-genre and bias runs with the train command, then plot and compare them."""
    from mfrec.cli.compare import compare
    from mfrec.cli.plot import plot
    from mfrec.cli.train import train
    from mfrec import load_experiment

    root = tmp_path / "Experiments_"
    for model, extra in (("mf-genre", ["--factors", "4"]), ("bias", [])):
        res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", model, "--epochs", "3",
                                         "--runs-root", str(root), "--name", f"tiny-{model}", "--quiet", *extra])
        assert res.exit_code == 0, res.output
    exp = load_experiment("tiny-mf-genre", root)
    assert exp.config["model"] == "mf-genre"
    for f in (exp.path / "plots").glob("*.png"):
        f.unlink()
    res = CliRunner().invoke(plot, ["-e", "tiny-mf-genre", "--runs-root", str(root), "--labels", "6"])
    assert res.exit_code == 0, res.output
    for name in RUN_FIGURES:
        assert_png(exp.path / "plots" / name)
    res = CliRunner().invoke(compare, [str(root / "tiny-*"), "--runs-root", str(root)])
    assert res.exit_code == 0, res.output
    table = __import__("polars").read_csv(root / "comparison.csv")
    assert sorted(table["model"].to_list()) == ["bias", "mf-genre"]
    row = table.filter(table["model"] == "mf-genre").row(0, named=True)
    assert row["k"] == 4 and row["epochs"] <= 3 and row["test_rmse"] == pytest.approx(exp.summary["test_rmse"])
    assert_png(root / "comparison.png")
