"""The figure of a hyperparameter search (``mfrec tune``): the validation metric against each option.

One panel per searched option. Its values sit evenly spaced on the x axis (so 16, 64, 256 or
0.01, 0.1, 1 read like a log scale and text values work too); every finished trial is a dot above its value, the
best trial at each value is joined by a line (the option's best case with the others chosen
well), and the overall best trial is a star in every panel, so one can see at a glance which option
matters and whether the best value lies at the edge of the grid (then the grid should grow).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mfrec.plots.style import PALETTE, figure, save, styled

PER_ROW = 3


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def tune_figure(rows: list[dict[str, Any]], grid: dict[str, list[Any]], metric: str, path, title: str | None = None,
                lower_is_better: bool = True) -> Path | None:
    """Draw ``rows`` (the leaderboard, best first) as ``path``; None when no trial has finished."""
    done = [r for r in rows if r.get("status") == "ok" and isinstance(r.get(metric), (int, float))]
    if not done:
        return None
    keys = list(grid)
    ncols = min(PER_ROW, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    best = done[0]
    values = [r[metric] for r in done]
    span = (max(values) - min(values)) or abs(values[0]) * 0.01 or 1.0
    with styled():
        fig, axes = figure(nrows, ncols, figsize=(4.2 * ncols + 0.6, 3.8 * nrows + 0.8), sharey=True, squeeze=False)
        for n, key in enumerate(keys):
            ax = axes[n // ncols][n % ncols]
            levels = grid[key]
            pos = {v: i for i, v in enumerate(levels)}
            for i, v in enumerate(levels):
                ys = [r[metric] for r in done if r.get(key) == v]
                if not ys:
                    continue
                ax.scatter([i] * len(ys), ys, s=30, color=PALETTE[0], alpha=0.5, edgecolor="white", linewidth=0.5,
                           zorder=2, label="a trial" if i == 0 else None)
            top = [(pos[v], (min if lower_is_better else max)(r[metric] for r in done if r.get(key) == v))
                   for v in levels if any(r.get(key) == v for r in done)]
            ax.plot([x for x, _ in top], [y for _, y in top], color=PALETTE[1], marker="o", zorder=3,
                    label=f"best trial at each {key}")
            bx, by = pos[best[key]], best[metric]
            ax.scatter([bx], [by], marker="*", s=260, color=PALETTE[3], edgecolor="black", linewidth=0.6, zorder=4,
                       label=f"best: {key}={_fmt(best[key])}")
            ax.annotate(f"{by:.4f}", (bx, by), xytext=(0, -14 if lower_is_better else 10),
                        textcoords="offset points", ha="center", fontsize=9)
            ax.set_xticks(range(len(levels)), [_fmt(v) for v in levels])
            ax.set_xlim(-0.5, len(levels) - 0.5)
            ax.set_xlabel(key)
            if n % ncols == 0:
                ax.set_ylabel(f"{metric} ({'lower' if lower_is_better else 'higher'} is better)")
            ax.legend(loc="upper center" if lower_is_better else "lower center", frameon=False, fontsize=9)
        for n in range(len(keys), nrows * ncols):
            axes[n // ncols][n % ncols].set_visible(False)
        lo, hi = min(values), max(values)
        axes[0][0].set_ylim(lo - 0.12 * span, hi + 0.35 * span)
        fig.suptitle(title or "hyperparameter search")
        fig.text(0.01, 0.005, f"{len(done)} of {len(rows)} trials finished; validation split only",
                 fontsize=9, color="#555555")
        return save(fig, path)
