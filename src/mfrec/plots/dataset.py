"""Figures of a prepared dataset, drawn from the numbers in ``mfrec.analysis.dataset``.

:func:`plot_dataset` writes them all into one folder; each ``*_figure`` function writes one PNG
and returns its path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfrec.analysis import dataset as A
from mfrec.plots.style import PALETTE, colors, figure, save, styled, thousands


def _fmt_rating(v: float) -> str:
    return f"{v:g}"


def rating_distribution_figure(ds, path) -> Path:
    values, counts = A.rating_distribution(ds)
    with styled():
        fig, ax = figure()
        total = counts.sum()
        width = 0.8 * (np.min(np.diff(values)) if len(values) > 1 else 1.0)
        ax.bar(values, counts, width=width, color=PALETTE[0], label="ratings")
        for v, c in zip(values, counts):
            ax.annotate(f"{c / total:.1%}", (v, c), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=10)
        mean = float(np.dot(values, counts) / total)
        ax.axvline(mean, color=PALETTE[3], ls="--", lw=1.5, label=f"mean {mean:.2f} stars")
        ax.set_xticks(values, [_fmt_rating(v) for v in values])
        ax.yaxis.set_major_formatter(thousands)
        ax.set_ylim(0, counts.max() * 1.12)
        ax.set_xlabel("rating (stars)")
        ax.set_ylabel("number of ratings")
        ax.set_title(f"{ds.name}: distribution of {total:,} ratings")
        ax.legend(loc="upper left")
        return save(fig, path)


def long_tail_figure(ds, path) -> Path:
    per_user, per_movie = A.ratings_per_user(ds), A.ratings_per_movie(ds)
    with styled():
        fig, ax = figure()
        for counts, who, color in ((per_user, "users", PALETTE[0]), (per_movie, "movies", PALETTE[1])):
            tail = A.long_tail(counts)
            share = A.top_share(counts)
            ranks = np.arange(1, tail.size + 1)
            if tail.size > 3000:  # log-spaced ranks: the same picture, far fewer points to draw
                ranks = np.unique(np.geomspace(1, tail.size, 3000).astype(np.int64))
            ax.loglog(ranks, tail[ranks - 1], color=color, marker="o", ms=2.5, lw=1.2,
                      label=f"{who} ({tail.size:,}; top 20% hold {share:.0%} of ratings)")
        ax.set_xlabel("rank (1 = most ratings), log scale")
        ax.set_ylabel("number of ratings, log scale")
        ax.set_title(f"{ds.name}: long tail of ratings per user and per movie")
        ax.legend(loc="lower left")
        return save(fig, path)


def genre_counts_figure(ds, path) -> Path:
    g = A.genre_stats(ds).sort("ratings")
    with styled():
        fig, ax = figure(figsize=(8.0, max(4.5, 0.32 * g.height + 1.5)))
        y = np.arange(g.height)
        ax.barh(y, g["ratings"].to_numpy(), color=PALETTE[0], label="ratings of movies in the genre")
        ax.set_yticks(y, g["genre"].to_list())
        ax.xaxis.set_major_formatter(thousands)
        for yi, (n, m) in enumerate(zip(g["ratings"].to_list(), g["movies"].to_list())):
            ax.annotate(f"{m:,} movies", (n, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=10)
        ax.set_xlim(0, max(1, g["ratings"].max()) * 1.25)
        ax.set_xlabel("number of ratings (a movie counts for each of its genres)")
        ax.set_ylabel("genre")
        ax.set_title(f"{ds.name}: ratings per genre")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        return save(fig, path)


def genre_means_figure(ds, path) -> Path:
    g = A.genre_stats(ds)
    g = g.filter(np.isfinite(g["mean_rating"].to_numpy())).sort("mean_rating")
    r = np.asarray(ds.ratings.rating, dtype=np.float64)
    overall = float(r.mean()) if r.size else float("nan")
    with styled():
        fig, ax = figure(figsize=(8.0, max(4.5, 0.32 * g.height + 1.5)))
        y = np.arange(g.height)
        mean = g["mean_rating"].to_numpy()
        ci = 1.96 * np.nan_to_num(g["sem"].to_numpy())
        ax.errorbar(mean, y, xerr=ci, fmt="o", color=PALETTE[0], ecolor=PALETTE[0], capsize=3,
                    label="mean rating (95% interval)")
        ax.axvline(overall, color=PALETTE[3], ls="--", lw=1.5, label=f"all ratings: {overall:.2f}")
        ax.set_yticks(y, g["genre"].to_list())
        lo, hi = ds.rating_scale
        if g.height:
            pad = 0.15
            ax.set_xlim(max(lo, np.nanmin(mean - ci) - pad), min(hi, np.nanmax(mean + ci) + pad))
        ax.set_xlabel("mean rating (stars)")
        ax.set_ylabel("genre")
        ax.set_title(f"{ds.name}: mean rating by genre")
        ax.legend(loc="best")
        return save(fig, path)


def ratings_over_time_figure(ds, path) -> Path:
    """Ratings per period (bars) and their mean rating (line). A period the data cover only in part
    (the data start or end inside it) is drawn hatched and pale, and left out of the line as a hollow
    point, so it does not read as a drop in activity."""
    import matplotlib.dates as mdates

    t = A.ratings_over_time(ds)
    period = "month"
    if t.height > 1:
        step = (t["start"][1] - t["start"][0]).days
        period = "day" if step < 7 else "week" if step < 28 else "month"
    x = t["start"].to_numpy()
    n, mean = t["ratings"].to_numpy(), t["mean_rating"].to_numpy()
    whole = t["complete"].to_numpy().astype(bool)
    width = {"month": 20, "week": 5, "day": 0.8}[period]
    partial_label = f"partial {period} (the data {'start or end' if (~whole).sum() > 1 else 'start' if whole.size and not whole[0] else 'end'} inside it)"
    above = {"loc": "lower right", "bbox_to_anchor": (1.0, 1.0), "frameon": False, "borderaxespad": 0.1, "ncol": 2}
    with styled():
        fig, (ax, ax2) = figure(2, 1, figsize=(8.0, 6.0), sharex=True, height_ratios=[2, 1])
        ax.bar(x[whole], n[whole], width=width, color=PALETTE[0], label=f"ratings per {period}")
        if not whole.all():
            ax.bar(x[~whole], n[~whole], width=width, color=PALETTE[0], alpha=0.3, hatch="///", edgecolor=PALETTE[0],
                   label=partial_label)
        ax.yaxis.set_major_formatter(thousands)
        ax.set_ylabel(f"ratings per {period}")
        fig.suptitle(f"{ds.name}: ratings over time")
        ax.legend(**above)  # above the bars, never over them
        ax2.plot(x[whole], mean[whole], color=PALETTE[3], marker="o", ms=3, label=f"mean rating per {period}")
        if not whole.all():
            ax2.plot(x[~whole], mean[~whole], ls="none", marker="o", ms=5, mfc="white", mec=PALETTE[3],
                     label=f"partial {period}")
        ax2.margins(y=0.12)
        ax2.set_ylabel("mean rating (stars)")
        ax2.set_xlabel("date")
        ax2.legend(**above)
        locator = mdates.AutoDateLocator(maxticks=10)
        ax2.xaxis.set_major_locator(locator)
        ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return save(fig, path)


def demographics_figure(ds, path) -> Path | None:
    """Ratings and mean rating by age group and gender; None (nothing written) without demographics."""
    d = A.demographic_stats(ds)
    if d is None or d.height == 0:
        return None
    ages = [a for a in (*A.AGE_LABELS, "all") if a in set(d["age_group"].to_list())]
    genders = sorted(set(d["gender"].to_list()))
    names = {"M": "men", "F": "women", "all": "all users"}
    with styled():
        fig, (ax, ax2) = figure(1, 2)
        x = np.arange(len(ages))
        width = 0.8 / len(genders)
        cols = colors(len(genders))
        for j, (gender, color) in enumerate(zip(genders, cols)):
            sub = {row["age_group"]: row for row in d.filter(d["gender"] == gender).iter_rows(named=True)}
            n = np.array([sub[a]["ratings"] if a in sub else 0 for a in ages])
            mean = np.array([sub[a]["mean_rating"] if a in sub else np.nan for a in ages], np.float64)
            ci = 1.96 * np.array([sub[a]["sem"] if a in sub and sub[a]["sem"] is not None else 0.0 for a in ages],
                                 np.float64)
            label = names.get(gender, gender)
            ax.bar(x + (j - (len(genders) - 1) / 2) * width, n, width=width, color=color, label=label)
            ax2.errorbar(x + (j - (len(genders) - 1) / 2) * 0.1, mean, yerr=np.nan_to_num(ci), color=color,
                         marker="o", capsize=3, label=label)
        for a in (ax, ax2):
            a.set_xticks(x, ages)
            a.set_xlabel("age group (years)")
        ax.yaxis.set_major_formatter(thousands)
        ax.set_ylabel("number of ratings")
        ax.set_title("ratings by age group")
        ax.legend(title="gender" if "gender" in ds.users.columns else None, loc="upper right")
        ax2.set_ylabel("mean rating (stars)")
        ax2.set_title("mean rating by age group (95% interval)")
        ax2.legend(title="gender" if "gender" in ds.users.columns else None, loc="lower right")
        fig.suptitle(f"{ds.name}: who rates, and how")
        return save(fig, path)


FIGURES = {
    "rating_distribution": rating_distribution_figure,
    "long_tail": long_tail_figure,
    "genre_ratings": genre_counts_figure,
    "genre_mean_rating": genre_means_figure,
    "ratings_over_time": ratings_over_time_figure,
    "demographics": demographics_figure,
}


def plot_dataset(ds, out_dir) -> list[Path]:
    """Write every dataset figure into ``out_dir`` as ``<figure>.png``; returns the paths written
    (the demographics figure only where the users table has gender or age)."""
    out_dir = Path(out_dir)
    written = []
    for name, fn in FIGURES.items():
        p = fn(ds, out_dir / f"{name}.png")
        if p is not None:
            written.append(p)
    return written

