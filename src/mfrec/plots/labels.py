"""Point labels that never overlap each other: a greedy placer over measured text boxes.

For each point, in priority order, the label is tried at eight offsets around the point; the first
position whose rendered box overlaps no placed label (and stays inside the axes) wins. A label
that fits nowhere is dropped rather than drawn over another one.
"""

from __future__ import annotations

from typing import Sequence

# offsets in points: right, left, above, below, then the diagonals
_OFFSETS = ((7, 0), (-7, 0), (0, 8), (0, -8), (7, 7), (-7, 7), (7, -7), (-7, -7), (14, 12), (-14, -12))


def place_labels(ax, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], fontsize: float = 10,
                 max_chars: int = 32, pad_px: float = 2.0) -> list:
    """Annotate points ``(xs[i], ys[i])`` with ``texts[i]`` without overlaps; returns the placed Text artists.

    Earlier points have priority. Long texts are shortened to ``max_chars`` characters.
    """
    fig = ax.figure
    fig.canvas.draw()  # runs the layout engine once so that measured boxes are final ...
    fig.set_layout_engine("none")  # ... and freezes it, so saving does not move the axes afterwards
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    placed_boxes = []
    placed = []
    for x, y, text in zip(xs, ys, texts):
        label = text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"
        for dx, dy in _OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            art = ax.annotate(
                label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=fontsize,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75),
                arrowprops=None, zorder=5,
            )
            box = art.get_window_extent(renderer)
            box = box.from_extents(box.x0 - pad_px, box.y0 - pad_px, box.x1 + pad_px, box.y1 + pad_px)
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0
                      and box.y1 <= axes_box.y1)
            if inside and not any(box.overlaps(b) for b in placed_boxes):
                placed_boxes.append(box)
                placed.append(art)
                break
            art.remove()
    return placed


def overlapping_pairs(artists: Sequence, renderer=None) -> list[tuple[int, int]]:
    """Index pairs of text artists whose rendered boxes overlap (used by the tests)."""
    if not artists:
        return []
    fig = artists[0].figure
    if renderer is None:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in artists]
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
