"""Learning curves: train / validation / test RMSE per epoch, best epoch marked (plots/rmse.png).

ALS runs record validation RMSE per epoch (training RMSE as configured) and measure the test split
once, on the kept model; that one number is drawn as a single point at the kept epoch. Older runs and
other models (neural, bayes) that wrote a test RMSE every epoch keep their test curve.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence


def _series(metrics: Any, column: str) -> list[float | None]:
    if hasattr(metrics, "get_column"):  # polars
        return list(metrics.get_column(column).to_list()) if column in metrics.columns else []
    if isinstance(metrics, dict):
        return list(metrics.get(column, []))
    return [getattr(row, column, None) for row in metrics]  # rows such as mfrec.callbacks.EpochReport


def _ok(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def plot_rmse(metrics: Any, path: str | os.PathLike, best_epoch: int | None = None, title: str | None = None,
              dpi: int | None = None, sampler: bool = False, test_rmse: float | None = None) -> Path:
    """Write the RMSE-per-epoch figure to ``path`` (PNG at ``dpi``, default the shared one); ``metrics`` is
    a polars frame, a dict of columns or a list of per-epoch records with epoch/train_rmse/val_rmse/test_rmse.
    ``sampler``: a Gibbs run (bayes): one row per sample, validation/test are the running posterior mean.
    ``test_rmse``: the kept model's test RMSE, measured once after training, drawn as one point at
    ``best_epoch`` (else the last epoch) when ``metrics`` has no per-epoch test values."""
    from mfrec.plots.style import PALETTE, figure, save, styled

    epochs = _series(metrics, "epoch")
    styles = {"train_rmse": ("train", PALETTE[0], "o", "-"), "val_rmse": ("validation", PALETTE[1], "s", "-"),
              "test_rmse": ("test", PALETTE[2], "^", "--")}
    with styled():
        fig, ax = figure()
        plotted: list[float] = []
        for col, (label, color, marker, ls) in styles.items():
            ys: Sequence = _series(metrics, col)
            pts = [(e, y) for e, y in zip(epochs, ys) if _ok(y)]
            if not pts:
                continue
            xs, vs = zip(*pts)
            plotted.extend(vs)
            if sampler:
                label = "train (that sample)" if col == "train_rmse" else f"{label} (running posterior mean)"
            ax.plot(xs, vs, marker=None if sampler else marker, ls=ls, color=color,
                    label=f"{label} (last {vs[-1]:.4f})", markersize=5)
        test_curve = any(_ok(v) for v in _series(metrics, "test_rmse"))
        if _ok(test_rmse) and not test_curve and epochs:
            at = best_epoch if best_epoch in epochs else epochs[-1]
            label, color, marker, _ = styles["test_rmse"]
            ax.plot([at], [test_rmse], ls="none", marker="*", markersize=15, color=color, zorder=5,
                    label=f"{label}: kept model, measured once ({test_rmse:.4f})")
            ax.annotate(f"{test_rmse:.4f}", (at, test_rmse), xytext=(8, 6), textcoords="offset points", color=color)
            ax.margins(x=0.06, y=0.12)  # room for the star and its number inside the frame
            plotted.append(float(test_rmse))
        if best_epoch is not None and best_epoch in epochs:
            validated = any(_ok(v) for v in _series(metrics, "val_rmse"))
            # without a validation split nothing chose the epoch: training simply kept the last one
            label = (f"best epoch ({best_epoch}, lowest validation RMSE)" if validated
                     else f"kept epoch ({best_epoch}; no validation split)")
            ax.axvline(best_epoch, color="grey", linestyle=":", linewidth=1.5, label=label)
        ax.set_xlabel("Gibbs sample" if sampler else "epoch")
        ax.set_ylabel("RMSE (stars, lower is better)")
        ax.set_title(title or ("RMSE per Gibbs sample" if sampler else "RMSE per epoch"))
        if epochs and len(epochs) <= 20:
            ax.set_xticks(list(epochs))
        if plotted:
            ax.legend(loc="best")
        return save(fig, path, dpi)
