"""A group request (``Inference.py --users``) that names one user twice is refused in one sentence."""

from __future__ import annotations

import pytest

from mfrec.errors import DataError


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_dataset):
    import mfrec
    from mfrec.experiments import Run

    fitted = mfrec.train(small_dataset, {"model": "mf", "factors": 4, "epochs": 1, "seed": 1})
    run = Run.create("groups", tmp_path_factory.mktemp("Experiments_"), config=fitted.config)
    fitted.save(run.model_path)
    run.save_summary({"dataset": small_dataset.name, "model": "mf"})
    return run.path


def _ids(dataset, *rows):
    return [str(int(dataset.user_ids.ids[u])) for u in rows]


def test_a_repeated_member_is_refused(run, small_dataset):
    from mfrec import load_experiment

    rec = load_experiment(run).recommender
    a, b = _ids(small_dataset, 3, 4)
    with pytest.raises(DataError, match=rf"--users lists user {a} twice: .* use --user {a}\)$"):
        rec.recommend_group([a, a])
    with pytest.raises(DataError, match=rf"user {a} \(as {a} and 0{a}\) twice"):
        rec.recommend_group([a, b, "0" + a])  # the same user written two ways
    assert rec.recommend_group([a, b], n=3).table.height == 3  # distinct members still work


def test_inference_refuses_users_1_1_with_exit_2(run, small_dataset, tmp_path):
    from click.testing import CliRunner

    from mfrec.cli.recommend import recommend

    (a,) = _ids(small_dataset, 3)
    res = CliRunner().invoke(recommend, ["-e", str(run), "--users", f"{a},{a}", "--out-dir", str(tmp_path / "p")])
    assert res.exit_code == 2, res.output
    assert f"error: --users lists user {a} twice" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "p").exists()  # nothing written
