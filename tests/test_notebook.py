"""notebooks/analysis.ipynb: a tutorial over the public API, stored with its outputs, that still runs.

The notebook is executed here as a reader would run it (generated data, nothing to download), and
once more pointed at an existing run through its parameters cell; its code is also read statically
for anything a newcomer should not copy: private names, known internals, environment variables,
hand-made maps that ``mfrec.plots`` draws, bare ``assert`` statements.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"

# the modules the notebook may import from mfrec: the documented entry points
PUBLIC_MODULES = {
    "mfrec", "mfrec.data", "mfrec.data.prepare", "mfrec.data.splits", "mfrec.data.synthetic", "mfrec.training",
    "mfrec.plots", "mfrec.plots.run", "mfrec.analysis.dataset",
}
# attributes that are implementation details of a run, a dataset or a recommender
INTERNALS = {"recommender", "movie_id_array", "train_by_movie", "train_by_user", "movie_genres", "indptr", "indices",
             "environ", "getenv", "linalg"}
MAX_BYTES = 600_000  # the stored notebook, figures included


def _nbformat():
    return pytest.importorskip("nbformat")


def _code_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _parameters_cell(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "the notebook has exactly one cell tagged 'parameters' (the one a reader edits)"
    return tagged[0]


def _outputs(nb) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _text(nb) -> str:
    return "\n".join("".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in _outputs(nb))


def _execute(nb, cwd: Path, overrides: str | None = None):
    """Run ``nb`` in a fresh kernel with ``cwd`` as its folder; ``overrides`` (code) runs right after the
    parameters cell, as a reader's edit of that cell would."""
    nbformat = _nbformat()
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if overrides:
        nb.cells.insert(_parameters_cell(nb) + 1, nbformat.v4.new_code_cell(overrides))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    errors = [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert not errors, errors
    return nb


def _pngs(nb) -> int:
    return sum("image/png" in o.get("data", {}) for o in _outputs(nb))


def test_the_stored_notebook_has_its_outputs_and_stays_small():
    """What GitHub or Jupyter shows before anything is run: every code cell ran once, in order, without
    an error, on the default (generated) data; the figures are there; the file stays small."""
    nbformat = _nbformat()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "run every cell once, top to bottom, before saving"
    assert not [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert _pngs(nb) >= 4  # curves, biases, movie map, genre factors
    assert "the made-up user likes:" in _text(nb)
    params = nb.cells[_parameters_cell(nb)].source
    assert "DATASET = None" in params and "RUN = None" in params  # stored from the default, generated data
    assert NOTEBOOK.stat().st_size < MAX_BYTES


def _defines(module: str, name: str) -> bool:
    """``from module import name`` works: an attribute or a submodule of ``module``."""
    if hasattr(importlib.import_module(module), name):
        return True
    return importlib.util.find_spec(f"{module}.{name}") is not None


def _problems(source: str) -> list[str]:
    """What a cell does that a tutorial over the public API must not."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_") and not node.attr.endswith("__"):
                found.append(f"private attribute .{node.attr}")
            if node.attr in INTERNALS:
                found.append(f"internal .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in INTERNALS:
            found.append(f"internal {node.id}")
        elif isinstance(node, ast.Assert):
            found.append("assert (a tutorial shows results; the tests check them)")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for alias in node.names:
                full = module or alias.name
                if full in ("os", "sys") or full.startswith(("os.", "sys.")):
                    found.append(f"import {full} (parameters are set in the parameters cell)")
                if not full.startswith("mfrec"):
                    continue
                if full not in PUBLIC_MODULES:
                    found.append(f"import from {full}, not one of the public modules")
                elif module and (alias.name.startswith("_") or not _defines(module, alias.name)):
                    found.append(f"{module}.{alias.name} is not a public name")
    return found


def test_every_cell_uses_the_public_api_only():
    nb = _nbformat().read(NOTEBOOK, as_version=4)
    problems = {i: p for i, src in enumerate(_code_cells(nb)) if (p := _problems(src))}
    assert not problems, problems


def test_the_public_api_check_catches_what_the_old_notebook_did():
    """The checker itself: the internals, environment variables, hand-made PCA and assert of the
    notebook before it became a tutorial are each reported."""
    old = """
import os
from mfrec.inference.recommend import Recommender
EXPERIMENT = os.environ.get("MFREC_EXPERIMENT")
counts = np.diff(np.asarray(exp.dataset.train_by_movie.indptr))
_, S, Vt = np.linalg.svd(X, full_matrices=False)
liked = {int(exp.recommender.movie_id_array[0])}
x = exp._model
assert not liked
"""
    text = "\n".join(_problems(old))
    for what in ("import os", "mfrec.inference.recommend", ".environ", ".train_by_movie", ".indptr", ".linalg",
                 ".recommender", ".movie_id_array", "private attribute ._model", "assert"):
        assert what in text, what
    assert _problems("from mfrec.data import _npy") and _problems("from mfrec.data import no_such_name")
    assert not _problems("import mfrec\nexp = mfrec.load_experiment(RUN)\nexp.__class__")


def test_the_notebook_runs_on_generated_data(tmp_path, monkeypatch):
    """As shipped: generates a dataset, trains a run, draws the figures, answers the made-up user,
    all under a temporary folder (here the test's)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's default WORKDIR is a new temporary folder
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = _execute(_nbformat().read(NOTEBOOK, as_version=4), tmp_path)
    text = _text(nb)
    assert "synthetic-demo" in text and "the made-up user likes:" in text and "folded-in bias" in text
    assert _pngs(nb) >= 4
    assert list(tmp_path.glob("mfrec-notebook-*/Experiments_/synthetic-demo-mf-genre*/model.npz"))


def test_the_notebook_opens_an_existing_run(tmp_path, small_dataset, monkeypatch):
    """The parameters cell pointed at a run trained elsewhere (an mf run, so no genre factors):
    nothing is trained, and the figures, similar movies and made-up user come from that run."""
    from mfrec.training import train_run

    monkeypatch.setenv("MPLBACKEND", "Agg")
    run, _ = train_run(small_dataset, "mf", {"factors": 6, "epochs": 3, "seed": 1}, runs_root=tmp_path / "Experiments_",
                       name="given")
    nb = _execute(_nbformat().read(NOTEBOOK, as_version=4), tmp_path, f"RUN = {str(run.path)!r}")
    text = _text(nb)
    assert run.name in text and "mf model with 6 factors" in text
    assert "only mf-genre learns them" in text
    assert "the made-up user likes:" in text
    assert not list(tmp_path.glob("mfrec-notebook-*")) and len(list((tmp_path / "Experiments_").iterdir())) == 1


def test_figures_take_a_dpi_for_smaller_files(tmp_path, small_dataset):
    """``dpi=`` (what the notebook passes) sets the resolution of a figure file; the default is unchanged."""
    import numpy as np
    from matplotlib.image import imread

    import mfrec
    from mfrec.plots import run as figures
    from mfrec.plots.style import DPI, WIDE

    model = mfrec.train(small_dataset, {"model": "mf", "factors": 4, "epochs": 2})
    for dpi in (None, 60):
        png = figures.biases_figure(model, tmp_path / f"biases-{dpi}.png", dpi=dpi)
        height, width = imread(png).shape[:2]
        want = dpi or DPI
        assert (width, height) == (round(WIDE[0] * want), round(WIDE[1] * want)), dpi  # biases: two panels
    q = np.asarray(model.effective_movie_factors)
    small = figures.movie_map_figure(q, small_dataset, tmp_path / "map-60.png", dpi=60)
    large = figures.movie_map_figure(q, small_dataset, tmp_path / "map.png")
    assert small.stat().st_size < large.stat().st_size
