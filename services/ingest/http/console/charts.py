"""Charts drawn on the server as SVG: no chart library, no script, nothing fetched. Each is
a viewBox the page's CSS scales to its column (laptop or phone); colours come from the
stylesheet's classes, and every bar or point carries a <title> a pointer or a screen reader
shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

W, H = 640, 200
LEFT, BOTTOM, TOP = 44, 22, 10
SERIES_CLASSES = ("s0", "s1", "s2", "s3", "s4", "s5")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no data for that period (a gap, not a zero)


def _nice(top: float) -> float:
    if top <= 0:
        return 1.0
    step = 10 ** len(str(int(top))) / 10
    for m in (1, 2, 2.5, 5, 10):
        if top <= step * m:
            return float(step * m)
    return top


def _fmt(v: float) -> str:
    if v >= 10_000:  # axis labels stay within the chart's left margin
        return f"{v / 1000:,.0f}k"
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.2g}"


def _frame(labels: Sequence[str], top: float, unit: str) -> list[str]:
    plot_h = H - BOTTOM - TOP
    out = [f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W}" y2="{H - BOTTOM}"/>']
    for frac in (0.5, 1.0):
        y = H - BOTTOM - plot_h * frac
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{W}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(_fmt(top * frac))}{escape(unit)}</text>')
    if labels:
        out.append(f'<text class="tick" x="{LEFT}" y="{H - 6}">{escape(labels[0])}</text>')
        if len(labels) > 1:
            out.append(f'<text class="tick" x="{W}" y="{H - 6}" text-anchor="end">{escape(labels[-1])}</text>')
    return out


def _svg(body: list[str], title: str, legend: Sequence[str] = ()) -> Markup:
    keys = "".join(f'<span class="key {SERIES_CLASSES[i % len(SERIES_CLASSES)]}">{escape(n)}</span>'
                   for i, n in enumerate(legend))
    return Markup(  # noqa: S704 - every value in it went through html.escape above
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
                  f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
                  f'>{"".join(body)}</svg>'
                  + (f'<div class="legend">{keys}</div>' if keys else "") + "</figure>")


def bars(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> Markup:
    """Stacked bars, one per label (a period or a minute), one colour per series."""
    n = max(len(labels), 1)
    totals = [sum(v or 0 for v in (s.values[i] for s in series)) for i in range(len(labels))]
    top = _nice(max(totals, default=0))
    plot_h = H - BOTTOM - TOP
    slot = (W - LEFT) / n
    width = max(slot * 0.8, 1.0)
    body = _frame(labels, top, unit)
    for i, label in enumerate(labels):
        base = 0.0
        for k, s in enumerate(series):
            v = s.values[i] or 0
            if v <= 0:
                continue
            h = plot_h * v / top
            y = H - BOTTOM - plot_h * (base + v) / top
            body.append(f'<rect class="bar {SERIES_CLASSES[k % len(SERIES_CLASSES)]}" x="{LEFT + i * slot + (slot - width) / 2:.1f}" '
                        f'y="{y:.1f}" width="{width:.1f}" height="{h:.1f}"><title>{escape(label)}: '
                        f'{escape(s.name)} {escape(_fmt(v))}{escape(unit)}</title></rect>')
            base += v
    if not any(totals):
        body.append(f'<text class="empty" x="{(W + LEFT) / 2}" y="{H / 2}" text-anchor="middle">nothing yet</text>')
    return _svg(body, title, [s.name for s in series] if len(series) > 1 else ())


def lines(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> Markup:
    """One line per series over the labels; a None breaks the line."""
    values = [v for s in series for v in s.values if v is not None]
    top = _nice(max(values, default=0))
    plot_h = H - BOTTOM - TOP
    n = len(labels)
    step = (W - LEFT) / max(n - 1, 1)
    body = _frame(labels, top, unit)
    for k, s in enumerate(series):
        cls = SERIES_CLASSES[k % len(SERIES_CLASSES)]
        run: list[str] = []
        for i, v in enumerate(s.values):
            if v is None:
                if len(run) > 1:
                    body.append(f'<polyline class="line {cls}" points="{" ".join(run)}"/>')
                run = []
                continue
            x, y = LEFT + i * step if n > 1 else (W + LEFT) / 2, H - BOTTOM - plot_h * v / top
            run.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle class="dot {cls}" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(labels[i])}: '
                        f'{escape(s.name)} {escape(_fmt(v))}{escape(unit)}</title></circle>')
        if len(run) > 1:
            body.append(f'<polyline class="line {cls}" points="{" ".join(run)}"/>')
    if not values:
        body.append(f'<text class="empty" x="{(W + LEFT) / 2}" y="{H / 2}" text-anchor="middle">nothing yet</text>')
    return _svg(body, title, [s.name for s in series])
