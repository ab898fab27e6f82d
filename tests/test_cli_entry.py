"""The real entry points, run as a user runs them: in a fresh interpreter, not through CliRunner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mfrec.cli import COMMANDS

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_mfrec_help_lists_every_command_without_heavy_imports():
    code = (
        "import sys\n"
        "from mfrec.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('numba', 'polars', 'matplotlib', 'torch') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = _run("-c", code)
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert name in out.stdout
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize("script,words", [
    ("Data_processing.py", "--dataset"),
    ("Main.py", "--model"),
    ("Inference.py", "--experiment"),
])
def test_top_level_scripts_show_their_help(script, words):
    out = _run(script, "--help")
    assert out.returncode == 0, out.stderr
    assert words in out.stdout
    assert f"Usage: {script}" in out.stdout


def test_python_dash_m_mfrec_runs_a_subcommand_help():
    out = _run("-m", "mfrec", "prepare", "--help")
    assert out.returncode == 0, out.stderr
    assert "--split" in out.stdout


def test_plain_import_mfrec_reaches_the_subpackages_and_api():
    code = (
        "import sys, mfrec\n"
        "assert 'numba' not in sys.modules and 'polars' not in sys.modules\n"
        "assert callable(mfrec.data.load) and callable(mfrec.train) and callable(mfrec.load_experiment)\n"
        "print('ok')\n"
    )
    out = _run("-c", code)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr
