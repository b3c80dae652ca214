"""Inline SVG plots for the evaluation report: round ticks, a log latency axis,
confidence-interval bars and point labels placed so that no two overlap.

Text sizes are estimated from per-character advance widths of DejaVu Sans (the widest of
the common sans-serif fonts), so a label placed clear of another here stays clear in a
browser with a narrower font. The report's browser test measures the real boxes.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"'


# ---- ticks ----------------------------------------------------------------------
def nice_step(span: float, n: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `n` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(n, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * power * (1 + 1e-9):
            return m * power
    return 10.0 * power


def nice_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], float, float]:
    """Round ticks covering [lo, hi]: (ticks, new_lo, new_hi), the range widened to the
    outer ticks. A zero-width range is widened around its value."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(hi - lo, n)
    start = math.floor(lo / step + 1e-9) * step
    stop = math.ceil(hi / step - 1e-9) * step
    count = int(round((stop - start) / step))
    ticks = [_clean(start + i * step, step) for i in range(count + 1)]
    return ticks, ticks[0], ticks[-1]


def _clean(v: float, step: float) -> float:
    """`v` rounded to the step's decimals, so 0.30000000000000004 prints as 0.3."""
    decimals = max(0, -math.floor(math.log10(step)) + 2)
    out = round(v, decimals)
    return 0.0 if out == 0 else out


def log_ticks(lo: float, hi: float) -> tuple[list[float], float, float]:
    """Ticks at 1, 2 and 5 times powers of ten (only the powers when the range spans more
    than three decades) covering [lo, hi] (both > 0): (ticks, new_lo, new_hi)."""
    lo, hi = max(lo, 1e-6), max(hi, 1e-6)
    if hi < lo:
        lo, hi = hi, lo
    mantissas = (1.0, 2.0, 5.0) if math.log10(hi / lo) <= 3 else (1.0,)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    grid = sorted({m * 10.0**e for e in range(first - 1, last + 1) for m in mantissas})
    grid = [float(f"{v:.6g}") for v in grid]
    new_lo = max(v for v in grid if v <= lo * (1 + 1e-9))
    new_hi = min(v for v in grid if v >= hi * (1 - 1e-9))
    if new_hi == new_lo:
        new_hi = min(v for v in grid if v > new_lo)
    return [v for v in grid if new_lo <= v <= new_hi], new_lo, new_hi


def format_tick(v: float) -> str:
    """Ticks as short plain numbers: 0.25, 5, 100, 2k."""
    if abs(v) >= 1000 and float(v / 1000).is_integer():
        return f"{v / 1000:g}k"
    return f"{v:g}"


# ---- geometry -------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in SVG user units."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, pad: float = 0.0) -> bool:
        return not (
            self.x1 + pad <= other.x0
            or other.x1 + pad <= self.x0
            or self.y1 + pad <= other.y0
            or other.y1 + pad <= self.y0
        )

    def inside(self, other: Box) -> bool:
        return (
            self.x0 >= other.x0
            and self.x1 <= other.x1
            and self.y0 >= other.y0
            and self.y1 <= other.y1
        )


_WIDE = {"m": 0.98, "w": 0.82, "M": 0.87, "W": 0.99, "=": 0.84, "+": 0.84, "@": 1.0}
_NARROW = {c: 0.28 for c in "il.,:;'|!"} | {c: 0.36 for c in "-()[]ftjr "}


def text_width(text: str, size: float) -> float:
    """An upper estimate of `text`'s width at font size `size`, from DejaVu Sans's
    advance widths (digits 0.64 em, most lower case 0.62 em, upper case 0.75 em)."""
    em = 0.0
    for ch in text:
        if ch in _WIDE:
            em += _WIDE[ch]
        elif ch in _NARROW:
            em += _NARROW[ch]
        elif ch.isupper():
            em += 0.75
        else:
            em += 0.64
    return em * size


def text_box(x: float, y: float, text: str, size: float, anchor: str = "start") -> Box:
    """The box of `text` drawn with its baseline at `y` and anchored at `x`."""
    width = text_width(text, size)
    x0 = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return Box(x0, y - 0.95 * size, x0 + width, y + 0.3 * size)


@dataclass(frozen=True)
class Label:
    """A placed label: its text anchor point, anchor and box; `leader` when it sits far
    enough from its point to need a line back to it."""

    x: float
    y: float
    anchor: str
    box: Box
    leader: bool


def place_label(
    px: float,
    py: float,
    text: str,
    size: float,
    area: Box,
    obstacles: Sequence[Box],
    soft: Sequence[Box] = (),
) -> Label:
    """Put `text` near the point (px, py): the first of eight positions around it, at
    growing distances, whose box stays inside `area` and clear of every obstacle (placed
    labels, markers, interval bars) and of every `soft` one (lines). When none is clear,
    the one that overlaps least, crossing a line before another label."""
    asc, desc = 0.95 * size, 0.3 * size
    best: tuple[float, Label] | None = None
    for d in (6.0, 11.0, 18.0, 28.0, 40.0, 55.0):
        candidates = (
            (px + d, py + asc / 2 - desc / 2, "start"),
            (px - d, py + asc / 2 - desc / 2, "end"),
            (px, py - d, "middle"),
            (px, py + d + asc, "middle"),
            (px + d * 0.8, py - d * 0.8, "start"),
            (px + d * 0.8, py + d * 0.8 + asc, "start"),
            (px - d * 0.8, py - d * 0.8, "end"),
            (px - d * 0.8, py + d * 0.8 + asc, "end"),
        )
        for x, y, anchor in candidates:
            box = text_box(x, y, text, size, anchor)
            label = Label(x, y, anchor, box, d > 11.0)
            if not box.inside(area):
                continue
            hard = sum(_area(box, o) for o in obstacles if box.overlaps(o, pad=1.0))
            score = 1000 * hard + sum(1 for o in soft if box.overlaps(o))
            if score == 0:
                return label
            if best is None or score < best[0]:
                best = (score, label)
    if best is not None:
        return best[1]
    box = text_box(px + 6, py, text, size)
    return Label(px + 6, py, "start", box, False)


def _area(a: Box, b: Box) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0) + 1.0


# ---- plots ----------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One configuration in the quality/latency plot."""

    series: str
    k: int
    latency_ms: float
    quality: float
    ci_low: float | None
    ci_high: float | None


def _lin(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a if hi == lo else a + (v - lo) / (hi - lo) * (b - a)


def _log(v: float, lo: float, hi: float, a: float, b: float) -> float:
    v = max(v, lo)
    return _lin(math.log10(v), math.log10(lo), math.log10(hi), a, b)


def _svg_open(width: int, height: int, label: str, cls: str = "plot", extra: str = "") -> str:
    return (
        f'<svg class="{cls}"{extra} xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" aria-label="{html.escape(label)}" '
        f"{FONT}>"
    )


def _legend(names: Sequence[str], x: float, top: float, colors: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        ly = top + 14 + 16 * i
        shown = name if len(name) <= 20 else name[:19] + "…"
        parts.append(f'<rect x="{x}" y="{ly - 9}" width="10" height="10" fill="{colors[i]}"/>')
        parts.append(
            f'<text class="legend" x="{x + 15}" y="{ly}" font-size="11">{html.escape(shown)}'
            f"<title>{html.escape(name)}</title></text>"
        )
    return parts


def _frame(
    box: tuple[int, int, int, int, int, int],
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    """Frame, grid, tick labels and axis titles; ticks are (pixel position, text)."""
    W, H, L, R, T, B = box
    parts = [
        f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" '
        'fill="none" stroke="#999"/>'
    ]
    for x, text in x_ticks:
        parts.append(f'<line x1="{x:.1f}" y1="{T}" x2="{x:.1f}" y2="{H - B}" stroke="#eee"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{H - B + 14}" font-size="10" '
            f'text-anchor="middle">{text}</text>'
        )
    for y, text in y_ticks:
        parts.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text class="tick" x="{L - 5}" y="{y + 3.5:.1f}" font-size="10" '
            f'text-anchor="end">{text}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{(L + W - R) / 2}" y="{H - 8}" font-size="12" '
        f'text-anchor="middle">{html.escape(x_label)}</text>'
    )
    cy = (T + H - B) / 2
    parts.append(
        f'<text class="axis-title" x="14" y="{cy}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {cy})">{html.escape(y_label)}</text>'
    )
    return parts


def _segment_boxes(coords: Sequence[tuple[float, float]], step: float = 4.0) -> list[Box]:
    """Small boxes along a polyline, so that labels keep off the lines too."""
    out = []
    for (x0, y0), (x1, y1) in itertools.pairwise(coords):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        for i in range(n + 1):
            x, y = x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n
            out.append(Box(x - 1, y - 1, x + 1, y + 1))
    return out


def quality_latency_svg(points: Sequence[Point], metric: str) -> str:
    """Mean `metric` (with its confidence-interval bar) against p95 latency on a log
    axis, one line per pipeline across K, each point labelled with its K."""
    W, H, L, R, T, B = 720, 400, 62, 180, 16, 44
    area = Box(L + 2, T + 2, W - R - 2, H - B - 2)
    series: dict[str, list[Point]] = {}
    for p in points:
        series.setdefault(p.series, []).append(p)
    lats = [max(p.latency_ms, 0.01) for p in points] or [1.0, 10.0]
    x_ticks, x0, x1 = log_ticks(min(lats) / 1.15, max(lats) * 1.15)
    lows = [p.ci_low if p.ci_low is not None else p.quality for p in points] or [0.0]
    highs = [p.ci_high if p.ci_high is not None else p.quality for p in points] or [1.0]
    y_ticks, y0, y1 = nice_ticks(max(0.0, min(lows)), min(1.0, max(highs)), 5)

    def sx(v: float) -> float:
        return _log(max(v, 0.01), x0, x1, L, W - R)

    def sy(v: float) -> float:
        return _lin(v, y0, y1, H - B, T)

    colors = [COLORS[i % len(COLORS)] for i in range(len(series))]
    parts = [
        _svg_open(W, H, f"{metric} versus p95 latency"),
        *_frame(
            (W, H, L, R, T, B),
            [(sx(t), format_tick(t)) for t in x_ticks],
            [(sy(t), f"{t:g}") for t in y_ticks],
            "p95 latency per query (ms, log scale)",
            f"mean {metric} (95% CI)",
        ),
    ]
    obstacles: list[Box] = []
    lines: list[Box] = []
    marks: list[tuple[float, float, str, str]] = []  # x, y, label text, colour
    for (name, ps), color in zip(series.items(), colors, strict=True):
        ps = sorted(ps, key=lambda p: p.k)
        coords = [(sx(p.latency_ms), sy(p.quality)) for p in ps]
        lines.extend(_segment_boxes(coords))
        parts.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in coords)}"/>'
        )
        groups: list[tuple[float, float, list[int]]] = []
        for p, (x, y) in zip(ps, coords, strict=True):
            if p.ci_low is not None and p.ci_high is not None:
                ylo, yhi = sy(p.ci_low), sy(p.ci_high)
                parts.append(
                    f'<path class="ci" d="M{x:.1f},{ylo:.1f}V{yhi:.1f}M{x - 3:.1f},{ylo:.1f}'
                    f'h6M{x - 3:.1f},{yhi:.1f}h6" stroke="{color}" stroke-width="1" fill="none"/>'
                )
                obstacles.append(Box(x - 3, yhi, x + 3, ylo))
            ci = (
                ""
                if p.ci_low is None or p.ci_high is None
                else f", 95% CI [{p.ci_low:.4f}, {p.ci_high:.4f}]"
            )
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>'
                f"{html.escape(name)} k={p.k}: {metric} {p.quality:.4f}{ci}, p95 "
                f"{p.latency_ms:.1f} ms</title></circle>"
            )
            obstacles.append(Box(x - 4, y - 4, x + 4, y + 4))
            # Points of one line that land on the same spot share one label: "k=20,50".
            for g in groups:
                if abs(g[0] - x) < 3 and abs(g[1] - y) < 3:
                    g[2].append(p.k)
                    break
            else:
                groups.append((x, y, [p.k]))
        marks.extend((x, y, "k=" + ",".join(map(str, ks)), color) for x, y, ks in groups)
    for x, y, text, color in marks:
        label = place_label(x, y, text, 9, area, obstacles, lines)
        obstacles.append(label.box)
        if label.leader:
            bx = min(max(x, label.box.x0), label.box.x1)
            by = min(max(y, label.box.y0), label.box.y1)
            parts.append(
                f'<line class="leader" x1="{x:.1f}" y1="{y:.1f}" x2="{bx:.1f}" y2="{by:.1f}" '
                f'stroke="{color}" stroke-width="0.6" stroke-dasharray="2,2"/>'
            )
        parts.append(
            f'<text class="point-label" x="{label.x:.1f}" y="{label.y:.1f}" font-size="9" '
            f'fill="{color}" text-anchor="{label.anchor}">{html.escape(text)}</text>'
        )
    parts += _legend(list(series), W - R + 12, T, colors)
    parts.append("</svg>")
    return "".join(parts)


PARAM_NAMES = {
    "w": "BM25 weight w (dense 1 - w)",
    "wd": "dense weight wd",
    "rrf_k": "RRF k",
    "depth": "fusion depth per side",
    "k1": "BM25 k1",
    "b": "BM25 b",
}


def sweep_svg(
    param: str, base: str, points: Mapping[int, Sequence[tuple[float, float]]], metric: str
) -> str:
    """Quality against a swept first-stage parameter, one line per K."""
    W, H, L, R, T, B = 720, 320, 62, 180, 16, 44
    xs = [x for ps in points.values() for x, _ in ps] or [0.0, 1.0]
    ys = [y for ps in points.values() for _, y in ps] or [0.0, 1.0]
    x_ticks, x0, x1 = nice_ticks(min(xs), max(xs), 6)
    y_ticks, y0, y1 = nice_ticks(max(0.0, min(ys)), min(1.0, max(ys)), 5)
    e = html.escape
    colors = [COLORS[i % len(COLORS)] for i in range(len(points))]
    parts = [
        _svg_open(
            W, H, f"{metric} versus {param} for {base}", "plot sweep", f' data-param="{e(param)}"'
        ),
        *_frame(
            (W, H, L, R, T, B),
            [(_lin(t, x0, x1, L, W - R), f"{t:g}") for t in x_ticks],
            [(_lin(t, y0, y1, H - B, T), f"{t:g}") for t in y_ticks],
            PARAM_NAMES.get(param, param),
            f"mean {metric}",
        ),
    ]
    for (k, ps), color in zip(points.items(), colors, strict=True):
        coords = [(_lin(x, x0, x1, L, W - R), _lin(y, y0, y1, H - B, T), x, y) for x, y in ps]
        parts.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{" ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)}"/>'
        )
        for cx, cy, x, y in coords:
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{color}"><title>{e(param)}={x:g} '
                f"k={k}: {y:.4f}</title></circle>"
            )
    parts += _legend([f"k={k}" for k in points], W - R + 12, T, colors)
    parts.append("</svg>")
    return "".join(parts)


def delta_histogram_svg(deltas: Mapping[str, Sequence[float]], metric: str) -> str:
    """Histogram of per-query metric deltas against the baseline, one colour per pipeline,
    with a count axis."""
    W, H, L, R, T, B = 720, 320, 62, 180, 16, 44
    allv = [v for vs in deltas.values() for v in vs]
    lim = max((abs(v) for v in allv), default=1.0) or 1.0
    x_ticks, lo, hi = nice_ticks(-lim, lim, 8)
    # An odd number of bins puts "no change" (0) in the middle of the centre bin.
    edges = np.linspace(lo, hi, 22)
    counts = {n: np.histogram(vs, bins=edges)[0] for n, vs in deltas.items()}
    top = max((int(c.max()) for c in counts.values() if len(c)), default=1) or 1
    y_ticks, _, y_top = nice_ticks(0, top, 5)
    y_ticks = [t for t in y_ticks if float(t).is_integer()]
    colors = [COLORS[(i + 1) % len(COLORS)] for i in range(len(counts))]
    parts = [
        _svg_open(W, H, "per-query delta histogram"),
        *_frame(
            (W, H, L, R, T, B),
            [(_lin(t, lo, hi, L, W - R), f"{t:+g}" if t else "0") for t in x_ticks],
            [(_lin(t, 0, y_top, H - B, T), f"{t:g}") for t in y_ticks],
            f"per-query Δ {metric} against the baseline",
            "queries",
        ),
    ]
    n_series = max(len(counts), 1)
    bw = (W - L - R) / (len(edges) - 1)
    for i, ((name, cs), color) in enumerate(zip(counts.items(), colors, strict=True)):
        for j, c in enumerate(cs):
            if c == 0:
                continue
            h = (H - T - B) * c / y_top
            x = L + j * bw + i * bw / n_series
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{H - B - h:.1f}" width="{bw / n_series:.1f}" '
                f'height="{h:.1f}" fill="{color}" opacity="0.8"><title>{html.escape(name)}: {c} '
                f"queries with Δ in [{edges[j]:+.3f}, {edges[j + 1]:+.3f})</title></rect>"
            )
    zx = _lin(0.0, lo, hi, L, W - R)
    parts.append(
        f'<line x1="{zx:.1f}" y1="{T}" x2="{zx:.1f}" y2="{H - B}" stroke="#333" '
        'stroke-dasharray="3,3"/>'
    )
    parts += _legend(list(counts), W - R + 12, T, colors)
    parts.append("</svg>")
    return "".join(parts)
