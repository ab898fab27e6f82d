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


def format_table(result, title_width: int = 42, genre_width: int = 26, why_width: int = 84) -> str:
    """The list as fixed-width text: rank, title, year, genres, predicted rating, why (+ --explain lines)."""
    t = result.table
    score_head = {"similar": "cosine", "popular": "ratings"}.get(result.kind, "score")
    lines = list(result.notes)
    head = f"{'#':>3}  {'title':<{title_width}}  {'year':>4}  {'genres':<{genre_width}}  {'rating':>6}"
    if score_head:
        head += f"  {score_head:>7}"
    head += "  why"
    lines.append(head)
    rule_at = len(lines)
    lines.append("")  # the rule under the header, as wide as the widest row (set below)
    width = len(head)
    for row in t.iter_rows(named=True):
        pred = row["predicted_rating"]
        year = row["year"]
        line = (
            f"{row['rank']:>3}  {_cut(row['title'], title_width):<{title_width}}  {'' if year is None else year:>4}  "
            f"{_cut(row['genres'].replace('|', ', '), genre_width):<{genre_width}}  "
            f"{'' if pred is None else f'{pred:.2f}':>6}"
        )
        if score_head:
            s = row["score"]
            line += f"  {int(s):>7d}" if result.kind == "popular" else f"  {s:>7.3f}"
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


def write_predictions(result, run_name: str, label: str | None = None, root: str | os.PathLike = DEFAULT_ROOT) -> tuple[Path, Path]:
    """``<root>/<run>/<label>.csv`` and ``.parquet`` (same columns), each written to a temporary
    name and renamed into place, so a reader never sees half a file."""
    return write_frame(result.table, run_name, label or result.label, root)


def write_frame(table, run_name: str, label: str, root: str | os.PathLike = DEFAULT_ROOT) -> tuple[Path, Path]:
    """A polars table as ``<root>/<run>/<label>.csv`` and ``.parquet``, atomically (temporary name, rename)."""
    label = safe_label(label, root)
    out = Path(root) / safe_label(run_name, root, "run name", reserve=0)
    out.mkdir(parents=True, exist_ok=True)
    csv, parquet = out / f"{label}.csv", out / f"{label}.parquet"
    from mfrec.io import atomic_path

    with atomic_path(csv) as tmp_csv, atomic_path(parquet) as tmp_parquet:
        table.write_csv(tmp_csv)
        table.write_parquet(tmp_parquet)
    return csv, parquet
