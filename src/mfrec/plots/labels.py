"""Point labels that never overlap each other: a greedy placer over measured text boxes.

For each point, in priority order, the label is tried at offsets around the point, near ones
first; the first position whose rendered box overlaps no placed label, covers no other labelled
point and stays inside the axes wins. A label
that fits nowhere is dropped rather than drawn over another one.
"""

from __future__ import annotations

from typing import Sequence

# offsets in points: right, left, above, below, the diagonals, then the same further out
_NEAR = ((7, 0), (-7, 0), (0, 8), (0, -8), (7, 7), (-7, 7), (7, -7), (-7, -7))
_OFFSETS = _NEAR + tuple((2.6 * dx, 2.2 * dy) for dx, dy in _NEAR)


def place_labels(ax, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str], fontsize: float = 10,
                 max_chars: int = 32, pad_px: float = 2.0, marker_px: float = 5.0) -> list:
    """Annotate points ``(xs[i], ys[i])`` with ``texts[i]`` without overlaps; returns the placed Text artists.

    A label covers neither another label nor any of the labelled points (within ``marker_px``
    pixels), and a thin leader line ties it to its point. Earlier points have priority. Long texts
    are shortened to ``max_chars`` characters.
    """
    import numpy as np

    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # runs the layout engine once so that measured boxes are final ...
    fig.set_layout_engine("none")  # ... and freezes it, so saving does not move the axes afterwards
    renderer = fig.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    px_per_pt = fig.dpi / 72.0
    box_pad = 0.15 * fontsize * px_per_pt + pad_px  # the white box around the text, plus a margin
    points_px = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    placed_boxes: list = []
    placed = []
    for i, text in enumerate(texts):
        others = np.delete(points_px, i, axis=0)
        px, py = points_px[i]
        label = text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"
        probe = Text(0, 0, label, fontsize=fontsize, figure=fig)  # measured once, placed arithmetically
        ext = probe.get_window_extent(renderer)
        w, h = ext.width + 2 * box_pad, ext.height + 2 * box_pad
        for dx, dy in _OFFSETS:
            ox, oy = px + dx * px_per_pt, py + dy * px_per_pt
            x0 = ox - box_pad if dx > 0 else ox - w + box_pad if dx < 0 else ox - w / 2
            y0 = oy - box_pad if dy > 0 else oy - h + box_pad if dy < 0 else oy - h / 2
            box = Bbox.from_bounds(x0, y0, w, h)
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0
                      and box.y1 <= axes_box.y1)
            if not inside or any(box.overlaps(b) for b in placed_boxes):
                continue
            covers = ((others[:, 0] > box.x0 - marker_px) & (others[:, 0] < box.x1 + marker_px)
                      & (others[:, 1] > box.y0 - marker_px) & (others[:, 1] < box.y1 + marker_px)).any()
            if covers:
                continue
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            art = ax.annotate(
                label, (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=fontsize,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.75),
                arrowprops=dict(arrowstyle="-", color="0.35", lw=0.6, shrinkA=0, shrinkB=2), zorder=5,
            )
            placed_boxes.append(box)
            placed.append(art)
            break
    return placed


def overlapping_pairs(artists: Sequence, renderer=None) -> list[tuple[int, int]]:
    """Index pairs of labels whose rendered text boxes overlap (used by the tests; leader lines not counted)."""
    from matplotlib.text import Text

    if not artists:
        return []
    fig = artists[0].figure
    if renderer is None:
        canvas = fig.canvas
        if not hasattr(canvas, "get_renderer"):  # a closed figure: draw it on a fresh Agg canvas
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
    boxes = [Text.get_window_extent(a, renderer) for a in artists]
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
