"""Small charts as inline SVG, drawn by the server (no JavaScript, no chart library, nothing fetched).

Only presentation attributes are used (no ``style``), so the console's Content-Security-Policy needs no
``unsafe-inline``. Every text that came from data goes through :func:`markupsafe.escape` (``Markup.format``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 640, 160
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 10, 22  # room for the axis labels
STATE_COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "cancelled": "#757575",
    "queued": "#1565c0",
    "snapshotting": "#1565c0",
    "streaming": "#1565c0",
}


@dataclass(frozen=True)
class Bar:
    value: float
    label: str  # tooltip
    colour: str = "#1565c0"
    href: str | None = None


def human_number(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def _frame(title: str, top_label: str, body: Markup, left_label: str = "", right_label: str = "") -> Markup:
    plot_bottom = HEIGHT - BOTTOM
    return Markup(
        '<figure class="chart"><figcaption>{title}</figcaption>'
        '<svg class="chart" role="img" aria-label="{title}" viewBox="0 0 {w} {h}" width="{w}" height="{h}"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#9e9e9e"/>'
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#9e9e9e"/>'
        '<text x="{lx}" y="{ty}" text-anchor="end" font-size="11" fill="#616161">{top}</text>'
        '<text x="{lx}" y="{b}" text-anchor="end" font-size="11" fill="#616161">0</text>'
        '<text x="{l}" y="{h}" font-size="11" fill="#616161" dy="-4">{left}</text>'
        '<text x="{r}" y="{h}" text-anchor="end" font-size="11" fill="#616161" dy="-4">{right}</text>'
        "{body}</svg></figure>"
    ).format(
        title=title,
        w=WIDTH,
        h=HEIGHT,
        l=LEFT,
        r=WIDTH - RIGHT,
        t=TOP,
        b=plot_bottom,
        lx=LEFT - 6,
        ty=TOP + 10,
        top=top_label,
        left=left_label,
        right=right_label,
        body=body,
    )


def bar_chart(
    title: str, bars: Sequence[Bar], *, unit: str = "", left_label: str = "", right_label: str = ""
) -> Markup:
    """Bars left (oldest) to right (newest), scaled to the largest; each bar has a tooltip and an optional link."""
    if not bars:
        return Markup('<p class="muted">{}: nothing to draw yet.</p>').format(title)
    peak = max(bar.value for bar in bars) or 1.0
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = min(plot_width / len(bars), 48.0)  # a few runs make narrow bars, not one wall
    parts = []
    for index, bar in enumerate(bars):
        height = max(bar.value / peak * plot_height, 1.0 if bar.value else 0.0)
        rect = Markup(
            '<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{c}"><title>{t}</title></rect>'
        ).format(
            x=LEFT + index * slot + slot * 0.15,
            y=HEIGHT - BOTTOM - height,
            w=slot * 0.7,
            h=height,
            c=bar.colour,
            t=bar.label,
        )
        parts.append(Markup('<a href="{}">{}</a>').format(bar.href, rect) if bar.href else rect)
    return _frame(title, f"{human_number(peak)}{unit}", Markup("").join(parts), left_label, right_label)


def line_chart(
    title: str, points: Sequence[tuple[float, float]], *, unit: str = "", left_label: str = "", right_label: str = ""
) -> Markup:
    """A polyline of (x, y) points (x: e.g. epoch seconds), scaled to the data's extent, with a dot per point."""
    if not points:
        return Markup('<p class="muted">{}: nothing to draw yet.</p>').format(title)
    xs = [x for x, _ in points]
    peak = max(y for _, y in points) or 1.0
    low, span = min(xs), (max(xs) - min(xs)) or 1.0
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def place(x: float, y: float) -> tuple[float, float]:
        left = LEFT + (x - low) / span * plot_width if len(points) > 1 else LEFT + plot_width / 2
        return left, HEIGHT - BOTTOM - y / peak * plot_height

    placed = [place(x, y) for x, y in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in placed)
    dots = Markup("").join(
        Markup('<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="#1565c0"><title>{}</title></circle>').format(
            px, py, f"{human_number(value)}{unit}"
        )
        for (px, py), (_, value) in zip(placed, points, strict=True)
    )
    body = Markup('<polyline points="{}" fill="none" stroke="#1565c0" stroke-width="2"/>{}').format(line, dots)
    return _frame(title, f"{human_number(peak)}{unit}", body, left_label, right_label)
