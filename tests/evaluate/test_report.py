"""The evaluation report's parts: ticks, label placement, text cuts, tables in three
formats, the JSON schema, run metadata, and `shortlist eval` over several datasets."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path

import pytest

from clirun import run_cli
from shortlist.evaluate.harness import Analysis, ConfigResult, EvalResult, analyse, metric_at
from shortlist.evaluate.metadata import cpu_info, run_metadata
from shortlist.evaluate.plots import (
    Box,
    Point,
    log_ticks,
    nice_ticks,
    place_label,
    quality_latency_svg,
    text_box,
)
from shortlist.evaluate.report import format_combined, format_table, shorten, to_json
from tiny_beir import write_tiny_beir


# ---- ticks -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (0.13, 0.47, [0.1, 0.2, 0.3, 0.4, 0.5]),
        (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-0.37, 0.37, [-0.4, -0.2, 0.0, 0.2, 0.4]),
        (3, 97, [0, 20, 40, 60, 80, 100]),
    ],
)
def test_nice_ticks_are_round_and_cover_the_range(
    lo: float, hi: float, expected: list[float]
) -> None:
    ticks, new_lo, new_hi = nice_ticks(lo, hi)
    assert ticks == pytest.approx(expected)
    assert new_lo <= lo and new_hi >= hi
    assert all(repr(t) == repr(round(t, 6)) for t in ticks)  # no 0.30000000000000004


def test_nice_ticks_widen_a_zero_range() -> None:
    ticks, lo, hi = nice_ticks(0.5, 0.5)
    assert lo < 0.5 < hi and len(ticks) >= 2


def test_log_ticks_are_one_two_five_per_decade() -> None:
    ticks, lo, hi = log_ticks(4.2, 1900)
    assert (lo, hi) == (2, 2000)
    assert ticks == [2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]
    wide, lo, hi = log_ticks(0.3, 25000)  # more than three decades: powers of ten only
    assert wide == [0.1, 1, 10, 100, 1000, 10000, 100000]


# ---- labels --------------------------------------------------------------------------
def _label_boxes(svg: str) -> list[Box]:
    boxes = []
    for m in re.finditer(
        r'<text class="point-label" x="([\d.]+)" y="([\d.]+)" font-size="9" fill="[^"]+" '
        r'text-anchor="(\w+)">([^<]+)</text>',
        svg,
    ):
        boxes.append(text_box(float(m[1]), float(m[2]), m[4], 9, m[3]))
    return boxes


def test_labels_of_crowded_points_do_not_overlap() -> None:
    """Five pipelines at three K, all within a few pixels (bm25 at k=20 and k=50 on the
    same spot): every label is placed, inside the plot, and clear of every other."""
    points = [
        Point(f"pipe{i}", k, 10.0 + i * 0.2 + j * 0.4, 0.40 + 0.002 * i, 0.38, 0.42)
        for i in range(5)
        for j, k in enumerate((20, 50, 100))
    ]
    points.append(Point("bm25", 20, 3.0, 0.3, 0.28, 0.32))
    points.append(Point("bm25", 50, 3.0, 0.3, 0.28, 0.32))
    svg = quality_latency_svg(points, "ndcg@10")
    boxes = _label_boxes(svg)
    assert ">k=20,50</text>" in svg  # coincident points of one line share a label
    assert len(boxes) == 5 * 3 + 1
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    assert all(b.x0 >= 62 and b.x1 <= 720 - 180 for b in boxes)


def test_place_label_avoids_obstacles_and_stays_in_the_area() -> None:
    area = Box(0, 0, 200, 100)
    taken = [text_box(106, 53, "k=20", 9)]
    label = place_label(100, 50, "k=50", 9, area, taken)
    assert not label.box.overlaps(taken[0]) and label.box.inside(area)
    corner = place_label(198, 2, "k=100", 9, area, [])
    assert corner.box.inside(area)


# ---- text ----------------------------------------------------------------------------
def test_shorten_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    text = "Hunan province remained on high alert last night as thunderstorms approached"
    out = shorten(text, 40)
    assert out == "Hunan province remained on high alert…"
    assert len(out) <= 40 and text.startswith(out[:-1])
    assert shorten("short query", 40) == "short query"
    assert shorten("x" * 50, 10) == "x" * 9 + "…"


# ---- analysis fixtures ---------------------------------------------------------------
def _config(name: str, k: int, values: list[float], ms: float, spec: str = "") -> ConfigResult:
    qids = [f"q{i:02d}" for i in range(len(values))]
    return ConfigResult(
        name,
        spec or name,
        k,
        {"ndcg@10": dict(zip(qids, values, strict=True))},
        {"total": {q: ms for q in qids}},
        None,
        {},
        {},
    )


def _analysis(dataset: str = "tiny_set", shift: float = 0.0) -> Analysis:
    base = [0.2 + (0.1 if i % 2 else -0.1) + shift for i in range(24)]
    result = EvalResult(
        dataset,
        24,
        ("ndcg@10",),
        "ndcg@10",
        [
            _config("bm25", 20, base, 2.0),
            _config("bm25", 50, base, 2.0),
            _config("bm25+ce", 20, [v + 0.3 for v in base], 80.0, "bm25+bi-encoder"),
        ],
    )
    return analyse(result, {f"q{i:02d}": "q" for i in range(24)}, {}, budget_ms=None)


def test_pairwise_letters_mark_significant_wins() -> None:
    table = format_table(_analysis(), "text")
    rows = {line.split()[0]: line for line in table.splitlines()[3:6]}
    assert rows["c"].rstrip().endswith("ab")  # bm25+ce beats both bm25 rows
    assert not rows["a"].rstrip().endswith(("b", "c"))


def test_markdown_and_latex_tables() -> None:
    md = format_table(_analysis(), "markdown")
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| id"))
    rule = lines[lines.index(header) + 1]
    assert header.count("|") == rule.count("|")
    assert "<sup>ab</sup>" in md and "tiny_set" in md
    tex = format_table(_analysis(), "latex")
    assert "\\toprule" in tex and "\\bottomrule" in tex and "$^{ab}$" in tex
    assert "tiny\\_set" in tex and "tiny_set" not in tex.replace("tiny\\_set", "")
    assert "\\textbf{0.5000}" in tex  # best mean in bold
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert len({line.count("&") for line in body}) == 1  # every row has every column
    with pytest.raises(ValueError, match="markdown"):
        format_table(_analysis(), "csv")


def test_combined_table_averages_over_datasets() -> None:
    analyses = [_analysis("one"), _analysis("two", shift=0.1)]
    text = format_combined(analyses)
    row = next(line for line in text.splitlines() if line.startswith("bm25+ce"))
    cells = row.split()
    assert cells[2:5] == ["0.5000", "0.6000", "0.5500"]
    md = format_combined(analyses, "markdown")
    assert "| pipeline | k | one | two | average | mean p95 ms |" in md


def test_json_keeps_every_old_field_and_adds_new_ones() -> None:
    doc = to_json(_analysis(), {"date": "2026-11-30T00:00:00+00:00"})
    old = {
        "dataset",
        "n_queries",
        "metrics",
        "primary",
        "summary",
        "comparisons",
        "where_reranking_hurts",
        "recommendation",
        "per_query",
        "sweeps",
        "notes",
    }
    assert old <= set(doc)
    assert {"schema_version", "pairwise", "where_reranking_helps", "metadata"} <= set(doc)
    assert {"pipeline", "k", "reason", "frontier"} <= set(doc["recommendation"])
    assert {"rule", "budget_ms", "alpha"} <= set(doc["recommendation"])
    assert len(doc["pairwise"]) == 3  # every pair of three configurations
    assert [r["id"] for r in doc["summary"]] == ["a", "b", "c"]
    json.dumps(doc)  # serialisable as it is


def test_recall_at_k_names_the_configurations_depth() -> None:
    assert metric_at("recall@k", 20) == "recall@20"
    assert metric_at("recall@K", 50) == "recall@50"
    assert metric_at("recall@100", 20) == "recall@100"


# ---- metadata ------------------------------------------------------------------------
def test_cpu_info_reads_model_and_simd_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx avx2 "
        "avx512f avx512_vnni sha_ni\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14\n"
    )
    info = cpu_info(cpuinfo)
    assert info["model"] == "AMD EPYC 9R14"
    assert info["flags"] == ["sse4_2", "avx", "avx2", "avx512f", "avx512_vnni"]
    assert cpu_info(tmp_path / "missing")["flags"] == []


def test_run_metadata_holds_command_models_and_version() -> None:
    from shortlist import __version__

    meta = run_metadata(
        ["shortlist", "eval", "data/my set"],
        {"reranker x": {"weights_sha256": "ab12"}},
        date="2026-11-30T08:00:00+00:00",
    )
    assert meta["command"] == "shortlist eval 'data/my set'"
    assert meta["shortlist_version"] == __version__
    assert meta["models"]["reranker x"]["weights_sha256"] == "ab12"
    assert "flags" in meta["cpu"] and meta["date"].startswith("2026-11-30")


# ---- the command over several datasets -----------------------------------------------
def _two_sets(tmp_path: Path) -> tuple[Path, Path]:
    return write_tiny_beir(tmp_path / "alpha"), write_tiny_beir(tmp_path / "beta")


def _multi(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    a, b = _two_sets(tmp_path)
    return run_cli(
        "eval",
        str(a),
        str(b),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--pipeline",
        "bm25",
        "--pipeline",
        "rr=bm25+bi-encoder:hashing:32",
        "-k",
        "3,6",
        *extra,
    )


def test_eval_over_several_datasets_prints_a_combined_table(tmp_path: Path) -> None:
    js, report = tmp_path / "out.json", tmp_path / "out.html"
    r = _multi(tmp_path, "--json", str(js), "--report", str(report))
    assert r.exit_code == 0, r.stderr
    assert "alpha: 12 queries" in r.stdout and "beta: 12 queries" in r.stdout
    assert "ndcg@10 over 2 datasets" in r.stdout
    combined = r.stdout.split("ndcg@10 over 2 datasets")[1].splitlines()
    assert combined[1].split() == ["pipeline", "k", "alpha", "beta", "average", "mean", "p95", "ms"]
    assert r.stdout.count("recommendation for ") == 2
    doc = json.loads(js.read_text())
    assert [d["dataset"] for d in doc["datasets"]] == ["alpha", "beta"]
    assert len(doc["combined"]["rows"]) == 4
    row = doc["combined"]["rows"][0]
    assert math.isclose(row["average"], sum(row["scores"].values()) / 2)
    assert doc["metadata"]["command"].startswith("shortlist eval ")
    assert "--pipeline rr=bm25+bi-encoder:hashing:32" in doc["metadata"]["command"]
    assert any(k.startswith("reranker ") for k in doc["metadata"]["models"])
    page = report.read_text()
    assert 'id="combined"' in page and page.count('<section class="dataset"') == 2


@pytest.mark.parametrize(
    ("fmt", "marker", "tables"), [("markdown", "|---|", 3), ("latex", "\\toprule", 3)]
)
def test_eval_format_option(tmp_path: Path, fmt: str, marker: str, tables: int) -> None:
    r = _multi(tmp_path, "--format", fmt)
    assert r.exit_code == 0, r.stderr
    # one table per dataset and the combined one; nothing else on stdout
    assert r.stdout.count(marker) == tables and "recommendation for" not in r.stdout


def test_duplicate_dataset_names_are_refused(tmp_path: Path) -> None:
    a = write_tiny_beir(tmp_path / "x" / "same")
    b = write_tiny_beir(tmp_path / "y" / "same")
    r = run_cli("eval", str(a), str(b), "--pipeline", "bm25", "--cache-dir", str(tmp_path / "c"))
    assert r.exit_code == 2 and "dataset folder names must be unique" in r.stderr


def test_identical_configurations_are_one_system_in_the_correction() -> None:
    """bm25 at k=20 and k=50 score the same on every query: their pair is p = 1 untested,
    and the correction counts one family member, not two, for bm25 against the other."""
    from shortlist.evaluate.harness import pairwise_tests

    base = [0.2 + (0.1 if i % 2 else -0.1) for i in range(24)]
    other = [v + (0.05 if i < 6 else 0.0) for i, v in enumerate(base)]
    result = EvalResult(
        "d",
        24,
        ("ndcg@10",),
        "ndcg@10",
        [_config("bm25", 20, base, 1), _config("bm25", 50, base, 1), _config("x", 20, other, 2)],
    )
    pairs = {(t.name_a, t.k_a, t.name_b, t.k_b): t for t in pairwise_tests(result, "ndcg@10")}
    same = pairs[("bm25", 20, "bm25", 50)]
    assert (same.delta, same.p_value, same.p_adjusted) == (0.0, 1.0, 1.0)
    a, b = pairs[("bm25", 20, "x", 20)], pairs[("bm25", 50, "x", 20)]
    assert a.p_value == b.p_value == a.p_adjusted  # one test in the family: no adjustment
    assert a.delta == pytest.approx(-0.05 * 6 / 24)
