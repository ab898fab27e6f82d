"""Several runs side by side (``mfrec compare``): RMSE curves and ranking metrics, one row per dataset.

RMSE and ranking metrics compare only between runs on the same dataset (another split or another
MovieLens size gives other numbers), so each dataset gets its own row of panels: the validation
(solid) and test (dashed) RMSE per epoch, the training RMSE (dotted) of a run that has neither, and
a star for the test RMSE an ALS run measures once, on its kept model, at that epoch; and, when some run of it has ranking metrics (``mfrec
evaluate --protocol ranking`` or a sequential run: hit@10, ndcg@10, ...), their final values as
bars. A run keeps one colour in every panel; the legend of the runs sits below the panels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mfrec.analysis import runs as R
from mfrec.experiments.run import read_metrics
from mfrec.plots.style import colors, figure, save, styled

# which curves to overlay, and how each is drawn; the training curve only for a run without the other two
CURVES = (("val_rmse", "-", "validation"), ("test_rmse", "--", "test"), ("train_rmse", ":", "train"))
HELD_OUT = ("val_rmse", "test_rmse")
UNKNOWN_DATASET = "unknown dataset"


@dataclass
class _Run:
    name: str
    dataset: str
    rmse: dict = field(default_factory=dict)  # curve key -> (epochs, values)
    ranking: dict = field(default_factory=dict)  # metric label -> final value
    test_point: tuple | None = None  # (kept epoch, test RMSE) of a run that measured test once, after training


def ranking_values(row: dict) -> dict[str, float]:
    """A comparison row's final ranking metrics as ``{label: value}``: the test-set ones (``hit@10``,
    ``test_ndcg@10`` -> ``ndcg@10``), else, for a run that has only per-epoch validation values, those
    (``val_hit@10`` -> ``val hit@10``), so a validation number is never drawn as a test number. The
    ``--min-ratings`` twins (``hit@10_min_ratings_10``) stay in the table only."""
    row = {k: v for k, v in row.items() if "_min_ratings_" not in k}  # filtered twins: in the table, not the figure
    test = {k.removeprefix("test_"): v for k, v in row.items() if "@" in k and not k.startswith("val_") and v is not None}
    if test:
        return test
    return {k.replace("_", " ", 1): v for k, v in row.items() if "@" in k and k.startswith("val_") and v is not None}


def dataset_groups(datasets: Sequence[str | None]) -> dict[str, list[int]]:
    """Positions of the runs on each dataset, datasets in the order they first appear (None: unknown)."""
    out: dict[str, list[int]] = {}
    for i, d in enumerate(datasets):
        out.setdefault(d or UNKNOWN_DATASET, []).append(i)
    return out


def _read(path) -> _Run:
    from mfrec.experiments.summary import Summary

    row = R.run_row(path)
    c = R.curves(read_metrics(path))
    rmse = {k: c[k] for k in HELD_OUT if k in c}
    if not rmse and "train_rmse" in c:  # no validation split: the training curve tells how the fit went
        rmse["train_rmse"] = c["train_rmse"]
    point = None
    if rmse and "test_rmse" not in rmse and row.get("test_rmse") is not None:
        epochs = next(iter(rmse.values()))[0]
        best = Summary.read(Path(path) / "summary.json").best_epoch
        point = (best if best in epochs else int(epochs[-1]), float(row["test_rmse"]))
    return _Run(Path(path).name, row.get("dataset") or UNKNOWN_DATASET, rmse, ranking_values(row), point)


def _final(run: _Run) -> str:
    if run.test_point is not None:
        return f"test RMSE {run.test_point[1]:.4f}"
    if run.rmse:
        key = next(k for k in ("test_rmse", "val_rmse", "train_rmse") if k in run.rmse)
        return f"{key.removesuffix('_rmse')} RMSE {float(run.rmse[key][1][-1]):.4f}"
    name, value = next(iter(run.ranking.items()))
    return f"{name} {value:.4f}"


def _rmse_panel(ax, runs: list[_Run], color: dict[str, str]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    for run in runs:
        for key, ls, _ in CURVES:
            if key in run.rmse:
                x, y = run.rmse[key]
                ax.plot(x, y, ls=ls, color=color[run.name], marker="o" if len(x) < 30 else None, ms=3.5)
        if run.test_point is not None:
            ax.plot(*run.test_point, ls="none", marker="*", ms=13, color=color[run.name], markeredgecolor="0.2",
                    markeredgewidth=0.6, zorder=5)
    # every point inside the frame, with room around it (the first epoch's point included)
    ax.margins(x=0.04, y=0.08)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    ax.set_xlabel("epoch")
    ax.set_ylabel("RMSE (stars, lower is better)")
    present = {k for run in runs for k in run.rmse}  # only the curve kinds some run has
    style = [Line2D([], [], color="0.3", ls=ls, label=what) for key, ls, what in CURVES if key in present]
    if any(run.test_point for run in runs):
        style.append(Line2D([], [], color="0.3", ls="none", marker="*", ms=11, label="test, kept model (once)"))
    # above the frame, right-aligned: a legend inside it would sooner or later cover a curve
    ax.legend(handles=style, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(style), frameon=False,
              borderaxespad=0.1, handlelength=2.6)


def _ranking_panel(ax, runs: list[_Run], color: dict[str, str]) -> None:
    metrics: list[str] = []
    for run in runs:
        metrics += [m for m in run.ranking if m not in metrics]
    width = min(0.8 / len(runs), 0.3)  # one or two runs: bars, not slabs
    top = 0.0
    for j, run in enumerate(runs):
        x = np.array([i for i, m in enumerate(metrics) if m in run.ranking], np.float64)
        v = np.array([run.ranking[m] for m in metrics if m in run.ranking], np.float64)
        bars = ax.bar(x + (j - (len(runs) - 1) / 2) * width, v, width=width * 0.92, color=color[run.name])
        if len(runs) <= 6:
            ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2, rotation=90 if len(runs) > 3 else 0)
        top = max(top, float(v.max()) if v.size else 0.0)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_xlim(-0.6, len(metrics) - 0.4)
    ax.set_ylim(0, max(top * (1.3 if len(runs) > 3 else 1.15), 0.01))
    ax.set_ylabel("final value (higher is better)")
    ax.grid(axis="x", visible=False)


def comparison_figure(run_paths: Sequence[str | Path], path, title: str | None = None) -> Path | None:
    """RMSE per epoch (validation solid, test dashed, a test star at the kept epoch) and final ranking metrics of every run, one
    colour per run and one row of panels per dataset (in the order the runs come).

    A run with neither RMSE curves nor ranking metrics is left out; returns None when none has either.
    """
    runs = [r for r in (_read(p) for p in run_paths) if r.rmse or r.ranking]
    if not runs:
        return None
    groups = dataset_groups([r.dataset for r in runs])
    with_rmse = any(r.rmse for r in runs)
    with_ranking = any(r.ranking for r in runs)
    ncols = int(with_rmse) + int(with_ranking)
    n_metrics = max(len(r.ranking) for r in runs)
    color = dict(zip((r.name for r in runs), colors(len(runs))))
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color[r.name], marker="o", ms=4, lw=2, label=f"{r.name} ({_final(r)})") for r in runs]
    longest = max(len(h.get_label()) for h in handles)
    legend_cols = 1 if longest > 45 or len(runs) < 3 else 2
    legend_rows = -(-len(runs) // legend_cols)
    with styled():
        fig, axes = figure(len(groups), ncols, squeeze=False,
                           figsize=(9.0 if ncols == 1 else 14.0, 4.3 * len(groups) + 0.3 * legend_rows + 1.1),
                           width_ratios=[3, 2 if n_metrics > 2 else 1.4] if ncols == 2 else None)
        for r, (dataset, members) in enumerate(groups.items()):
            group = [runs[i] for i in members]
            kinds = [k for k, on in (("rmse", with_rmse), ("ranking", with_ranking)) if on]
            row = list(axes[r])
            have = [k for k in kinds if any(run.rmse if k == "rmse" else run.ranking for run in group)]
            if len(have) < len(kinds):  # this dataset has one kind only: its panel takes the whole row
                grid = row[0].get_gridspec()
                for ax in row:
                    ax.remove()
                row = [fig.add_subplot(grid[r, :])]
            for ax, kind in zip(row, have):
                drawn = [run for run in group if (run.rmse if kind == "rmse" else run.ranking)]
                ax.set_title(f"{dataset}: {'RMSE per epoch' if kind == 'rmse' else 'ranking metrics'}", loc="left",
                             fontsize=12)
                (_rmse_panel if kind == "rmse" else _ranking_panel)(ax, drawn, color)
        n = len(runs)
        on = f" on {len(groups)} datasets" if len(groups) > 1 else ""
        fig.suptitle(title or f"{n} run{'s' if n > 1 else ''} compared{on}")
        fig.legend(handles=handles, title="run (its kept model, else its last epoch)", loc="outside lower center", ncol=legend_cols,
                   frameon=False)
        return save(fig, path)
