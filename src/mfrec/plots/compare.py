"""Several runs' RMSE curves on one figure (``mfrec compare``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mfrec.analysis import runs as R
from mfrec.experiments.run import read_metrics
from mfrec.plots.style import colors, figure, save, styled

# which curves to overlay, and how each is drawn
CURVES = (("val_rmse", "-", "validation"), ("test_rmse", "--", "test"))


def comparison_figure(run_paths: Sequence[str | Path], path, title: str | None = None) -> Path | None:
    """Validation (solid) and test (dashed) RMSE per epoch of every run, one colour per run.

    Runs with neither curve (ranking-only models) are left out; returns None when no run has one.
    """
    series = []
    for p in run_paths:
        c = R.curves(read_metrics(p))
        drawn = {k: c[k] for k, _, _ in CURVES if k in c}
        if drawn:
            series.append((Path(p).name, drawn))
    if not series:
        return None
    with styled():
        rows = len(series) if max(len(n) for n, _ in series) > 30 or len(series) < 3 else (len(series) + 1) // 2
        fig, ax = figure(figsize=(9.0, 5.0 + 0.3 * rows + 0.5))
        lo, hi = np.inf, -np.inf
        from matplotlib.lines import Line2D

        run_handles = []
        for (name, drawn), color in zip(series, colors(len(series))):
            for key, ls, what in CURVES:
                if key in drawn:
                    x, y = drawn[key]
                    ax.plot(x, y, ls=ls, color=color, marker="o" if len(x) < 30 else None, ms=3.5)
                    lo, hi = min(lo, float(np.min(y))), max(hi, float(np.max(y)))
            key = "test_rmse" if "test_rmse" in drawn else "val_rmse"
            final = f"{'test' if key == 'test_rmse' else 'val'} {float(drawn[key][1][-1]):.4f}"
            run_handles.append(Line2D([], [], color=color, marker="o", ms=4, label=f"{name} ({final})"))
        # a y range that shows the differences rather than the first epoch's drop
        if np.isfinite(lo) and hi > lo:
            finals = [float(d[k][1][-1]) for _, d in series for k in d]
            top = min(hi, max(finals) + 2.5 * (max(finals) - lo + 0.01))
            ax.set_ylim(lo - 0.05 * (top - lo), top)
        ax.set_xlabel("epoch")
        ax.set_ylabel("RMSE (stars)")
        ax.set_title(title or f"RMSE per epoch of {len(series)} run{'s' if len(series) > 1 else ''}", fontsize=12)
        present = {k for _, drawn in series for k in drawn}  # only the curve kinds some run has
        style = [Line2D([], [], color="0.3", ls=ls, label=what) for key, ls, what in CURVES if key in present]
        ax.legend(handles=style, title="curve", loc="upper right", frameon=True)
        # run names are long: their legend goes below the axes, across the figure
        longest = max(len(h.get_label()) for h in run_handles)
        ncol = 1 if longest > 45 or len(series) < 3 else 2
        fig.legend(handles=run_handles, title="run (RMSE at the last epoch)", loc="outside lower center",
                   ncol=ncol, frameon=False)
        return save(fig, path)
