"""Evaluation output: tables (text, Markdown, LaTeX), a JSON document with every number,
and a self-contained HTML report (inline SVG plots and plain JavaScript, no network
needed to open it).

The JSON schema is documented in docs/eval-json.md; it only ever gains fields.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shortlist.evaluate.harness import (
    CI_METHOD,
    CI_RESAMPLES,
    Analysis,
    Hurt,
    find_sweeps,
    metric_at,
    significantly_better,
    summary_rows,
)
from shortlist.evaluate.plots import (
    Point,
    delta_histogram_svg,
    quality_latency_svg,
    sweep_svg,
)

SCHEMA_VERSION = 2
FORMATS = ("text", "markdown", "latex")


def letter(i: int) -> str:
    """The short id of the i-th configuration (a, b, ..., z, a1, b1, ...), as ranx marks
    the systems a result is significantly better than."""
    return chr(97 + i % 26) + (str(i // 26) if i >= 26 else "")


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with an ellipsis when
    anything was cut (a single over-long word is cut inside)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 1)]
    space = cut.rfind(" ")
    if space >= limit // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-") + "…"


def metric_title(metric: str) -> str:
    """A column title: `recall@k` reads `recall@K` (K = the configuration's depth)."""
    return metric[:-1] + "K" if metric_at(metric, 1) != metric else metric


# ---- one table model, three formats ------------------------------------------------
def _beats_letters(analysis: Analysis) -> dict[tuple[str, int], str]:
    ids = {(c.name, c.k): letter(i) for i, c in enumerate(analysis.result.configs)}
    beats = significantly_better(analysis.pairs, analysis.recommendation.alpha)
    return {key: "".join(sorted(ids[o] for o in beats.get(key, set()))) for key in ids}


def _table(analysis: Analysis) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows of formatted cells, superscript letters per row). Column 0 is the
    configuration's letter; the primary metric is column 3."""
    result = analysis.result
    sig = {(c.name, c.k): c for c in analysis.comparisons}
    marks = _beats_letters(analysis)
    head = [
        "id",
        "pipeline",
        "k",
        *(metric_title(m) for m in result.metrics),
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "$/1k q",
        f"Δ{result.primary}",
        "p(Holm)",
        "W/L/T",
    ]
    rows, sups = [], []
    for i, r in enumerate(summary_rows(result)):
        c = sig.get((r["pipeline"], r["k"]))
        rows.append(
            [
                letter(i),
                r["pipeline"],
                str(r["k"]),
                *(f"{r[m]:.4f}" for m in result.metrics),
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
        sups.append(marks[(r["pipeline"], r["k"])])
    return head, rows, sups


def _legend_line(analysis: Analysis) -> str:
    primary = analysis.result.primary
    return (
        f"Letters after {primary}: configurations it beats (paired randomization test, "
        f"Holm-adjusted over all distinct pairs, p <= {analysis.recommendation.alpha:g}). "
        "Δ and p(Holm): "
        "against the first pipeline at the same k; * = p < 0.05. Latency: per query, "
        "retrieve + rerank. recall@K is cut at each row's k."
    )


def _fixed_width(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [fmt(head), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)]


def format_table(analysis: Analysis, fmt: str = "text") -> str:
    """The summary of one dataset as a fixed-width (`text`), `markdown` or `latex` table."""
    head, rows, sups = _table(analysis)
    result = analysis.result
    primary_col = 3
    if fmt == "text":
        head = [*head, "beats"]
        rows = [[*r, s] for r, s in zip(rows, sups, strict=True)]
        lines = [f"{result.dataset}: {result.n_queries} queries", *_fixed_width(head, rows)]
        return "\n".join([*lines, _legend_line(analysis)])
    if fmt == "markdown":
        md_rows = [
            [
                *r[:primary_col],
                r[primary_col] + (f"<sup>{s}</sup>" if s else ""),
                *r[primary_col + 1 :],
            ]
            for r, s in zip(rows, sups, strict=True)
        ]
        return "\n".join(
            [
                f"**{_md(result.dataset)}**: {result.n_queries} queries",
                "",
                _md_row(head),
                "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|",
                *(_md_row(r) for r in md_rows),
                "",
                _md(_legend_line(analysis)),
            ]
        )
    if fmt == "latex":
        best = _best_per_column(rows, range(3, 3 + len(result.metrics)))
        tex_rows = []
        for i, (r, s) in enumerate(zip(rows, sups, strict=True)):
            cells = [_tex(c) for c in r]
            for col in range(3, 3 + len(result.metrics)):
                if best.get(col) == i:
                    cells[col] = f"\\textbf{{{cells[col]}}}"
            if s:
                cells[primary_col] += f"$^{{{s}}}$"
            tex_rows.append(" & ".join(cells) + r" \\")
        caption = (
            f"{_tex(result.dataset)}, {result.n_queries} queries. "
            f"{_tex(_legend_line(analysis))} Best value per metric in bold."
        )
        return "% requires \\usepackage{booktabs}\n" + _latex_table(head, tex_rows, caption)
    raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _best_per_column(rows: Sequence[Sequence[str]], cols: range) -> dict[int, int]:
    out = {}
    for col in cols:
        values = [float(r[col]) for r in rows]
        if values:
            out[col] = max(range(len(values)), key=lambda i: values[i])
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md(c) for c in cells) + " |"


_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "Δ": r"$\Delta$",
    "–": "--",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}



def _latex_table(head: Sequence[str], body: Sequence[str], caption: str) -> str:
    """A booktabs table: two left-aligned columns (pipeline, k), the rest right-aligned;
    `body` rows are already LaTeX (cells escaped, ` & `-joined, ending in a row break)."""
    return "\n".join(
        [
            "\\begin{table}[t]",
            "\\centering",
            "\\begin{tabular}{ll" + "r" * (len(head) - 2) + "}",
            "\\toprule",
            " & ".join(_tex(h) for h in head) + r" \\",
            "\\midrule",
            *body,
            "\\bottomrule",
            "\\end{tabular}",
            f"\\caption{{{caption}}}",
            "\\end{table}",
        ]
    )


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


# ---- several datasets ----------------------------------------------------------------
def combined_rows(analyses: Sequence[Analysis]) -> list[dict[str, Any]]:
    """One row per (pipeline, k) with its primary metric on every dataset, the average
    over datasets (only when it ran on all of them, as BEIR and MTEB average) and the
    mean of its p95 latencies."""
    keys: list[tuple[str, int]] = []
    by: dict[str, dict[tuple[str, int], tuple[float, float]]] = {}
    for a in analyses:
        res = a.result
        by[res.dataset] = {}
        for c in res.configs:
            if (c.name, c.k) not in keys:
                keys.append((c.name, c.k))
            by[res.dataset][(c.name, c.k)] = (c.mean(res.primary), c.latency_percentile(95))
    rows = []
    for name, k in keys:
        scores = {d: v[(name, k)][0] for d, v in by.items() if (name, k) in v}
        lats = [v[(name, k)][1] for v in by.values() if (name, k) in v]
        complete = len(scores) == len(by)
        rows.append(
            {
                "pipeline": name,
                "k": k,
                "scores": scores,
                "average": sum(scores.values()) / len(scores) if complete else None,
                "mean_p95_ms": sum(lats) / len(lats) if lats else None,
            }
        )
    return rows


def format_combined(analyses: Sequence[Analysis], fmt: str = "text") -> str:
    """The combined table of several datasets in `fmt` (see `FORMATS`)."""
    primary = analyses[0].result.primary
    datasets = [a.result.dataset for a in analyses]
    head = ["pipeline", "k", *datasets, "average", "mean p95 ms"]
    rows = [
        [
            r["pipeline"],
            str(r["k"]),
            *(f"{r['scores'][d]:.4f}" if d in r["scores"] else "-" for d in datasets),
            "-" if r["average"] is None else f"{r['average']:.4f}",
            "-" if r["mean_p95_ms"] is None else f"{r['mean_p95_ms']:.1f}",
        ]
        for r in combined_rows(analyses)
    ]
    title = f"{primary} over {len(datasets)} datasets"
    note = "average: mean over datasets, shown only for configurations run on all of them."
    if fmt == "text":
        return "\n".join([title, *_fixed_width(head, rows), note])
    if fmt == "markdown":
        return "\n".join(
            [
                f"**{_md(title)}**",
                "",
                _md_row(head),
                "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|",
                *(_md_row(r) for r in rows),
                "",
                note,
            ]
        )
    if fmt == "latex":
        body = [" & ".join(_tex(c) for c in r) + r" \\" for r in rows]
        return _latex_table(head, body, f"{_tex(title)}; {_tex(note)}")
    raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")


# ---- JSON ------------------------------------------------------------------------------
def _hurt_dict(h: Hurt) -> dict[str, Any]:
    return dict(h.__dict__)


def to_json(analysis: Analysis, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every number of one dataset's evaluation (schema: docs/eval-json.md)."""
    result = analysis.result
    rec = analysis.recommendation
    ids = {(c.name, c.k): letter(i) for i, c in enumerate(result.configs)}
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": result.dataset,
        "n_queries": result.n_queries,
        "metrics": list(result.metrics),
        "metric_cutoffs": {
            m: {str(c.k): metric_at(m, c.k) for c in result.configs}
            for m in result.metrics
            if metric_at(m, 1) != m
        },
        "primary": result.primary,
        "confidence_interval": {"level": 0.95, "method": CI_METHOD, "resamples": CI_RESAMPLES},
        "summary": [
            {**row, "id": ids[(row["pipeline"], row["k"])]} for row in summary_rows(result)
        ],
        "comparisons": [c.__dict__ for c in analysis.comparisons],
        "pairwise": [p.__dict__ for p in analysis.pairs],
        "where_reranking_hurts": [_hurt_dict(h) for h in analysis.hurts],
        "where_reranking_helps": [_hurt_dict(h) for h in analysis.helps],
        "recommendation": {
            "pipeline": rec.name,
            "k": rec.k,
            "reason": rec.reason,
            "frontier": [list(p) for p in rec.frontier],
            "rule": rec.rule,
            "budget_ms": rec.budget_ms,
            "alpha": rec.alpha,
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
        "metadata": dict(metadata or result.metadata),
    }


def to_json_multi(
    analyses: Sequence[Analysis], metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Several datasets: each one's document under `datasets`, the combined table under
    `combined`. A single dataset is written by `to_json` alone, as before."""
    return {
        "schema_version": SCHEMA_VERSION,
        "datasets": [to_json(a, metadata) for a in analyses],
        "combined": {
            "metric": analyses[0].result.primary if analyses else None,
            "rows": combined_rows(analyses),
        },
        "metadata": dict(metadata or {}),
    }


# ---- HTML ------------------------------------------------------------------------------
_E = html.escape


def _num(value: float | None, text: str | None = None) -> str:
    """A numeric cell: sorts by `value`, shows `text`."""
    if value is None:
        return '<td data-value="">–</td>'
    return f'<td data-value="{value:.6g}">{text if text is not None else _E(f"{value}")}</td>'


def _ci(ci: Sequence[float | None]) -> str:
    lo, hi = ci
    return "" if lo is None or hi is None else f'<small class="ci">[{lo:.3f}, {hi:.3f}]</small>'


def _summary_html(analysis: Analysis, anchor: str) -> str:
    result = analysis.result
    sig = {(c.name, c.k): c for c in analysis.comparisons}
    marks = _beats_letters(analysis)
    rec = analysis.recommendation
    heads = [
        "id",
        "pipeline",
        "k",
        *(metric_title(m) for m in result.metrics),
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "$ / 1k queries",
        f"Δ {result.primary}",
        "p (Holm)",
        "W/L/T",
        "latency measured",
    ]
    body = []
    for i, r in enumerate(summary_rows(result)):
        key = (r["pipeline"], r["k"])
        cmp = sig.get(key)
        chosen = key == (rec.name, rec.k)
        cells = [
            f'<td class="t" data-value="{letter(i)}">{letter(i)}</td>',
            f'<td class="t" data-value="{_E(r["pipeline"])}" title="{_E(r["spec"])}">'
            f"{_E(r['pipeline'])}"
            + (' <span class="badge">recommended</span>' if chosen else "")
            + "</td>",
            _num(r["k"], str(r["k"])),
        ]
        for m in result.metrics:
            sup = f"<sup>{marks[key]}</sup>" if m == result.primary and marks[key] else ""
            cells.append(_num(r[m], f"{r[m]:.4f}{sup}{_ci(r[m + '_ci'])}"))
        cells += [_num(r[f"total_p{q}_ms"], f"{r[f'total_p{q}_ms']:.1f}") for q in (50, 95, 99)]
        cost = r["cost_per_1k_queries_usd"]
        cells.append(_num(cost, None if cost is None else f"{cost:.3f}"))
        if cmp is None:
            cells += ['<td data-value="0">baseline</td>', '<td data-value=""></td>'] + [
                '<td data-value=""></td>'
            ]
        else:
            star = " *" if cmp.p_adjusted < 0.05 else ""
            cells += [
                _num(cmp.delta, f"{cmp.delta:+.4f}"),
                _num(cmp.p_adjusted, f"{cmp.p_adjusted:.3g}{star}"),
                f'<td data-value="{cmp.wins - cmp.losses}">{cmp.wins}/{cmp.losses}/{cmp.ties}</td>',
            ]
        measured = r["latency_measured_at"] or ""
        cells.append(
            f'<td data-value="{_E(measured)}">{_E(measured.replace("T", " ")[:16])}'
            + (" <small>(saved run)</small>" if r["reused_saved_run"] else "")
            + "</td>"
        )
        body.append(f"<tr{' class=chosen' if chosen else ''}>" + "".join(cells) + "</tr>")
    head = _heads(heads, text_columns=("id", "pipeline"))
    return (
        f'<table class="sortable summary" id="summary-{anchor}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f'<p class="legend">Means with 95% {CI_METHOD} confidence intervals over queries. '
        f"Letters after {_E(result.primary)}: the configurations it beats significantly "
        f"(paired randomization test between every pair, Holm–Bonferroni adjusted over all "
        f"pairs of configurations whose per-query values differ, p ≤ {rec.alpha:g}). "
        f"Δ, p (Holm) and W/L/T compare "
        f"with the first pipeline at the same k. recall@K is cut at each row's own k, the "
        f"candidates the reranker saw. Click a column title to sort.</p>"
    )


def _heads(heads: Sequence[str], text_columns: Sequence[str]) -> str:
    return "".join(
        f'<th scope="col"{" class=t" if h in text_columns else ""} title="click to sort">'
        f"{_E(h)}</th>"
        for h in heads
    )


def _changes_html(rows: Sequence[Hurt], metric: str, empty: str, table_id: str) -> str:
    body = "".join(
        f'<tr><td class="t">{_E(h.name)}</td>{_num(h.k, str(h.k))}'
        f'<td class="t query" title="{_E(h.query_id)}: {_E(h.query)}">'
        f"{_E(shorten(h.query, 50))}</td>"
        f"{_num(h.before, f'{h.before:.3f}')}{_num(h.after, f'{h.after:.3f}')}"
        f"{_num(h.relevant_rank_before, str(h.relevant_rank_before or '–'))}"
        f"{_num(h.relevant_rank_after, str(h.relevant_rank_after or '–'))}</tr>"
        for h in rows
    )
    heads = ("pipeline", "k", "query", f"{metric} before", "after", "rank before", "after")
    return (
        f'<table class="sortable changes" id="{table_id}"><thead><tr>'
        f"{_heads(heads, text_columns=('pipeline', 'query'))}</tr></thead><tbody>"
        f"{body or f'<tr><td colspan=7>{_E(empty)}</td></tr>'}</tbody></table>"
    )


def _metadata_html(metadata: Mapping[str, Any]) -> str:
    if not metadata:
        return ""
    cpu = metadata.get("cpu") or {}
    rows = [
        ("date (UTC)", metadata.get("date", "")),
        ("shortlist", metadata.get("shortlist_version", "")),
        ("command", metadata.get("command", "")),
        ("CPU", f"{cpu.get('model', '')} ({cpu.get('logical_cpus', '?')} logical CPUs)"),
        ("CPU flags", " ".join(cpu.get("flags", [])) or "none of the listed SIMD flags"),
        ("threads", "" if metadata.get("threads") is None else str(metadata["threads"])),
        ("Python, torch", f"{metadata.get('python', '')}, {metadata.get('torch', 'not loaded')}"),
        ("platform", metadata.get("platform", "")),
    ]
    for role, ident in (metadata.get("models") or {}).items():
        if isinstance(ident, Mapping):
            text = ", ".join(f"{k}={v}" for k, v in ident.items() if v not in (None, ""))
        else:
            text = str(ident)
        rows.append((role, text))
    body = "".join(
        f'<tr><th scope="row">{_E(k)}</th><td><code>{_E(str(v))}</code></td></tr>' for k, v in rows
    )
    return f'<h2 id="run">Run</h2><table class="meta">{body}</table>'


def _dataset_html(analysis: Analysis, anchor: str) -> str:
    result = analysis.result
    metric = result.primary
    rows = {(r["pipeline"], r["k"]): r for r in summary_rows(result)}
    points = [
        Point(
            c.name,
            c.k,
            c.latency_percentile(95),
            c.mean(metric),
            rows[(c.name, c.k)][f"{metric}_ci"][0],
            rows[(c.name, c.k)][f"{metric}_ci"][1],
        )
        for c in result.configs
    ]
    base_name = result.configs[0].name if result.configs else ""
    base = {c.k: c for c in result.configs if c.name == base_name}
    deltas: dict[str, list[float]] = {}
    for c in result.configs:
        if c.name != base_name and c.k == max(base, default=c.k) and c.k in base:
            deltas[c.name] = [
                c.metrics[metric][q] - base[c.k].metrics[metric][q] for q in c.metrics[metric]
            ]
    rec = analysis.recommendation
    sweeps = "".join(
        f"<h4>{_E(metric)} versus {_E(sw.param)}: {_E(sw.base)}</h4>"
        f"{sweep_svg(sw.param, sw.base, sw.points, metric)}"
        for sw in find_sweeps(result, metric)
    )
    if sweeps:
        sweeps = (
            "<h3>First-stage parameter sweeps</h3><p>Configurations that differ only in one "
            f"first-stage parameter: mean {_E(metric)} against its value, one line per k.</p>"
            + sweeps
        )
    notes = "".join(f"<li>{_E(n)}</li>" for n in result.notes)
    hist = (
        f"<h3>Per-query Δ {_E(metric)} against {_E(base_name)} (k={max(base)})</h3>"
        + delta_histogram_svg(deltas, metric)
        if deltas
        else ""
    )
    return f"""<section class="dataset" id="{anchor}">
<h2>{_E(result.dataset)} <small>{result.n_queries} queries</small></h2>
<div class="rec"><b>Recommendation:</b> {_E(rec.reason)}.<br><small>{_E(rec.rule)}</small></div>
{_summary_html(analysis, anchor)}
{f'<ul class="notes">{notes}</ul>' if notes else ""}
<h3>Quality versus latency across k</h3>
<p>Mean {_E(metric)} with its 95% interval against p95 latency (log scale); each line is one
pipeline, each point one k.</p>
{quality_latency_svg(points, metric)}
{hist}
{sweeps}
<h3>What reranking changed</h3>
<p>Queries where a reranker changed {_E(metric)} most against its own first stage; ranks are of
the best relevant document. Hover a query for its id and full text.</p>
<div class="pair">
<div><h4>Where reranking helped</h4>{_changes_html(analysis.helps, metric, "reranking raised no query", f"helps-{anchor}")}</div>
<div><h4>Where reranking hurt</h4>{_changes_html(analysis.hurts, metric, "reranking lowered no query", f"hurts-{anchor}")}</div>
</div>
</section>"""


def _combined_html(analyses: Sequence[Analysis]) -> str:
    datasets = [a.result.dataset for a in analyses]
    primary = analyses[0].result.primary
    heads = ["pipeline", "k", *datasets, "average", "mean p95 ms"]
    body = []
    for r in combined_rows(analyses):
        cells = [
            f'<td class="t" data-value="{_E(r["pipeline"])}">{_E(r["pipeline"])}</td>',
            _num(r["k"], str(r["k"])),
        ]
        cells += [
            _num(r["scores"].get(d), None if d not in r["scores"] else f"{r['scores'][d]:.4f}")
            for d in datasets
        ]
        cells.append(
            _num(r["average"], None if r["average"] is None else f"<b>{r['average']:.4f}</b>")
        )
        p95 = r["mean_p95_ms"]
        cells.append(_num(p95, None if p95 is None else f"{p95:.1f}"))
        body.append("<tr>" + "".join(cells) + "</tr>")
    head = _heads(heads, text_columns=("pipeline",))
    links = " · ".join(f'<a href="#ds-{i}">{_E(d)}</a>' for i, d in enumerate(datasets))
    return (
        f"<h2>All datasets: mean {_E(primary)}</h2><p>{links}</p>"
        f'<table class="sortable" id="combined"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        '<p class="legend">average: the plain mean over datasets (as the BEIR and MTEB '
        "leaderboards average), shown only for configurations run on every dataset.</p>"
    )


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1320px;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}
th.t,td.t{text-align:left} td{white-space:nowrap} td.query{white-space:normal;min-width:12em}
table.changes{font-size:12px} table.changes td,table.changes th{padding:2px 5px}
thead th{background:#f3f3f3;cursor:pointer;user-select:none}
thead th[aria-sort=ascending]::after{content:" \\25B2"}
thead th[aria-sort=descending]::after{content:" \\25BC"}
small{color:#777} small.ci{display:block} sup{color:#2c6e2c;font-weight:600}
.rec{background:#eef6ee;padding:.6em;border-left:4px solid #2ca02c;margin:.6em 0}
tr.chosen td{background:#f4fbf4}
.badge{background:#2ca02c;color:#fff;border-radius:3px;font-size:10px;padding:0 4px}
.pair{display:flex;gap:1.5em;flex-wrap:wrap} .pair>div{flex:1 1 560px;min-width:0;overflow-x:auto}
.legend{font-size:12px;color:#555;max-width:75em}
svg.plot{display:block;margin:.4em 0} table.meta td{white-space:normal}
table.meta th,table.meta td{text-align:left}
table.meta code{white-space:pre-wrap;word-break:break-all}
"""

_SCRIPT = """
(function () {
  "use strict";
  // Sortable tables: click (or Enter on) a column title; cells sort by data-value.
  function key(row, col) {
    var cell = row.cells[col];
    var raw = cell && cell.dataset.value !== undefined ? cell.dataset.value : (cell ? cell.textContent : "");
    var n = parseFloat(raw);
    return raw !== "" && !isNaN(n) && String(n) === String(Number(raw)) ? n : raw;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead ? Array.prototype.slice.call(table.tHead.rows[0].cells) : [];
    heads.forEach(function (th, col) {
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a, col), y = key(b, col);
          var c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
  // Self-check for automated tests: how many text boxes overlap inside each plot.
  var overlaps = [];
  document.querySelectorAll("svg.plot").forEach(function (svg) {
    var boxes = Array.prototype.map.call(svg.querySelectorAll("text"), function (t) {
      return [t.textContent, t.getBoundingClientRect()];
    });
    for (var i = 0; i < boxes.length; i++) {
      for (var j = i + 1; j < boxes.length; j++) {
        var a = boxes[i][1], b = boxes[j][1];
        if (a.width && b.width && a.left < b.right - 0.5 && b.left < a.right - 0.5 &&
            a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) {
          overlaps.push(boxes[i][0] + " / " + boxes[j][0]);
        }
      }
    }
  });
  document.body.dataset.plots = String(document.querySelectorAll("svg.plot").length);
  document.body.dataset.labelOverlaps = String(overlaps.length);
  document.body.dataset.overlapping = overlaps.join(" | ");
  document.body.dataset.height = String(document.documentElement.scrollHeight);
})();
"""


def render_html(analyses: Sequence[Analysis], metadata: Mapping[str, Any] | None = None) -> str:
    """The report of one or several datasets as one self-contained HTML page."""
    if not analyses:
        raise ValueError("render_html needs at least one dataset's analysis")
    names = ", ".join(a.result.dataset for a in analyses)
    first = analyses[0]
    base_name = first.result.configs[0].name if first.result.configs else ""
    sections = "\n".join(_dataset_html(a, f"ds-{i}") for i, a in enumerate(analyses))
    combined = _combined_html(analyses) if len(analyses) > 1 else ""
    meta = _metadata_html(metadata if metadata is not None else first.result.metadata)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>shortlist evaluation: {_E(names)}</title>
<style>{_CSS}</style></head><body>
<h1>shortlist evaluation: {_E(names)}</h1>
<p>Primary metric <b>{_E(first.result.primary)}</b>. Latency is per query (retrieve +
rerank), p95 unless stated. Δ and p compare each configuration with <b>{_E(base_name)}</b> at
the same k. The recommendation rule is given under each recommendation; it never prefers a
slower configuration for a difference that is not significant.</p>
{combined}
{sections}
{meta}
<script>{_SCRIPT}</script>
</body></html>
"""


def write_outputs(
    analyses: Sequence[Analysis],
    metadata: Mapping[str, Any],
    *,
    json_path: str | None,
    report_path: str | None,
    say: Callable[[str], None],
) -> None:
    """Write the JSON (`to_json` for one dataset, `to_json_multi` for several) and the
    HTML report where asked, saying each path written."""
    from pathlib import Path

    if json_path:
        doc = (
            to_json(analyses[0], metadata)
            if len(analyses) == 1
            else to_json_multi(analyses, metadata)
        )
        Path(json_path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        say(f"wrote {json_path}")
    if report_path:
        Path(report_path).write_text(render_html(analyses, metadata), encoding="utf-8")
        say(f"wrote {report_path}")
