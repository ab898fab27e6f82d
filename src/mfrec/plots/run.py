"""Figures of one training run: biases, a 2-D map of the movie factors, the genre factors, losses.

Each figure function writes a PNG to the path it is given and returns that path (None when the run
has nothing to draw); ``dpi`` (where a function takes it) lowers or raises the resolution, e.g. for
smaller files shown in a notebook.

The factor arrays come from an ALS run's ``model.npz`` or, for neumf and genre-embedding runs, from
the ``factors.npz`` they export with the same keys; sequential and attention runs have neither, so
only their curves are drawn (and ``plot_run`` reports the figures it skipped, with the reason).

The RMSE curves (``rmse.png``) come from ``mfrec.plots.curves``; :func:`plot_run` writes them
together with these into the run's ``plots/`` folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfrec.analysis import runs as R
from mfrec.experiments.run import read_config, read_metrics
from mfrec.experiments.summary import Summary
from mfrec.plots.labels import place_labels
from mfrec.plots.style import OTHER, PALETTE, colors, figure, save, styled


def _title(what: str, run_name: str) -> str:
    """A figure title: what it shows, and on a second line which run (run names are long)."""
    return f"{what}\nrun {run_name}" if run_name else what


def biases_figure(model, path, run_name: str = "", dpi: int | None = None) -> Path | None:
    """Histograms of a ``FactorModel``'s user and movie biases (None when it has no biases)."""
    bu = np.asarray(model.user_bias, np.float64)
    bi = np.asarray(model.movie_bias, np.float64)
    if bu.size == 0 and bi.size == 0:
        return None
    mu = model.mu
    with styled():
        fig, axes = figure(1, 2, sharey=False)
        for ax, b, who, color in ((axes[0], bu, "user", PALETTE[0]), (axes[1], bi, "movie", PALETTE[1])):
            if b.size:
                ax.hist(b, bins=min(60, max(10, int(np.sqrt(b.size)))), color=color, alpha=0.85,
                        label=f"{b.size:,} {who}s: mean {b.mean():+.2f}, sd {b.std():.2f}")
                ax.axvline(0.0, color="black", lw=1.0, ls=":", label="no bias")
                ax.set_ylim(0, ax.get_ylim()[1] * 1.25)  # room for the legend above the bars
                ax.legend(loc="upper left")
            ax.set_xlabel(f"{who} bias b_{'u' if who == 'user' else 'i'} (stars)")
            ax.set_ylabel(f"number of {who}s")
            ax.set_title(f"{who} biases")
        fig.suptitle(_title(f"Biases around the global mean μ = {mu:.2f} stars", run_name))
        return save(fig, path, dpi)


def movie_map_figure(vectors: np.ndarray, ds, path, run_name: str = "", what: str = "q_i", method: str = "pca",
                     n_labels: int = 12, max_genres: int = 8, return_labels: bool = False, dpi: int | None = None):
    """Movies placed by their factor vectors (one row per movie; ``what`` names them in the title),
    PCA or t-SNE to 2-D, coloured by main genre, with the most-rated titles labelled. None when the
    vectors have no columns (k = 0)."""
    from mfrec.analysis.dataset import main_genre

    q = np.asarray(vectors, np.float64)
    if q.shape[1] == 0:
        return None
    counts = np.diff(np.asarray(ds.train_by_movie.indptr))
    movies = R.mapped_movies(counts)
    x = q[movies]
    if method == "tsne":
        coords = R.tsne_2d(x)
        axis_labels = ("t-SNE dimension 1 (no unit)", "t-SNE dimension 2 (no unit)")
    else:
        coords, explained = R.pca_2d(x)
        axis_labels = tuple(f"principal component {c + 1} ({explained[c]:.0%} of variance; factor units)"
                            for c in range(2))
    genre_of = main_genre(ds)[movies]
    present, freq = np.unique(genre_of[genre_of >= 0], return_counts=True)
    top = present[np.argsort(-freq, kind="stable")][:max_genres]
    titles = ds.movies.sort("movie")["title"].to_list()
    with styled():
        fig, ax = figure(figsize=(9.0, 6.5))
        other = ~np.isin(genre_of, top)
        if other.any():
            ax.scatter(coords[other, 0], coords[other, 1], s=10, c=OTHER, alpha=0.6, linewidths=0,
                       label="other genres")
        for g, color in zip(top, colors(len(top))):
            sel = genre_of == g
            ax.scatter(coords[sel, 0], coords[sel, 1], s=12, c=color, alpha=0.75, linewidths=0,
                       label=ds.genres[g])
        pick = R.label_choice(coords, counts[movies], n_labels)
        # room for labels at the edges
        for c, setter in ((0, ax.set_xlim), (1, ax.set_ylim)):
            lo, hi = coords[:, c].min(), coords[:, c].max()
            pad = 0.12 * (hi - lo if hi > lo else 1.0)
            setter(lo - pad, hi + pad)
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        ax.set_title(_title(f"Movie factors ({what}), {method.upper()} map of {len(movies):,} movies", run_name))
        ax.legend(title="main genre", loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=1.8, frameon=False)
        labels = place_labels(ax, coords[pick, 0], coords[pick, 1], [titles[movies[i]] for i in pick])
        if labels:  # ring the labelled movies
            xy = np.array([a.xy for a in labels], np.float64)
            ax.scatter(xy[:, 0], xy[:, 1], s=30, facecolors="none", edgecolors="black", linewidths=0.9, zorder=4)
        out = save(fig, path, dpi)
    return (out, labels) if return_labels else out


def genre_factors_figure(genre_factors: np.ndarray, genres: list[str], path, run_name: str = "",
                         max_dims: int = 40, dpi: int | None = None) -> Path | None:
    """Heat map of the genre factors y_g (genres x factor dimensions); None without genre factors."""
    y = np.asarray(genre_factors, np.float64)
    if y.size == 0:
        return None
    names = list(genres)[: y.shape[0]] + [f"genre {i}" for i in range(len(genres), y.shape[0])]
    shown = y[:, :max_dims]
    order = np.argsort(-np.linalg.norm(y, axis=1), kind="stable")
    with styled():
        width = float(np.clip(3.5 + 0.22 * shown.shape[1], 8.0, 14.0))
        fig, ax = figure(figsize=(width, max(5.0, 0.3 * len(names) + 1.8)))
        lim = float(np.abs(shown).max()) or 1.0
        im = ax.imshow(shown[order], cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_yticks(np.arange(len(names)), [f"{names[i]}  (|y| {np.linalg.norm(y[i]):.2f})" for i in order])
        step = max(1, shown.shape[1] // 20)
        ax.set_xticks(np.arange(0, shown.shape[1], step), [str(i + 1) for i in range(0, shown.shape[1], step)])
        ax.set_xlabel("factor dimension" + (f" (first {max_dims} of {y.shape[1]})" if y.shape[1] > max_dims else ""))
        ax.set_ylabel("genre (largest factor norm first)")
        ax.grid(False)
        cb = fig.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label("y_g value (same units as q_i)")
        ax.set_title(_title("Genre factors y_g", run_name))
        return save(fig, path, dpi)


def ease_neighbours_figure(B: np.ndarray, titles: list[str], counts: np.ndarray, path, run_name: str = "",
                           n: int = 20, dpi: int | None = None) -> Path | None:
    """Heat map of an EASE model's item-item weights B[j, i] among the ``n`` most-rated movies: row j
    watched, column i scored (red raises i's score, blue lowers it; the diagonal is 0 by construction)."""
    B = np.asarray(B)
    if B.size == 0:
        return None
    top = np.argsort(-np.asarray(counts), kind="stable")[: min(n, B.shape[0])]
    W = np.asarray(B[np.ix_(top, top)], np.float64)
    names = [t if len(t) <= 32 else t[:31] + "…" for t in (titles[m] for m in top)]
    with styled():
        size = float(np.clip(2.5 + 0.42 * len(top), 6.0, 13.0))
        fig, ax = figure(figsize=(size + 2.0, size))
        lim = float(np.abs(W).max()) or 1.0
        im = ax.imshow(W, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="equal", interpolation="nearest")
        ax.set_yticks(np.arange(len(top)), names)
        ax.set_xticks(np.arange(len(top)), names, rotation=60, ha="right", rotation_mode="anchor")
        ax.set_ylabel("watched movie j")
        ax.set_xlabel("scored movie i")
        ax.grid(False)
        cb = fig.colorbar(im, ax=ax, shrink=0.8)
        cb.set_label("B[j, i]: what watching j adds to i's score")
        ax.set_title(_title(f"EASE item-item weights among the {len(top)} most-rated movies", run_name))
        return save(fig, path, dpi)


def genre_map_figure(genre_factors: np.ndarray, genres: list[str], path, run_name: str = "",
                     dpi: int | None = None) -> Path | None:
    """The genre factors y_g on a 2-D PCA map, each point labelled with its genre; None without them."""
    y = np.asarray(genre_factors, np.float64)
    if y.size == 0 or y.shape[0] < 2:
        return None
    coords, explained = R.pca_2d(y)
    names = list(genres)[: y.shape[0]] + [f"genre {i}" for i in range(len(genres), y.shape[0])]
    with styled():
        fig, ax = figure()
        ax.scatter(coords[:, 0], coords[:, 1], s=40, c=PALETTE[0], label="genre factor y_g")
        ax.axhline(0, color="black", lw=0.6)
        ax.axvline(0, color="black", lw=0.6)
        for c, setter in ((0, ax.set_xlim), (1, ax.set_ylim)):
            lo, hi = coords[:, c].min(), coords[:, c].max()
            pad = 0.25 * (hi - lo if hi > lo else 1.0)
            setter(lo - pad, hi + pad)
        ax.set_xlabel(f"principal component 1 ({explained[0]:.0%} of variance; factor units)")
        ax.set_ylabel(f"principal component 2 ({explained[1]:.0%} of variance; factor units)")
        ax.set_title(_title("Genre factors y_g, PCA map", run_name))
        ax.legend(loc="lower right")
        order = np.argsort(-np.linalg.norm(y, axis=1), kind="stable")
        place_labels(ax, coords[order, 0], coords[order, 1], [names[i] for i in order])
        return save(fig, path, dpi)


def rmse_figure(run_path, path, best_epoch: int | None = None, dpi: int | None = None,
                test_rmse: float | None = None) -> Path | None:
    """The run's RMSE curves, drawn by ``mfrec.plots.curves`` (the same figure training writes);
    the best epoch is marked (default: summary.json's), and, when metrics.csv has no test curve, the
    kept model's test RMSE as one point there (default: summary.json's test_rmse)."""
    from mfrec.plots import curves

    metrics = read_metrics(run_path)
    rmse = {k for k in R.curves(metrics) if k.endswith("rmse")}
    if not rmse:
        return None
    if _model_kind(Path(run_path)) == "bayes":  # a sampler: no best epoch, the running posterior mean
        return curves.plot_rmse(metrics, path, title=_title("RMSE per Gibbs sample", Path(run_path).name), dpi=dpi,
                                sampler=True)
    summary = Summary.read(Path(run_path) / "summary.json") if best_epoch is None or test_rmse is None else None
    best = best_epoch if best_epoch is not None else summary.best_epoch
    test = test_rmse if test_rmse is not None else summary.test_rmse
    return curves.plot_rmse(metrics, path, best_epoch=int(best) if best is not None else None,
                            title=_title("RMSE per epoch", Path(run_path).name), dpi=dpi, test_rmse=test)


def ranking_figure(run_path, path) -> Path | None:
    """Per-epoch ranking metrics (metrics.csv columns such as val_hit@10, val_ndcg@10); None without any."""
    series = R.ranking_curves(read_metrics(run_path))
    if not series:
        return None
    with styled():
        fig, ax = figure()
        for (name, (x, y)), color in zip(sorted(series.items()), colors(len(series))):
            ax.plot(x, y, color=color, marker="o" if len(x) < 30 else None, ms=4, label=f"{name} (last {y[-1]:.4f})")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        ax.set_xlabel("epoch")
        ax.set_ylabel("metric value (fraction, higher is better)")
        ax.set_title(_title("Ranking metrics per epoch", Path(run_path).name))
        ax.legend(loc="best")
        return save(fig, path)


# the y-axis of loss.png by model kind (metrics.csv train_loss / val_loss)
LOSS_UNITS = {
    "sequential": "cross-entropy (nats)",
    "neumf": "mean squared error (stars²)",
    "genre-embedding": "stage 1: binary cross-entropy (nats); stage 2: mean squared error (stars²)",
    "attention": "mean squared error of the pair's mean rating (stars²)",
}


def loss_figure(run_path, path, kind: str | None = None) -> Path | None:
    """The per-epoch training objective (metrics.csv train_loss / val_loss columns, one panel per
    stage for two-stage models); None when the run logs no loss (ALS runs)."""
    series = R.loss_curves(read_metrics(run_path))
    if not series:
        return None
    stages = sorted({name.rsplit("(stage ", 1)[1].rstrip(")") for name in series if "(stage " in name})
    panels = [[n for n in series if n.endswith(f"(stage {st})")] for st in stages] or [list(series)]
    unit = LOSS_UNITS.get(str(kind), "loss (the model's training objective)")
    with styled():
        fig, axes = figure(1, len(panels), sharey=False)
        axes = np.atleast_1d(axes)
        from matplotlib.ticker import MaxNLocator

        units = unit.split("; ") if len(panels) > 1 and "; " in unit else [unit] * len(panels)
        for i, (ax, names) in enumerate(zip(axes, panels)):
            first = min(int(series[n][0].min()) for n in names)
            for name, color in zip(sorted(names), colors(len(names))):
                x, y = series[name]
                if stages:  # a stage's epochs are numbered 1, 2, ... (stage 1 is logged as epochs <= 0)
                    x = x - first + 1
                label = name.split(" (stage ")[0]
                ax.plot(x, y, color=color, marker="o" if len(x) < 30 else None, ms=4, label=f"{label} (last {y[-1]:.4f})")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel(f"stage {stages[i]} epoch" if stages else "epoch")
            ax.set_ylabel(units[i].split(": ", 1)[-1] if stages else units[i])
            if stages:
                ax.set_title(f"stage {stages[i]}" + (": movie-genre association" if kind == "genre-embedding" and stages[i] == "1"
                                                     else ": ratings" if kind == "genre-embedding" else ""))
            ax.legend(loc="best")
        fig.suptitle(_title(f"Training loss per epoch ({kind or 'run'})", Path(run_path).name))
        return save(fig, path)


def _model_kind(run_path: Path) -> str | None:
    cfg = read_config(run_path / "config.json")
    return cfg.get("model") or Summary.read(run_path / "summary.json").model


def curve_figures(run_path, out_dir, kind: str | None, best_epoch: int | None = None,
                  test_rmse: float | None = None) -> list[Path | None]:
    """rmse.png, ranking.png and loss.png from the run's metrics.csv (None for each it has no values for);
    ``test_rmse``: see ``rmse_figure``."""
    run_path, out_dir = Path(run_path), Path(out_dir)
    return [rmse_figure(run_path, out_dir / "rmse.png", best_epoch, test_rmse=test_rmse),
            ranking_figure(run_path, out_dir / "ranking.png"),
            loss_figure(run_path, out_dir / "loss.png", kind)]


def plot_run(run_path, out_dir=None, dataset=None, tsne: bool = False, n_labels: int = 12,
             skipped: list | None = None) -> list[Path]:
    """Every figure of a run folder into ``out_dir`` (default ``<run>/plots``); returns the paths written.

    rmse.png (when metrics.csv has RMSE values), ranking.png (when it has ranking metrics such as
    val_hit@10), loss.png (when it logs train_loss/val_loss: the neural runs); and for runs with
    factor arrays — an ALS model.npz, or the factors.npz of a neumf/genre-embedding run — biases.png,
    movie_map.png (PCA; movie_map_tsne.png too with ``tsne``) when k > 0, genre_factors.png and
    genre_map.png for mf-genre; for an EASE run (ease.npz) ease_neighbours.png. ``dataset`` defaults to
    the one the run trained on.

    ``skipped``, when given a list, receives ``(figure name, reason)`` for each of rmse.png,
    biases.png and movie_map.png (and movie_map_tsne.png with ``tsne``) that could not be drawn.
    """
    run_path = Path(run_path)
    out_dir = Path(out_dir) if out_dir is not None else run_path / "plots"
    name = run_path.name
    kind = _model_kind(run_path)
    skipped = skipped if skipped is not None else []
    written = curve_figures(run_path, out_dir, kind)
    if written[0] is None:
        why = "metrics.csv has no RMSE values"
        if not (run_path / "metrics.csv").is_file():
            why = "the run has no metrics.csv"
        elif kind == "sequential":
            why += " (a sequential model ranks movies; it predicts no ratings)"
        skipped.append(("rmse.png", why))
    maps = ["movie_map.png"] + (["movie_map_tsne.png"] if tsne else [])
    source = R.factors_file(run_path)
    if source is not None:
        from mfrec.models.factor import FactorModel

        model = FactorModel.load(source)
        bu, bi = model.user_bias, model.movie_bias
        if source.name == "factors.npz" and (bu.size + bi.size) and not (np.any(bu) or np.any(bi)):
            skipped.append(("biases.png", f"this {kind or 'neural'} model has no user or movie biases "
                                          f"(all zero in factors.npz)"))
        else:
            written.append(biases_figure(model, out_dir / "biases.png", name))
        if model.k > 0:
            if dataset is None:
                from mfrec.experiments import Experiment

                dataset = Experiment(run_path).dataset
            _check_shapes(model, dataset, source)
            what = "q_i + genre factors" if model.genre_factors.shape[0] else "q_i"
            q = model.effective_movie_factors
            written.append(movie_map_figure(q, dataset, out_dir / "movie_map.png", name, what, n_labels=n_labels))
            if tsne:
                written.append(movie_map_figure(q, dataset, out_dir / "movie_map_tsne.png", name, what, method="tsne",
                                                n_labels=n_labels))
            genres = dataset.genres
        else:
            skipped.extend((m, f"the {kind or 'bias'} model has no movie factors (k = 0)") for m in maps)
            genres = []
        written.append(genre_factors_figure(model.genre_factors, genres, out_dir / "genre_factors.png", name))
        written.append(genre_map_figure(model.genre_factors, genres, out_dir / "genre_map.png", name))
    elif (run_path / "ease.npz").is_file():
        from mfrec.models.ease import EaseModel

        if dataset is None:
            from mfrec.experiments import Experiment

            dataset = Experiment(run_path).dataset
        counts = np.diff(np.asarray(dataset.train_by_movie.indptr))
        titles = dataset.movies.sort("movie")["title"].to_list()
        written.append(ease_neighbours_figure(EaseModel.load(run_path).B, titles, counts,
                                              out_dir / "ease_neighbours.png", name))
        skipped.extend((f, "an EASE run has item-item weights, not biases or movie factors") for f in ["biases.png", *maps])
    else:
        why = "the run has no model.npz or factors.npz"
        if (run_path / "model.json").is_file():
            why += f" (this {kind or 'neural'} run keeps a network in weights.pt, not factor arrays)"
        skipped.extend((f, why) for f in ["biases.png", *maps])
    return [p for p in written if p is not None]


def _check_shapes(model, ds, source: Path) -> None:
    from mfrec.errors import ModelError

    n = model.n_movies
    if n != ds.n_movies:
        raise ModelError(f"{source} has {n:,} movies but dataset {ds.name} has "
                         f"{ds.n_movies:,}: the run was trained on other data")
