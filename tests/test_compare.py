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

    res = CliRunner().invoke(compare, ["mf-a", "mf-genre-c", "mf-a", "--root", str(runs)])
    assert res.exit_code == 0, res.output
    assert "2 runs" in res.output  # the duplicate is dropped
    assert pl.read_csv(runs / "comparison.csv").height == 2
    assert_png(runs / "comparison.png")


def test_compare_cli_errors(runs, tmp_path):
    from mfrec.cli.compare import compare

    res = CliRunner().invoke(compare, [str(tmp_path / "zz-*")])
    assert res.exit_code == 2 and "no runs match" in res.output
    res = CliRunner().invoke(compare, ["nope", "--root", str(runs)])
    assert res.exit_code == 2 and "no experiment 'nope'" in res.output


def test_ranking_only_runs_give_a_table_but_no_figure(small_dataset, tmp_path):
    from mfrec.cli.compare import compare

    run = make_run(tmp_path, small_dataset, name="rank-only", model="ncf", with_model=False, extra_columns=("val_hit@10",))
    text = (run / "metrics.csv").read_text().splitlines()
    cols = text[0].split(",")
    rows = [dict(zip(cols, line.split(","))) for line in text[1:]]
    for r in rows:
        r["train_rmse"] = r["val_rmse"] = r["test_rmse"] = ""
    (run / "metrics.csv").write_text("\n".join([text[0]] + [",".join(r[c] for c in cols) for r in rows]) + "\n")
    res = CliRunner().invoke(compare, [str(run), "--csv", str(tmp_path / "c.csv"), "--out", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    assert "no run has RMSE curves" in res.output and not (tmp_path / "c.png").exists()
    assert pl.read_csv(tmp_path / "c.csv")["test_hit@10"][0] == pytest.approx(0.16)


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
