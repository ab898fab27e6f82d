"""Showing a ``Result`` in the terminal and writing it to ``Predictions/<run>/<label>.csv|.parquet``."""

from __future__ import annotations

import os
from pathlib import Path

from mfrec.data.names import check_length, sanitize
from mfrec.errors import DataError

DEFAULT_ROOT = Path("Predictions")


def _cut(text: str, width: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


# how the printed table heads and formats the column a list is ranked by (recommend.RANKED_BY)
_RANKED_HEAD = {"score": ("score", "{:>7.3f}"), "cosine": ("cosine", "{:>7.3f}"),
                "training_ratings": ("ratings", "{:>7d}"), "logit": ("logit", "{:>7.3f}"),
                "rank_score": ("ranked", "{:>7.4g}"), "ease_score": ("ease", "{:>7.3f}")}


def _rating_digits(values) -> int:
    """2 decimals for the rating column, 3 when two different ratings of the list would print alike at 2."""
    shown: dict[str, float] = {}
    for v in values:
        if v is None:
            continue
        text = f"{v:.2f}"
        if text in shown and abs(shown[text] - v) >= 5e-4:
            return 3
        shown.setdefault(text, v)
    return 2


def format_table(result, title_width: int = 42, genre_width: int = 26, why_width: int = 84) -> str:
    """The list as fixed-width text: rank, title, year, genres, predicted rating (where the list has one),
    the column it is ranked by (under its own name), why (+ --explain lines)."""
    t = result.table
    ranked = next((c for c in t.columns if c in _RANKED_HEAD), None)
    has_rating = "predicted_rating" in t.columns
    has_spread = "uncertainty" in t.columns  # bayes runs: "4.30 ± 0.41"
    lines = list(result.notes)
    digits = _rating_digits(t["predicted_rating"].to_list()) if has_rating else 2
    rating_width = 6 + (3 + digits + 2 if has_spread else 0)
    head = f"{'#':>3}  {'title':<{title_width}}  {'year':>4}  {'genres':<{genre_width}}"
    if has_rating:
        head += f"  {'rating':>{rating_width}}"
    if ranked:
        head += f"  {_RANKED_HEAD[ranked][0]:>7}"
    head += "  why"
    lines.append(head)
    rule_at = len(lines)
    lines.append("")  # the rule under the header, as wide as the widest row (set below)
    width = len(head)
    for row in t.iter_rows(named=True):
        year = row["year"]
        line = (
            f"{row['rank']:>3}  {_cut(row['title'], title_width):<{title_width}}  {'' if year is None else year:>4}  "
            f"{_cut(row['genres'].replace('|', ', '), genre_width):<{genre_width}}"
        )
        if has_rating:
            pred = row["predicted_rating"]
            cell = '' if pred is None else f'{pred:.{digits}f}'
            if has_spread and pred is not None and row["uncertainty"] is not None:
                cell += f" ± {row['uncertainty']:.{digits}f}"
            line += f"  {cell:>{rating_width}}"
        if ranked:
            line += "  " + _RANKED_HEAD[ranked][1].format(row[ranked])
        line += f"  {_cut(row['why'], why_width)}"
        lines.append(line)
        width = max(width, len(line))
        for extra in result.details.get(row["rank"], []):
            lines.append(" " * 8 + extra)
    lines[rule_at] = "-" * width
    if t.height == 0:
        lines.append("  (no movie is left after the filters and exclusions)")
    return "\n".join(lines)


LABEL_RESERVE = len("..parquet.tmp-") + 8  # what atomic_path adds to <label>.parquet while writing


def safe_label(label: str, root: str | os.PathLike = DEFAULT_ROOT, what: str = "--label",
               reserve: int = LABEL_RESERVE) -> str:
    """``label`` as a file name: other characters than letters, digits, . _ - become '-'; a label
    with none of those, or too long for the file system under ``root``, is a DataError."""
    clean = sanitize(label)
    if not clean:
        raise DataError(f"{what} {label!r} has no usable characters (letters, digits, . _ -)")
    return check_length(clean, what, reserve, root)


CSV_DECIMALS = 4  # floats in the CSV files; the Parquet files keep full precision


def write_predictions(result, run_name: str, label: str | None = None, root: str | os.PathLike = DEFAULT_ROOT) -> tuple[Path, Path]:
    """``<root>/<run>/<label>.csv`` and ``.parquet`` (same columns), each written to a temporary
    name and renamed into place, so a reader never sees half a file.

    Without ``label`` the list's own (made-up-user, user-ID, similar-ID, ...) is used, numbered
    (made-up-user-2, -3, ...) when that name is taken: a default never replaces an earlier list.
    A ``label`` that is given names the file to write, and replaces it."""
    return write_frame(result.table, run_name, label, root, default=result.label)


def write_frame(table, run_name: str, label: str | None, root: str | os.PathLike = DEFAULT_ROOT,
                default: str | None = None) -> tuple[Path, Path]:
    """A polars table as ``<root>/<run>/<label>.csv`` and ``.parquet``, atomically (temporary name, rename).

    Floats are rounded to ``CSV_DECIMALS`` in the CSV only. With ``label=None`` the file is named
    ``default``, numbered when that name is taken (see ``write_predictions``)."""
    import polars.selectors as cs

    if label is None and default is None:
        raise ValueError("write_frame needs a label or a default")
    numbered = label is None
    label = safe_label(default if numbered else label, root)
    out = Path(root) / safe_label(run_name, root, "run name", reserve=0)
    out.mkdir(parents=True, exist_ok=True)
    if numbered:
        label = _free_label(out, label, root)
    csv, parquet = out / f"{label}.csv", out / f"{label}.parquet"
    from mfrec.io import atomic_path

    with atomic_path(csv) as tmp_csv, atomic_path(parquet) as tmp_parquet:
        table.with_columns(cs.float().round(CSV_DECIMALS)).write_csv(tmp_csv)
        table.write_parquet(tmp_parquet)
    return csv, parquet


def _free_label(folder: Path, label: str, root) -> str:
    """``label``, or ``label-2``, ``label-3``, ... : the first whose .csv and .parquet are both free."""
    candidate, n = label, 1
    while (folder / f"{candidate}.csv").exists() or (folder / f"{candidate}.parquet").exists():
        n += 1
        candidate = safe_label(f"{label}-{n}", root)
    return candidate
