"""Neural options are checked like ALS ones: every numeric option finite and in range, the bad one named.

``resolve_options`` imports torch (it sets the thread count), so these tests skip without it.
"""

from __future__ import annotations

import importlib
import math
import re

import pytest

torch = pytest.importorskip("torch")

from mfrec.errors import MfrecError  # noqa: E402
from mfrec.neural import MODELS  # noqa: E402


def _defaults(model: str) -> dict:
    return dict(importlib.import_module(f"mfrec.neural.{model.replace('-', '_')}").DEFAULTS)


@pytest.mark.parametrize("model", MODELS)
def test_every_numeric_default_has_a_rule_and_passes_it(model):
    from mfrec.neural.common import OPTION_RULES, resolve_options

    defaults = _defaults(model)
    numeric = {k for k, v in defaults.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric - set(OPTION_RULES) == set(), "a neural option without a range check"
    assert resolve_options({}, defaults, model) == {**defaults, "device": defaults.get("device", "cpu")}


@pytest.mark.parametrize("model", MODELS)
def test_nan_inf_and_out_of_range_values_are_refused_naming_the_option(model):
    from mfrec.neural.common import OPTION_RULES, resolve_options

    defaults = _defaults(model)
    for key, default in defaults.items():
        if key not in OPTION_RULES:
            continue
        bad = [-5, -1] + ([math.nan, math.inf, -math.inf] if isinstance(default, float) else [1.5, True, "3"])
        for value in bad:
            if OPTION_RULES[key].accepts(value):
                continue  # e.g. -1 is not below every range; the others still are
            with pytest.raises(MfrecError, match=rf"{model}: .*{key.replace('_', '.')}.* got {re.escape(repr(value))}"):
                resolve_options({key: value}, defaults, model)


@pytest.mark.parametrize("value", [math.nan, -5.0, math.inf])
def test_reg_nan_or_negative_is_refused(value):
    from mfrec.neural.common import resolve_options

    with pytest.raises(MfrecError, match=r"neumf: --reg must be a finite number >= 0, got"):
        resolve_options({"reg": value}, _defaults("neumf"), "neumf")


def test_shared_options_outside_the_defaults_are_checked_too():
    from mfrec.neural.common import resolve_options

    defaults = _defaults("sequential")  # no reg, threads or patience among its defaults
    with pytest.raises(MfrecError, match="--threads"):
        resolve_options({"threads": -2}, defaults, "sequential")
    with pytest.raises(MfrecError, match="--patience"):
        resolve_options({"patience": -1}, defaults, "sequential")
    with pytest.raises(MfrecError, match="--reg"):
        resolve_options({"reg": math.nan}, defaults, "sequential")


def test_valid_edges_are_accepted():
    from mfrec.neural.common import resolve_options

    out = resolve_options({"reg": 0, "dropout": 0.0, "self_pair": 1.0, "weight_decay": 0.0, "patience": 0, "seed": 0},
                          _defaults("attention"), "attention")
    assert out["reg"] == 0 and out["self_pair"] == 1.0 and out["seed"] == 0


@pytest.mark.parametrize("args, says", [
    (["--reg", "nan"], "--reg must be a finite number >= 0, got nan"),
    (["--reg", "-5"], "--reg must be a finite number >= 0, got -5.0"),
    (["--set", "init_std=nan"], "init_std (--set init_std=...) must be a finite number > 0, got nan"),
    (["--set", "dropout=1.5"], "no option"),  # neumf has no dropout: the existing unknown-key sentence
])
def test_main_refuses_bad_neural_options_in_one_sentence(tmp_path, small_dataset, args, says):
    from click.testing import CliRunner

    from mfrec.cli.train import train

    res = CliRunner().invoke(train, ["--data", str(small_dataset.path), "--model", "neumf", "--epochs", "1",
                                     "--quiet", "--runs-root", str(tmp_path / "runs"), *args])
    assert res.exit_code == 2, res.output
    assert says in res.output and "Traceback" not in res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # refused before a run folder
