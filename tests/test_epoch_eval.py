"""Per-epoch evaluation as a callback (issue 13): validation only by default, the test split read once,
after the fit, on the kept model; training RMSE on request (or without a validation split)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import mfrec
from mfrec.callbacks import EpochReport
from mfrec.models import ALSConfig
from mfrec.models.epoch_eval import EpochState, RatingEvaluation, train_metrics_on


class NoTestDuring:
    """``dataset`` as the fit sees it, with a test split that fails the test when read while ``self.fitting``.

    ``reads`` counts the reads of the test split (attribute access, so even ``len(dataset.test)`` counts).
    """

    def __init__(self, dataset):
        self._dataset = dataset
        self.fitting = False
        self.reads = 0

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    @property
    def test(self):
        if self.fitting:
            raise AssertionError("the test split was read during training")
        self.reads += 1
        return self._dataset.test


@pytest.fixture(scope="module")
def no_val(small_dataset):
    """small_dataset trained on train + validation: no validation split."""
    return small_dataset.train_with_validation()


def _fit(dataset, config, **kw):
    reports = []
    model = mfrec.models.als.fit(dataset, ALSConfig.for_model(**config),
                                 callback=lambda e: isinstance(e, EpochReport) and reports.append(e), **kw)
    return model, reports


@pytest.mark.parametrize("model", ["bias", "mf", "mf-genre"])
def test_the_fit_never_reads_the_test_split(small_dataset, model):
    spy = NoTestDuring(small_dataset)
    spy.fitting = True
    fitted, reports = _fit(spy, {"model": model, "factors": 4, "epochs": 3, "patience": 0})
    assert spy.reads == 0 and len(reports) == 3
    # validation only, by default
    assert all(r.val_rmse is not None and r.train_rmse is None and r.test_rmse is None for r in reports)
    assert reports[-1].val_rmse == pytest.approx(fitted.evaluate(small_dataset.val)["rmse"], rel=1e-6)


def test_ials_never_reads_the_test_split_and_reports_no_loss_beside_validation(user_last):
    from mfrec.models.ials import fit
    from mfrec.training import validation_ranking

    spy = NoTestDuring(user_last)
    spy.fitting = True
    config = ALSConfig.for_model("ials", factors=8, epochs=2, patience=0, refit_with_val=False)
    m = fit(spy, config, validate=validation_ranking(user_last))
    assert spy.reads == 0
    assert all("val_ndcg@10" in r.metrics and "train_loss" not in r.metrics for r in m.history)
    on = fit(user_last, config.replace(train_metrics=True), validate=validation_ranking(user_last))
    assert all(r.metrics["train_loss"] > 0 for r in on.history)
    np.testing.assert_array_equal(on.user_factors, m.user_factors)  # measuring does not change the fit


@pytest.fixture(scope="module")
def user_last(tmp_path_factory, small_raw):
    from mfrec.data import load
    from mfrec.data.prepare import prepare
    from mfrec.data.splits import SplitSpec

    out, _ = prepare(small_raw, SplitSpec("user-last", holdout=2, val_fraction=0.1), name="ul",
                     root=tmp_path_factory.mktemp("Training_data"))
    return load(out)


def test_train_metrics_adds_the_training_curve_without_changing_the_model(small_dataset):
    base, plain = _fit(small_dataset, {"model": "mf-genre", "factors": 4, "epochs": 3, "patience": 0})
    model, reports = _fit(small_dataset, {"model": "mf-genre", "factors": 4, "epochs": 3, "patience": 0,
                                          "train_metrics": True})
    for key in ("user_factors", "movie_factors", "genre_factors", "user_bias", "movie_bias"):
        np.testing.assert_array_equal(getattr(model, key), getattr(base, key))
    assert [r.val_rmse for r in reports] == [r.val_rmse for r in plain]
    train = [r.train_rmse for r in reports]
    assert all(t is not None for t in train) and train[-1] < train[0]
    assert train[-1] == pytest.approx(model.evaluate(small_dataset.train)["rmse"], rel=1e-5)
    # the kept model's training RMSE (the fold-in prior's noise) is the same whether measured per epoch or once
    assert base.config["train_rmse"] == model.config["train_rmse"] == train[-1]
    assert base.config["fold_in_prior"] == model.config["fold_in_prior"]


def test_without_a_validation_split_the_training_rmse_is_the_curve_unless_turned_off(no_val):
    assert no_val.val is None or len(no_val.val) == 0
    model, reports = _fit(no_val, {"model": "mf", "factors": 4, "epochs": 3})
    assert all(r.train_rmse is not None and r.val_rmse is None for r in reports)
    assert model.best_epoch == 3  # nothing to choose on: the last epoch
    off, quiet = _fit(no_val, {"model": "mf", "factors": 4, "epochs": 3, "train_metrics": False})
    assert all(r.train_rmse is None and r.val_rmse is None and r.seconds > 0 for r in quiet)
    assert "train RMSE" not in quiet[-1].note and quiet[-1].note.startswith("epoch 3: ")
    np.testing.assert_array_equal(off.user_factors, model.user_factors)
    # the prior still gets its noise level: the kept model's training RMSE, measured once
    assert off.config["train_rmse"] == pytest.approx(reports[-1].train_rmse, rel=1e-12)
    assert off.calibrated and off.config["fold_in_prior"] == model.config["fold_in_prior"]


def test_early_stopping_follows_the_evaluations_validation_rmse(small_dataset):
    """A scripted validation curve: best at epoch 2, then worse twice -> stop after 4, keep epoch 2's model."""
    curve = {1: 1.0, 2: 0.9, 3: 0.95, 4: 0.97, 5: 0.99, 6: 1.0}
    seen = []

    def evaluation(state: EpochState) -> dict:
        seen.append(state.epoch)
        # a test number that keeps falling must not keep training going: only val_rmse decides
        return {"val_rmse": curve[state.epoch], "test_rmse": 1.0 / state.epoch}

    config = {"model": "mf", "factors": 4, "epochs": 6, "patience": 2}
    model, reports = _fit(small_dataset, config, evaluate=evaluation)
    assert seen == [1, 2, 3, 4] and reports[-1].stop and model.best_epoch == 2
    two, _ = _fit(small_dataset, {**config, "epochs": 2, "patience": 0}, evaluate=evaluation)
    np.testing.assert_array_equal(model.user_factors, two.user_factors)
    np.testing.assert_array_equal(model.movie_bias, two.movie_bias)


def test_the_default_evaluation_early_stops_on_validation(small_dataset):
    cfg = {"model": "mf", "factors": 24, "epochs": 12, "reg": 0.01, "reg_bias": 0.1, "weighted_reg": False,
           "patience": 1}
    model, reports = _fit(small_dataset, cfg)
    vals = [r.val_rmse for r in reports]
    assert len(reports) < 12 and reports[-1].stop and model.best_epoch == int(np.argmin(vals)) + 1
    assert model.evaluate(small_dataset.val)["rmse"] == pytest.approx(min(vals), rel=1e-6)


def test_rating_evaluation_names_and_defaults(small_dataset, no_val):
    assert RatingEvaluation.for_run(small_dataset, ALSConfig()).splits == ("val",)
    assert RatingEvaluation.for_run(small_dataset, ALSConfig(train_metrics=True)).splits == ("val", "train")
    assert RatingEvaluation.for_run(no_val, ALSConfig()).splits == ("train",)
    assert RatingEvaluation.for_run(no_val, ALSConfig(train_metrics=False)).splits == ()
    assert train_metrics_on(ALSConfig(), no_val) and not train_metrics_on(ALSConfig(), small_dataset)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        RatingEvaluation(small_dataset, ("dev",))
    with pytest.raises(mfrec.errors.ModelError, match="train_metrics"):
        ALSConfig(train_metrics="yes").validate()
    # asked explicitly, any split is measured: the numbers are the saved model's own
    model = mfrec.train(small_dataset, {"model": "mf", "factors": 4, "epochs": 2, "patience": 0})
    state = EpochState(2, model.mu, model.user_bias, model.movie_bias, model.user_factors,
                       model.effective_movie_factors, model.rating_scale)
    got = RatingEvaluation(small_dataset, ("test", "val", "train"))(state)
    assert list(got) == ["test_rmse", "val_rmse", "train_rmse"]
    for split in ("test", "val", "train"):
        assert got[f"{split}_rmse"] == pytest.approx(model.evaluate(getattr(small_dataset, split))["rmse"], rel=1e-5)


def test_a_training_run_reads_the_test_split_once_after_the_fit(small_dataset, tmp_path, monkeypatch):
    import mfrec.models.als as als
    from mfrec.training import train_run

    spy = NoTestDuring(small_dataset)
    real_fit = als.fit

    def fit(*args, **kw):
        spy.fitting = True
        try:
            return real_fit(*args, **kw)
        finally:
            spy.fitting = False

    monkeypatch.setattr(als, "fit", fit)
    run, summary = train_run(spy, "mf-genre", {"factors": 4, "epochs": 3, "patience": 0}, runs_root=tmp_path)
    assert spy.reads > 0  # after the fit
    model = mfrec.load_experiment(run.path).model
    assert summary["test_rmse"] == pytest.approx(model.evaluate(small_dataset.test)["rmse"], rel=1e-12)
    assert summary["train_rmse"] == pytest.approx(model.evaluate(small_dataset.train)["rmse"], rel=1e-5)
    lines = (run.path / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_rmse,val_rmse,test_rmse,seconds" and len(lines) == 4
    for line in lines[1:]:
        epoch, train, val, test, seconds = line.split(",")
        assert train == "" and test == "" and float(val) > 0 and float(seconds) > 0
    assert "test RMSE" in (run.path / "train.log").read_text()


def test_the_rmse_figure_marks_the_test_point(tmp_path, monkeypatch):
    from pathlib import Path

    import mfrec.plots.style as style
    from mfrec.plots.curves import plot_rmse

    seen = {}
    real_save = style.save

    def capture(fig, path, dpi=None):
        ax = fig.axes[0]
        seen[Path(path).name] = ([t.get_text() for t in ax.get_legend().get_texts()],
                                 [(line.get_marker(), tuple(line.get_xdata()), tuple(line.get_ydata()))
                                  for line in ax.get_lines()])
        return real_save(fig, path, dpi)

    monkeypatch.setattr(style, "save", capture)
    new = {"epoch": [1, 2, 3, 4], "train_rmse": [None] * 4, "val_rmse": [0.99, 0.93, 0.92, 0.94],
           "test_rmse": [None] * 4}
    plot_rmse(new, tmp_path / "new.png", best_epoch=3, test_rmse=0.9312)
    labels, lines = seen["new.png"]
    assert "test: kept model, measured once (0.9312)" in labels
    assert ("*", (3,), (0.9312,)) in lines
    # an older run with a test curve keeps it, and gets no extra point
    old = {**new, "test_rmse": [1.0, 0.95, 0.94, 0.96]}
    plot_rmse(old, tmp_path / "old.png", best_epoch=3, test_rmse=0.94)
    labels, lines = seen["old.png"]
    assert not any(m == "*" for m, _, _ in lines) and any(t.startswith("test (last 0.9600)") for t in labels)


def test_cli_train_metrics_flag(small_dataset, tmp_path):
    from mfrec.cli.train import train

    base = ["--data", str(small_dataset.path), "--model", "mf", "--epochs", "2", "--factors", "4", "--patience", "0",
            "--runs-root", str(tmp_path), "--quiet"]
    res = CliRunner().invoke(train, base + ["--train-metrics", "--name", "on"])
    assert res.exit_code == 0, res.output
    run = next(tmp_path.glob("on-*"))
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert all(float(r[1]) > 0 and float(r[2]) > 0 and r[3] == "" for r in rows)
    assert json.loads((run / "config.json").read_text())["train_metrics"] is True
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_rmse"] == pytest.approx(float(rows[-1][1]), rel=1e-12)
    res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "bayes", "--train-metrics",
                                     "--runs-root", str(tmp_path)])
    assert res.exit_code != 0 and "--train-metrics/--no-train-metrics go with" in res.output


NEURAL_OPTS = {"epochs": 2, "factors": 8, "batch_size": 256, "seed": 3, "patience": 0, "genre_epochs": 2,
               "heads": 2, "hidden": 16, "min_length": 2}


def _neural_run(dataset, model, tmp_path, name, **opts):
    """train_run of a neural model on a NoTestDuring spy whose test split may be read only after the
    last epoch's report; returns (run, summary, epoch reports, spy, the test RMSE rmse.png marked)."""
    import mfrec.plots.curves as curves
    from mfrec.training import train_run

    spy = NoTestDuring(dataset)
    spy.fitting = True
    reports, marked = [], {}
    epochs = NEURAL_OPTS["epochs"]

    def on_event(event):
        if isinstance(event, EpochReport) and event.epoch >= 1:  # (genre-embedding's stage 1 counts up to 0)
            reports.append(event)
            spy.fitting = event.epoch < epochs

    real_plot = curves.plot_rmse

    def plot_rmse(metrics, path, **kw):
        marked.update(best_epoch=kw.get("best_epoch"), test_rmse=kw.get("test_rmse"))
        return real_plot(metrics, path, **kw)

    curves.plot_rmse = plot_rmse
    try:
        run, summary = train_run(spy, model, {**NEURAL_OPTS, **opts}, runs_root=tmp_path, name=name,
                                 callback=on_event)
    finally:
        curves.plot_rmse = real_plot
    return run, summary, reports, spy, marked


@pytest.mark.parametrize("model", ["neumf", "genre-embedding", "attention", "sequential"])
def test_the_neural_fits_never_read_the_test_split(user_last, tmp_path, model):
    """Issue 13 for the torch models: validation every epoch, training RMSE only on request, the test
    split once, after the last epoch, on the kept weights (and marked on rmse.png there)."""
    pytest.importorskip("torch", reason='the neural baselines need the torch extra: pip install -e ".[torch]"')
    from mfrec.neural import load_model

    run, summary, reports, spy, marked = _neural_run(user_last, model, tmp_path, "plain")
    assert len(reports) == 2 and spy.reads > 0  # read, and only after the last epoch
    assert all(r.test_rmse is None and r.train_rmse is None for r in reports)
    for line in (run.path / "metrics.csv").read_text().splitlines()[1:]:
        assert line.split(",")[3] == ""  # no test column
    if model == "sequential":  # a ranking model: validation ranking each epoch, test ranking once
        assert all(r.val_rmse is None and r.metrics["val_ndcg@10"] is not None for r in reports)
        assert summary["ndcg@10"] is not None and summary["test_rmse"] is None
        return
    assert all(r.val_rmse is not None for r in reports)
    loaded = load_model(run.path)
    test = user_last.test
    pred = loaded.predict(np.asarray(test.user), np.asarray(test.movie)).astype(np.float64)
    kept_test = float(np.sqrt(np.mean((pred - np.asarray(test.rating, np.float64)) ** 2)))
    assert summary["test_rmse"] == pytest.approx(kept_test, rel=1e-5)
    assert summary["val_rmse"] == reports[summary["best_epoch"] - 1].val_rmse
    assert summary["train_rmse"] > 0  # the kept weights', measured once for the summary
    assert marked == {"best_epoch": summary["best_epoch"], "test_rmse": summary["test_rmse"]}
    assert (run.path / "plots" / "rmse.png").is_file()
    # --train-metrics adds the training curve and trains the same weights
    run2, summary2, reports2, _, _ = _neural_run(user_last, model, tmp_path, "train", train_metrics=True)
    assert all(r.train_rmse is not None and r.test_rmse is None for r in reports2)
    assert [r.val_rmse for r in reports2] == [r.val_rmse for r in reports]
    assert summary2["train_rmse"] == reports2[summary2["best_epoch"] - 1].train_rmse
    assert summary2["train_rmse"] == pytest.approx(summary["train_rmse"], rel=1e-6)
    np.testing.assert_array_equal(load_model(run2.path).predict(np.asarray(test.user), np.asarray(test.movie)), pred)


def test_neural_train_metrics_option_is_checked_and_on_the_command_line(user_last, tmp_path):
    pytest.importorskip("torch", reason='the neural baselines need the torch extra: pip install -e ".[torch]"')
    from mfrec.cli.train import train
    from mfrec.errors import MfrecError
    from mfrec.neural.common import resolve_options
    from mfrec.neural.neumf import DEFAULTS

    with pytest.raises(MfrecError, match="neumf: train_metrics must be true, false or null"):
        resolve_options({"train_metrics": "yes"}, DEFAULTS, "neumf")
    res = CliRunner().invoke(train, ["--data", str(user_last.path), "--model", "neumf", "--epochs", "2", "--factors",
                                     "4", "--train-metrics", "--runs-root", str(tmp_path), "--name", "on", "--quiet"])
    assert res.exit_code == 0, res.output
    run = next(tmp_path.glob("on-*"))
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert len(rows) == 2 and all(float(r[1]) > 0 and float(r[2]) > 0 and r[3] == "" for r in rows)
    assert json.loads((run / "config.json").read_text())["train_metrics"] is True
    res = CliRunner().invoke(train, ["--data", str(user_last.path), "--model", "sequential", "--train-metrics",
                                     "--runs-root", str(tmp_path)])
    assert res.exit_code != 0 and "--train-metrics/--no-train-metrics go with" in res.output
