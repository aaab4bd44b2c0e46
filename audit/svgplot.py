"""Small server-side SVG drawings for the audit console: time plots and the tier tree. Pure: no Django.

Every text that reaches the markup is escaped here, so a device or node name cannot inject markup.
Drawings use a viewBox and no fixed pixel width, so CSS scales them to a 360-pixel screen.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

MAX_POINTS = 2000  # a plot never draws more points than this, whatever it is given


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


def _finite(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def line_plot(
    points: Sequence[tuple[float, float | None]],
    *,
    start: float,
    end: float,
    title: str,
    unit: str = "",
    width: int = 320,
    height: int = 90,
    colour: str = "#1f6f8b",
) -> str:
    """A line over time; None values are gaps (the device was unreachable). The y axis starts at zero
    for non-negative data, so a drop in hash rate looks like a drop."""
    if not end > start:
        raise ValueError("end must be after start")
    clean = [(x, _finite(y)) for x, y in points[:MAX_POINTS] if _finite(x) is not None]
    values = [y for _, y in clean if y is not None]
    label = escape(title)
    pad_left, pad_right, pad_top, pad_bottom = 4, 4, 14, 4
    inner_w, inner_h = width - pad_left - pad_right, height - pad_top - pad_bottom
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{label}" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{pad_left}" y="{pad_top}" width="{inner_w}" height="{inner_h}" fill="#f7f9fa" '
        'stroke="#d0d7dc"/>',
    ]
    if not values:
        parts.append(f'<text x="{pad_left}" y="11" font-size="10" fill="#555">{label}: —</text></svg>')
        return "".join(parts)
    low = min(0.0, min(values))
    high = max(values)
    span = (high - low) or 1.0

    def xy(x: float, y: float) -> str:
        px = pad_left + (min(max(x, start), end) - start) / (end - start) * inner_w
        py = pad_top + inner_h - (y - low) / span * inner_h
        return f"{_number(px)},{_number(py)}"

    runs, current = [], []
    for x, y in clean:
        if y is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(xy(x, y))
    if current:
        runs.append(current)
    for run in runs:
        if len(run) == 1:
            cx, cy = run[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.5" fill="{escape(colour)}"/>')
        else:
            parts.append(
                f'<polyline fill="none" stroke="{escape(colour)}" stroke-width="1.5" '
                f'points="{" ".join(run)}"/>'
            )
    latest = values[-1]
    summary = escape(f"{title}: {_number(latest)} {unit} (max {_number(high)})".strip())
    parts.append(f'<text x="{pad_left}" y="11" font-size="10" fill="#333">{summary}</text></svg>')
    return "".join(parts)


@dataclass(frozen=True)
class TreeNode:
    key: str
    label: str
    level: int  # 0 = regional hospital (the root tier) ... 3 = mobile health point
    parent: str | None = None
    state: str = "ok"  # ok, late, failing, revoked, self


STATE_COLOURS = {
    "self": "#1f6f8b",
    "ok": "#2e7d32",
    "late": "#b7791f",
    "failing": "#c0392b",
    "revoked": "#777",
}
MAX_TREE_NODES = 500


def tier_tree(nodes: Sequence[TreeNode], *, tier_names: Sequence[str]) -> str:
    """Nodes in rows by tier (top row the root tier), a line from each node to its known parent."""
    nodes = list(nodes)[:MAX_TREE_NODES]
    levels = len(tier_names)
    rows: list[list[TreeNode]] = [[] for _ in range(levels)]
    for node in nodes:
        rows[min(max(node.level, 0), levels - 1)].append(node)
    box_w, box_h, gap_x, row_h = 110, 30, 12, 64
    widest = max([len(r) for r in rows] + [1])
    width = max(360, widest * (box_w + gap_x) + gap_x)
    height = levels * row_h + 10
    centre: dict[str, tuple[float, float]] = {}
    for level, row in enumerate(rows):
        offset = (width - len(row) * (box_w + gap_x) + gap_x) / 2
        for i, node in enumerate(row):
            centre[node.key] = (offset + i * (box_w + gap_x) + box_w / 2, 22 + level * row_h + box_h / 2)
    parts = [
        f'<svg class="tree" viewBox="0 0 {width} {height}" role="img" aria-label="tier tree" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for level, name in enumerate(tier_names):
        parts.append(f'<text x="4" y="{14 + level * row_h}" font-size="10" fill="#555">{escape(name)}</text>')
    for node in nodes:
        if node.parent in centre and node.key in centre:
            (x1, y1), (x2, y2) = centre[node.parent], centre[node.key]
            dash = ' stroke-dasharray="4 3"' if node.state in ("revoked", "failing") else ""
            parts.append(
                f'<line x1="{_number(x1)}" y1="{_number(y1 + box_h / 2)}" x2="{_number(x2)}" '
                f'y2="{_number(y2 - box_h / 2)}" stroke="#889"{dash}/>'
            )
    for node in nodes:
        x, y = centre[node.key]
        colour = STATE_COLOURS.get(node.state, "#777")
        text = node.label if len(node.label) <= 16 else node.label[:15] + "…"
        parts.append(
            f"<g><title>{escape(node.label)} ({escape(node.state)})</title>"
            f'<rect x="{_number(x - box_w / 2)}" y="{_number(y - box_h / 2)}" width="{box_w}" '
            f'height="{box_h}" rx="5" fill="#fff" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{_number(x)}" y="{_number(y + 4)}" font-size="11" text-anchor="middle" '
            f'fill="{colour}">{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
