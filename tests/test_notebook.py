"""notebooks/analysis.ipynb runs end to end on a small synthetic run (through the public API only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_inference import make_run

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "analysis.ipynb"


def test_analysis_notebook_executes(tmp_path, small_dataset, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    run = make_run(tmp_path / "Experiments_", small_dataset, "mf-genre", name="nb")
    monkeypatch.setenv("MFREC_EXPERIMENT", str(run))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("MFREC_LIKES", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = ["".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(outputs)
    assert "errors" not in {o.get("output_type") for c in nb.cells if c.cell_type == "code" for o in c.outputs}
    assert run.name in text  # loaded the run it was given
    assert "the made-up user likes:" in text and "folded-in user bias" in text
    assert "none of the 3 liked films among them" in text
