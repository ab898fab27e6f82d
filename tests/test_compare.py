"""`mfrec compare`: the table (terminal + CSV), missing columns, globs, and the overlay figure."""

from __future__ import annotations

import polars as pl
import pytest
from click.testing import CliRunner
from test_plot_helpers import assert_png, make_run

from mfrec.analysis.runs import comparison_table, read_metrics


@pytest.fixture(scope="module")
def runs(small_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("Experiments_")
    make_run(root, small_dataset, name="mf-a", model="mf", k=4, seed=1)
    make_run(root, small_dataset, name="mf-b", model="mf", k=8, seed=0, val=False)
    make_run(root, small_dataset, name="mf-genre-c", model="mf-genre", k=4, seed=2)
    make_run(root, small_dataset, name="ncf-d", model="ncf", k=16, seed=3, with_model=False,
             extra_columns=("train_loss", "val_hit@10", "val_ndcg@10"))
    return root


def test_comparison_table_rows_and_missing_columns(runs):
    t = comparison_table([runs / "mf-a", runs / "mf-b", runs / "ncf-d"])
    assert t["run"].to_list() == ["mf-b", "mf-a", "ncf-d"]  # best test RMSE first
    assert {"model", "k", "reg", "epochs", "test_rmse", "test_mae", "seconds", "test_hit@10", "val_ndcg@10"} <= set(t.columns)
    assert "train_loss" not in t.columns  # losses are not comparable across models
    row = t.row(by_predicate=pl.col("run") == "mf-a", named=True)
    summary = __import__("json").loads((runs / "mf-a" / "summary.json").read_text())
    assert row["k"] == 4 and row["reg"] == pytest.approx(0.06) and row["epochs"] == 6
    assert row["test_rmse"] == pytest.approx(summary["test_rmse"]) and row["test_mae"] == pytest.approx(summary["test_mae"])
    assert row["seconds"] == pytest.approx(summary["train_seconds"])
    assert row["test_hit@10"] is None  # the ALS run has no ranking metrics
    ncf = t.row(by_predicate=pl.col("run") == "ncf-d", named=True)
    assert ncf["test_hit@10"] == pytest.approx(0.16) and ncf["val_ndcg@10"] == pytest.approx(0.16)
    assert "test_hit@10" not in comparison_table([runs / "mf-a"]).columns


def test_read_metrics_with_empty_cells_and_a_missing_file(runs, tmp_path):
    m = read_metrics(runs / "mf-b")
    assert m["val_rmse"].null_count() == m.height and m["test_rmse"].null_count() == 0
    assert m.schema["test_rmse"] == pl.Float64 and m.schema["epoch"] == pl.Int64
    assert read_metrics(tmp_path).height == 0


def test_compare_cli_table_csv_and_figure(runs, tmp_path):
    from mfrec.cli.compare import compare

    csv, png = tmp_path / "cmp.csv", tmp_path / "cmp.png"
    res = CliRunner().invoke(compare, [str(runs / "mf-*"), str(runs / "ncf-d"), "--csv", str(csv), "--out", str(png)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    header = next(line for line in lines if line.startswith("run"))
    for col in ("model", "k", "reg", "epochs", "test_rmse", "test_mae", "seconds", "test_hit@10", "val_ndcg@10"):
        assert col in header.split()
    assert "4 runs" in res.output
    table = pl.read_csv(csv)
    assert sorted(table["run"].to_list()) == ["mf-a", "mf-b", "mf-genre-c", "ncf-d"]
    assert table.filter(pl.col("run") == "mf-genre-c")["model"].item() == "mf-genre"
    assert_png(png)


def test_compare_cli_defaults_go_under_the_root_and_names_resolve(runs):
    from mfrec.cli.compare import compare

    res = CliRunner().invoke(compare, ["mf-a", "mf-genre-c", "mf-a", "--runs-root", str(runs)])
    assert res.exit_code == 0, res.output
    assert "2 runs" in res.output  # the duplicate is dropped
    assert pl.read_csv(runs / "comparison.csv").height == 2
    assert_png(runs / "comparison.png")


def test_compare_cli_errors(runs, tmp_path):
    from mfrec.cli.compare import compare

    res = CliRunner().invoke(compare, [str(tmp_path / "zz-*")])
    assert res.exit_code == 2 and "no runs match" in res.output
    res = CliRunner().invoke(compare, ["nope", "--runs-root", str(runs)])
    assert res.exit_code == 2 and "no experiment 'nope'" in res.output


def _without_rmse(run):
    text = (run / "metrics.csv").read_text().splitlines()
    cols = text[0].split(",")
    rows = [dict(zip(cols, line.split(","))) for line in text[1:]]
    for r in rows:
        r["train_rmse"] = r["val_rmse"] = r["test_rmse"] = ""
    (run / "metrics.csv").write_text("\n".join([text[0]] + [",".join(r[c] for c in cols) for r in rows]) + "\n")


def test_ranking_only_runs_give_a_table_and_a_ranking_figure(small_dataset, tmp_path, monkeypatch):
    from mfrec.cli.compare import compare

    run = make_run(tmp_path, small_dataset, name="rank-only", model="ncf", with_model=False, extra_columns=("val_hit@10",))
    _without_rmse(run)
    seen = _capture_figure(monkeypatch)
    res = CliRunner().invoke(compare, [str(run), "--csv", str(tmp_path / "c.csv"), "--out", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    assert_png(tmp_path / "c.png")
    assert [ax.get_title(loc="left") for ax in seen["fig"].axes] == [f"{small_dataset.name}: ranking metrics"]
    assert pl.read_csv(tmp_path / "c.csv")["test_hit@10"][0] == pytest.approx(0.16)


def test_runs_with_neither_curves_nor_ranking_metrics_give_a_table_but_no_figure(small_dataset, tmp_path):
    from mfrec.cli.compare import compare

    run = make_run(tmp_path, small_dataset, name="nothing", model="ncf", with_model=False)
    _without_rmse(run)
    res = CliRunner().invoke(compare, [str(run), "--csv", str(tmp_path / "c.csv"), "--out", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    assert "no run has RMSE curves or ranking metrics" in res.output and not (tmp_path / "c.png").exists()
    assert pl.read_csv(tmp_path / "c.csv").height == 1


def test_bias_runs_show_no_factor_penalty_but_their_bias_penalty(tmp_path):
    import json

    from mfrec.analysis.runs import run_row

    for name, model in (("b", "bias"), ("m", "mf")):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"model": model, "factors": 0 if model == "bias" else 8,
                                                   "reg": 0.4, "reg_bias": 2.0}))
        (d / "summary.json").write_text(json.dumps({"status": "ok", "model": model, "test_rmse": 0.95}))
        (d / "metrics.csv").write_text("epoch,train_rmse,val_rmse,test_rmse,seconds\n1,0.9,,0.95,0.1\n")
    bias, mf = run_row(tmp_path / "b"), run_row(tmp_path / "m")
    assert bias["reg"] is None and bias["reg_bias"] == 2.0
    assert mf["reg"] == 0.4 and mf["reg_bias"] == 2.0


# -- the figure: what is drawn (issue 16) -------------------------------------------------------------
def _capture_figure(monkeypatch):
    """Replace the compare module's save so the test sees the figure drawn (and still writes it)."""
    import mfrec.plots.compare as C

    seen = {}
    real = C.save

    def keep(fig, path):
        fig.canvas.draw()
        seen["fig"] = fig
        seen["png"] = path
        seen["legends"] = [a.get_legend() for a in fig.axes if a.get_legend()] + list(fig.legends)
        seen["extents"] = _extents(fig)
        return real(fig, path)

    monkeypatch.setattr(C, "save", keep)
    return seen


def _extents(fig):
    """Display-space points of every line and bar of every axes, and every legend's window, taken
    before the figure is closed."""
    import numpy as np

    points = []
    for ax in fig.axes:
        for line in ax.get_lines():
            xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
            points.append(ax.transData.transform(xy))
        for bar in ax.patches:
            points.append(bar.get_window_extent().get_points())
    legends = [lg.get_window_extent() for lg in [a.get_legend() for a in fig.axes] + list(fig.legends) if lg]
    return np.concatenate(points) if points else np.zeros((0, 2)), legends


def _other_dataset_runs(root, small_dataset):
    from types import SimpleNamespace

    other = SimpleNamespace(name="ml-other", path=root / "td" / "ml-other")
    make_run(root, small_dataset, name="mf-here", model="mf", k=4, seed=1, epochs=8)
    make_run(root, small_dataset, name="bias-here", model="bias", k=0, seed=3, epochs=5)
    make_run(root, other, name="mf-there", model="mf", k=8, seed=0, epochs=10, with_model=False)
    make_run(root, small_dataset, name="seq-here", model="sequential", k=16, seed=2, epochs=6, with_model=False,
             extra_columns=("val_hit@10", "val_ndcg@10"))
    return other


def test_compare_groups_runs_by_dataset_in_the_table_csv_and_figure(small_dataset, tmp_path, monkeypatch):
    from mfrec.cli.compare import compare

    root = tmp_path / "Experiments_"
    other = _other_dataset_runs(root, small_dataset)
    seen = _capture_figure(monkeypatch)
    res = CliRunner().invoke(compare, [str(root / "*"), "--runs-root", str(root)])
    assert res.exit_code == 0, res.output
    assert "4 runs on 2 datasets" in res.output and "compare only within a dataset" in res.output
    lines = res.output.splitlines()
    here = lines.index(f"dataset {other.name}: 1 run (best test RMSE first)")
    there = lines.index(f"dataset {small_dataset.name}: 3 runs (best test RMSE first)")
    assert (here < there) == (other.name < small_dataset.name)  # datasets in name order
    # every run is listed under its own dataset's heading
    start, end = (here, there) if here < there else (there, here)
    block = "\n".join(lines[start:end]) if here < there else "\n".join(lines[end:])
    assert "mf-there" in block and "mf-here" not in block
    csv = pl.read_csv(root / "comparison.csv")
    assert csv["dataset"].to_list() == sorted(csv["dataset"].to_list())  # grouped
    fig = seen["fig"]
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert f"{small_dataset.name}: RMSE per epoch" in titles and f"{other.name}: RMSE per epoch" in titles
    assert f"{small_dataset.name}: ranking metrics" in titles
    assert not any(t.startswith(f"{other.name}: ranking") for t in titles)  # no run of it has any
    rmse_other = next(ax for ax in fig.axes if ax.get_title(loc="left") == f"{other.name}: RMSE per epoch")
    assert len(rmse_other.get_lines()) == 2  # mf-there's validation and test curves only
    assert_png(seen["png"])


def test_compare_figure_keeps_every_point_inside_the_frame_and_legends_off_the_data(small_dataset, tmp_path, monkeypatch):
    import numpy as np

    from mfrec.plots.compare import comparison_figure

    root = tmp_path / "Experiments_"
    _other_dataset_runs(root, small_dataset)
    seen = _capture_figure(monkeypatch)
    comparison_figure(sorted(root.iterdir()), tmp_path / "c.png")
    fig = seen["fig"]
    for ax in fig.axes:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for line in ax.get_lines():
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            # inside, and not on the edge: at least 2% of the range away from each side (the epoch-1 points too)
            assert ((x - x0) / (x1 - x0)).min() > 0.02 and ((x1 - x) / (x1 - x0)).min() > 0.02, ax.get_title(loc="left")
            assert ((y - y0) / (y1 - y0)).min() > 0.02 and ((y1 - y) / (y1 - y0)).min() > 0.02, ax.get_title(loc="left")
    points, legends = seen["extents"]
    assert len(legends) >= 2  # the curve-kind legend(s) and the runs' legend
    for box in legends:
        inside = (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
        assert not inside.any(), "a legend covers a plotted point"
        for ax in fig.axes:  # and no legend sits on a panel's frame at all
            assert not box.overlaps(ax.get_window_extent()) or box.y0 >= ax.get_window_extent().y1 - 1


def test_compare_figure_draws_ranking_metrics_as_bars(small_dataset, tmp_path, monkeypatch):
    from mfrec.plots.compare import comparison_figure

    root = tmp_path / "Experiments_"
    make_run(root, small_dataset, name="mf-a", model="mf", k=4, seed=1)
    for name, seed in (("seq-b", 2), ("ncf-c", 3)):
        make_run(root, small_dataset, name=name, model="ncf", k=16, seed=seed, with_model=False,
                 extra_columns=("val_hit@10", "val_ndcg@10"))
    seen = _capture_figure(monkeypatch)
    comparison_figure([root / "mf-a", root / "seq-b", root / "ncf-c"], tmp_path / "c.png")
    fig = seen["fig"]
    assert len(fig.axes) == 2
    rank = next(ax for ax in fig.axes if "ranking" in ax.get_title(loc="left"))
    assert [t.get_text() for t in rank.get_xticklabels()] == ["hit@10", "ndcg@10"]  # test-set values, not val_
    assert len(rank.patches) == 4  # two runs x two metrics; the ALS run has none
    assert {round(p.get_height(), 4) for p in rank.patches} == {0.16}
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(labels) == 3 and any(label.startswith("mf-a (test RMSE") for label in labels)


def test_ranking_values_prefer_test_metrics_and_name_validation_ones():
    from mfrec.plots.compare import ranking_values

    assert ranking_values({"hit@10": 0.3, "val_hit@10": 0.2, "test_ndcg@10": 0.1, "test_rmse": 0.9}) == \
        {"hit@10": 0.3, "ndcg@10": 0.1}
    assert ranking_values({"val_hit@10": 0.2, "test_hit@10": None}) == {"val hit@10": 0.2}
    assert ranking_values({"test_rmse": 0.9}) == {}


def test_runs_that_measured_test_once_get_a_star_and_runs_without_validation_their_training_curve(
        small_dataset, tmp_path, monkeypatch):
    """Since per-epoch evaluation became a callback, an ALS run's metrics.csv has validation RMSE per
    epoch (or, without a validation split, training RMSE) and its test RMSE is in summary.json only."""
    import json

    from mfrec.cli.compare import compare

    root = tmp_path / "Experiments_"
    make_run(root, small_dataset, name="new-val", model="mf", seed=1, test_curve=False, train_curve=False)
    make_run(root, small_dataset, name="new-noval", model="mf", seed=2, val=False, test_curve=False)
    make_run(root, small_dataset, name="old", model="mf", seed=3)  # a test curve, from before
    summary = json.loads((root / "new-val" / "summary.json").read_text())
    summary["best_epoch"] = 4
    (root / "new-val" / "summary.json").write_text(json.dumps(summary))
    seen = _capture_figure(monkeypatch)
    res = CliRunner().invoke(compare, [str(root / "*"), "--runs-root", str(root)])
    assert res.exit_code == 0, res.output
    (ax,) = [a for a in seen["fig"].axes if "RMSE per epoch" in a.get_title(loc="left")]
    stars = [(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.get_lines() if line.get_marker() == "*"]
    tests = {name: json.loads((root / name / "summary.json").read_text())["test_rmse"] for name in ("new-val", "new-noval")}
    assert sorted(stars) == sorted([((4,), (tests["new-val"],)), ((6,), (tests["new-noval"],))])
    dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and len(dotted[0].get_xdata()) == 6  # the run without validation: its training curve
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1  # the old run's test curve
    labels = [t.get_text() for lg in seen["legends"] for t in lg.get_texts()]
    assert "test, kept model (once)" in labels and "train" in labels
    assert any(t.startswith("new-val (test RMSE ") for t in labels)
