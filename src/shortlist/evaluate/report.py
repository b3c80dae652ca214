"""Evaluation output: a terminal table, a JSON document with every number, and a
self-contained HTML report (inline SVG plots, no network needed to open it)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shortlist.evaluate.harness import (
    Comparison,
    EvalResult,
    Hurt,
    Recommendation,
    Sweep,
    find_sweeps,
    summary_rows,
)

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def format_table(result: EvalResult, comparisons: Sequence[Comparison]) -> str:
    """The summary as a fixed-width table: metrics, latency percentiles, cost, significance."""
    rows = summary_rows(result)
    sig = {(c.name, c.k): c for c in comparisons}
    head = [
        "pipeline",
        "k",
        *result.metrics,
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "$/1k q",
        f"Δ{result.primary}",
        "p(holm)",
        "W/L/T",
    ]
    lines = []
    for r in rows:
        c = sig.get((r["pipeline"], r["k"]))
        lines.append(
            [
                r["pipeline"],
                str(r["k"]),
                *[f"{r[m]:.4f}" for m in result.metrics],
                f"{r['total_p50_ms']:.1f}",
                f"{r['total_p95_ms']:.1f}",
                f"{r['total_p99_ms']:.1f}",
                "-"
                if r["cost_per_1k_queries_usd"] is None
                else f"{r['cost_per_1k_queries_usd']:.3f}",
                "base" if c is None else f"{c.delta:+.4f}",
                "" if c is None else f"{c.p_adjusted:.3g}" + ("*" if c.p_adjusted < 0.05 else ""),
                "" if c is None else f"{c.wins}/{c.losses}/{c.ties}",
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [
        f"{result.dataset}: {result.n_queries} queries",
        fmt(head),
        fmt(["-" * w for w in widths]),
    ]
    out += [fmt(line) for line in lines]
    out.append(
        "Δ and p: paired randomization test against the first pipeline at the same k, "
        "Holm-adjusted; * = p < 0.05. Latency: per query, retrieve + rerank."
    )
    return "\n".join(out)


def to_json(
    result: EvalResult,
    comparisons: Sequence[Comparison],
    hurts: Sequence[Hurt],
    recommendation: Recommendation | None,
) -> dict[str, Any]:
    return {
        "dataset": result.dataset,
        "n_queries": result.n_queries,
        "metrics": list(result.metrics),
        "primary": result.primary,
        "summary": summary_rows(result),
        "comparisons": [c.__dict__ for c in comparisons],
        "where_reranking_hurts": [h.__dict__ for h in hurts],
        "recommendation": None
        if recommendation is None
        else {
            "pipeline": recommendation.name,
            "k": recommendation.k,
            "reason": recommendation.reason,
            "frontier": [list(p) for p in recommendation.frontier],
        },
        "per_query": {
            f"{c.name}@k{c.k}": {
                "metrics": {m: dict(v) for m, v in c.metrics.items()},
                "latency_ms": {s: dict(v) for s, v in c.latency_ms.items()},
            }
            for c in result.configs
        },
        "sweeps": [
            {
                "param": sw.param,
                "base": sw.base,
                "points": {str(k): [list(p) for p in v] for k, v in sw.points.items()},
            }
            for sw in find_sweeps(result)
        ],
        "notes": result.notes,
    }


# ---- SVG -------------------------------------------------------------------------
def _scale(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a if hi == lo else a + (v - lo) / (hi - lo) * (b - a)


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [float(x) for x in np.linspace(lo, hi, n)]


def quality_latency_svg(result: EvalResult, metric: str) -> str:
    """Quality against p95 latency, one line per pipeline across K."""
    W, H, L, R, T, B = 640, 360, 60, 160, 20, 45
    pts: dict[str, list[tuple[float, float, int]]] = {}
    for c in result.configs:
        pts.setdefault(c.name, []).append((c.latency_percentile(95), c.mean(metric), c.k))
    xs = [p[0] for v in pts.values() for p in v] or [0.0, 1.0]
    ys = [p[1] for v in pts.values() for p in v] or [0.0, 1.0]
    x0, x1 = 0.0, max(xs) * 1.05 or 1.0
    y0, y1 = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="quality versus latency">',
        *_axes((W, H, L, R, T, B), (x0, x1, y0, y1), "{:.0f}", "p95 latency per query (ms)", metric),
    ]
    for i, (name, ps) in enumerate(pts.items()):
        color = _COLORS[i % len(_COLORS)]
        ps = sorted(ps, key=lambda p: p[2])
        coords = [(_scale(x, x0, x1, L, W - R), _scale(y, y0, y1, H - B, T), k) for x, y, k in ps]
        parts.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)}"/>'
        )
        for x, y, k in coords:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"><title>{html.escape(name)} k={k}</title></circle>'
            )
            parts.append(
                f'<text x="{x + 5:.1f}" y="{y - 5:.1f}" font-size="9" fill="{color}">k={k}</text>'
            )
        ly = T + 14 + 16 * i
        parts.append(f'<rect x="{W - R + 10}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{W - R + 25}" y="{ly}" font-size="11">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _axes(
    box: tuple[int, int, int, int, int, int],
    ranges: tuple[float, float, float, float],
    x_format: str,
    x_label: str,
    y_label: str,
) -> list[str]:
    """A plot's frame, tick labels and axis titles. `box` is (width, height, left, right,
    top, bottom margins); `ranges` is (x0, x1, y0, y1); labels are escaped here."""
    W, H, L, R, T, B = box
    x0, x1, y0, y1 = ranges
    parts = [
        f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#999"/>'
    ]
    for t in _ticks(x0, x1):
        x = _scale(t, x0, x1, L, W - R)
        parts.append(
            f'<text x="{x:.1f}" y="{H - B + 15}" font-size="10" text-anchor="middle">{x_format.format(t)}</text>'
        )
    for t in _ticks(y0, y1):
        y = _scale(t, y0, y1, H - B, T)
        parts.append(
            f'<text x="{L - 5}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{t:.3f}</text>'
        )
    parts.append(
        f'<text x="{(L + W - R) / 2}" y="{H - 8}" font-size="12" text-anchor="middle">{html.escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{(T + H - B) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {(T + H - B) / 2})">{html.escape(y_label)}</text>'
    )
    return parts


_PARAM_NAMES = {
    "w": "BM25 weight w (dense 1 - w)",
    "wd": "dense weight wd",
    "rrf_k": "RRF k",
    "depth": "fusion depth per side",
    "k1": "BM25 k1",
    "b": "BM25 b",
}


def sweep_svg(sweep: Sweep, metric: str) -> str:
    """Quality against a swept first-stage parameter, one line per K."""
    W, H, L, R, T, B = 640, 300, 60, 120, 20, 45
    xs = [x for ps in sweep.points.values() for x, _ in ps]
    ys = [y for ps in sweep.points.values() for _, y in ps]
    x0, x1 = min(xs), max(xs)
    y0, y1 = max(0.0, min(ys) - 0.02), min(1.0, max(ys) + 0.02)
    e = html.escape
    label = f"{metric} versus {sweep.param} for {sweep.base}"
    parts = [
        f'<svg class="plot sweep" data-param="{e(sweep.param)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{e(label)}">',
        *_axes(
            (W, H, L, R, T, B),
            (x0, x1, y0, y1),
            "{:.3g}",
            _PARAM_NAMES.get(sweep.param, sweep.param),
            metric,
        ),
    ]
    for i, (k, ps) in enumerate(sweep.points.items()):
        color = _COLORS[i % len(_COLORS)]
        coords = [(_scale(x, x0, x1, L, W - R), _scale(y, y0, y1, H - B, T), x, y) for x, y in ps]
        parts.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{" ".join(f"{cx:.1f},{cy:.1f}" for cx, cy, _, _ in coords)}"/>'
        )
        for cx, cy, x, y in coords:
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{color}"><title>{e(sweep.param)}={x:g} k={k}: {y:.4f}</title></circle>'
            )
        ly = T + 14 + 16 * i
        parts.append(f'<rect x="{W - R + 10}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{W - R + 25}" y="{ly}" font-size="11">k={k}</text>')
    parts.append("</svg>")
    return "".join(parts)


def delta_histogram_svg(deltas: Mapping[str, Sequence[float]], metric: str) -> str:
    """Histogram of per-query metric deltas against the baseline, one colour per pipeline."""
    W, H, L, R, T, B = 640, 300, 50, 160, 20, 45
    allv = [v for vs in deltas.values() for v in vs]
    lim = max((abs(v) for v in allv), default=1.0) or 1.0
    edges = np.linspace(-lim, lim, 21)
    counts = {n: np.histogram(vs, bins=edges)[0] for n, vs in deltas.items()}
    top = max((int(c.max()) for c in counts.values() if len(c)), default=1) or 1
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="per-query delta histogram">',
        f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#999"/>',
    ]
    n_series = max(len(counts), 1)
    bw = (W - L - R) / (len(edges) - 1)
    for i, (name, cs) in enumerate(counts.items()):
        color = _COLORS[(i + 1) % len(_COLORS)]
        for j, c in enumerate(cs):
            if c == 0:
                continue
            h = (H - T - B) * c / top
            x = L + j * bw + i * bw / n_series
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{H - B - h:.1f}" width="{bw / n_series:.1f}" height="{h:.1f}" fill="{color}" opacity="0.8"><title>{html.escape(name)}: {c} queries in [{edges[j]:.3f}, {edges[j + 1]:.3f})</title></rect>'
            )
        ly = T + 14 + 16 * i
        parts.append(f'<rect x="{W - R + 10}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        parts.append(f'<text x="{W - R + 25}" y="{ly}" font-size="11">{html.escape(name)}</text>')
    zx = _scale(0.0, -lim, lim, L, W - R)
    parts.append(
        f'<line x1="{zx:.1f}" y1="{T}" x2="{zx:.1f}" y2="{H - B}" stroke="#333" stroke-dasharray="3,3"/>'
    )
    for t in _ticks(-lim, lim):
        parts.append(
            f'<text x="{_scale(t, -lim, lim, L, W - R):.1f}" y="{H - B + 15}" font-size="10" text-anchor="middle">{t:+.2f}</text>'
        )
    parts.append(
        f'<text x="{(L + W - R) / 2}" y="{H - 8}" font-size="12" text-anchor="middle">per-query Δ {html.escape(metric)} vs baseline (max count {top})</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _ci_text(ci: Sequence[float | None]) -> str:
    lo, hi = ci
    return "" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def render_html(
    result: EvalResult,
    comparisons: Sequence[Comparison],
    hurts: Sequence[Hurt],
    recommendation: Recommendation | None,
) -> str:
    metric = result.primary
    rows = summary_rows(result)
    sig = {(c.name, c.k): c for c in comparisons}
    base_name = result.configs[0].name if result.configs else ""
    base = {c.k: c for c in result.configs if c.name == base_name}
    deltas: dict[str, list[float]] = {}
    for c in result.configs:
        if c.name != base_name and c.k == max(base, default=c.k) and c.k in base:
            deltas[c.name] = [
                c.metrics[metric][q] - base[c.k].metrics[metric][q] for q in c.metrics[metric]
            ]
    e = html.escape
    head = "".join(
        f"<th>{e(h)}</th>"
        for h in [
            "pipeline",
            "k",
            *result.metrics,
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "$ / 1k queries",
            f"Δ {metric}",
            "p (Holm)",
            "W/L/T",
        ]
    )
    body = []
    for r in rows:
        cmp = sig.get((r["pipeline"], r["k"]))
        cells = [e(r["pipeline"]), str(r["k"])]
        cells += [
            f"{r[m]:.4f} <small>{_ci_text(r[m + '_ci'])}</small>"
            for m in result.metrics
        ]
        cells += [
            f"{r['total_p50_ms']:.1f}",
            f"{r['total_p95_ms']:.1f}",
            f"{r['total_p99_ms']:.1f}",
        ]
        cells.append(
            "–" if r["cost_per_1k_queries_usd"] is None else f"{r['cost_per_1k_queries_usd']:.3f}"
        )
        cells += (
            ["baseline", "", ""]
            if cmp is None
            else [
                f"{cmp.delta:+.4f}",
                f"{cmp.p_adjusted:.3g}{' *' if cmp.p_adjusted < 0.05 else ''}",
                f"{cmp.wins}/{cmp.losses}/{cmp.ties}",
            ]
        )
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    hurt_rows = "".join(
        f"<tr><td>{e(h.name)}</td><td>{h.k}</td><td>{e(h.query_id)}</td><td>{e(h.query[:120])}</td>"
        f"<td>{h.before:.4f}</td><td>{h.after:.4f}</td><td>{h.relevant_rank_before or '–'}</td>"
        f"<td>{h.relevant_rank_after or '–'}</td></tr>"
        for h in hurts
    )
    rec = ""
    if recommendation is not None:
        rec = f'<h2>Recommendation</h2><p class="rec">{e(recommendation.reason)}.</p>'
    data = json.dumps({"configs": len(result.configs)})
    sweeps = "".join(
        f"<h3>{e(metric)} versus {e(sw.param)}: {e(sw.base)}</h3>{sweep_svg(sw, metric)}"
        for sw in find_sweeps(result, metric)
    )
    if sweeps:
        sweeps = (
            "<h2>First-stage parameter sweeps</h2><p>Configurations that differ only in one "
            f"first-stage parameter: mean {e(metric)} against its value, one line per k.</p>"
            + sweeps
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>shortlist evaluation: {e(result.dataset)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:right}} th{{background:#f3f3f3}}
td:first-child,th:first-child{{text-align:left}} small{{color:#777}} .rec{{background:#eef6ee;padding:.6em}}
</style></head><body>
<h1>shortlist evaluation: {e(result.dataset)}</h1>
<p>{result.n_queries} queries. Metrics are means with 95% confidence intervals; latency is per query (retrieve + rerank). Δ and p compare each configuration with <b>{e(base_name)}</b> at the same k (paired randomization test, Holm–Bonferroni adjusted).</p>
<h2>Summary</h2><table id="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
{rec}
<h2>Quality versus latency across k</h2>{quality_latency_svg(result, metric)}
<h2>Per-query Δ {e(metric)} against the baseline (largest k)</h2>{delta_histogram_svg(deltas, metric)}
{sweeps}
<h2>Where reranking hurts</h2>
<p>Queries where a reranker lowered {e(metric)} most against its own first stage; ranks are of the best relevant document.</p>
<table id="hurts"><thead><tr><th>pipeline</th><th>k</th><th>query id</th><th>query</th><th>{e(metric)} before</th><th>after</th><th>relevant rank before</th><th>after</th></tr></thead><tbody>{hurt_rows or '<tr><td colspan="8">reranking lowered no query</td></tr>'}</tbody></table>
<script>
// Marks the page as rendered so automated checks can tell the plots are in the DOM.
document.body.dataset.plots = String(document.querySelectorAll("svg.plot").length);
document.body.dataset.configs = String({data}.configs);
</script>
</body></html>
"""
