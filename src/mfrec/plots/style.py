"""One look for every mfrec figure: Agg backend, readable fonts, a fixed palette, atomic PNG writes.

Every figure in ``mfrec.plots`` is made with :func:`figure` and written with :func:`save`, so that
all of them share a size (8 x 5 inches at 130 dpi, about 1040 x 650 pixels), font sizes of at
least 10 points and the same colours, and a half-written PNG is never left behind.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

FIGSIZE = (8.0, 5.0)
WIDE = (11.0, 5.0)
DPI = 130

# Colour-blind-friendly qualitative palette (Okabe-Ito, then Tableau for more categories).
PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF",
]
OTHER = "#BBBBBB"  # the "other" category in a coloured scatter

RC = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "figure.titlesize": 14,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "lines.linewidth": 2.0,
}


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


@contextmanager
def styled() -> Iterator[None]:
    """Apply mfrec's rcParams for the figures made inside the block."""
    import matplotlib

    pyplot()
    with matplotlib.rc_context(RC):
        yield


def figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, **kwargs):
    """A new (fig, axes) with mfrec's size; call inside :func:`styled`."""
    plt = pyplot()
    if figsize is None:
        figsize = FIGSIZE if ncols == 1 else WIDE
    kwargs.setdefault("layout", "constrained")
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    if kwargs["layout"] == "constrained":
        fig.get_layout_engine().set(w_pad=0.12, h_pad=0.12)  # a margin (inches) around the edges
    return fig, axes


def save(fig, path: str | os.PathLike, dpi: int | None = None) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically (temporary name, then rename) and close it;
    ``dpi`` (default :data:`DPI`) sets the resolution, e.g. a lower one for smaller files in a notebook."""
    plt = pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from mfrec.io import atomic_path

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi or DPI)
    finally:
        plt.close(fig)
    return path


def colors(n: int) -> list[str]:
    """``n`` distinct colours from the palette (cycled when n exceeds it)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def thousands(x: float, _pos=None) -> str:
    """Tick formatter: 500 / 2.5k / 1.2M."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M"
    if abs(x) >= 1e3:
        return f"{x / 1e3:g}k"
    return f"{x:,.0f}"
