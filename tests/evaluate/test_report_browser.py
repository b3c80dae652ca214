"""The HTML report in headless Chromium: it renders with no console message, its plots'
text boxes do not overlap (measured by the browser), and it is screenshotted.

`test_docs_sample_report` (slow) makes the committed sample, docs/eval-report.png and
docs/eval-report.html, from the real Lee and stdlib-docs collections:

    SHORTLIST_EVAL_DATA=/work/data HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 \\
        python -m pytest tests/evaluate/test_report_browser.py -m slow
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clirun import run_cli
from report_browser import check_page, chromium_or_skip
from shortlist.evaluate.report import _SCRIPT
from tiny_beir import write_tiny_beir

DOCS = Path(__file__).resolve().parents[2] / "docs"

# Five pipelines whose latencies on a tiny collection all fall within a few milliseconds,
# with bm25 at both k on one spot: the crowded plot the labels must stay clear in.
CROWDED = (
    "bm25",
    "dense",
    "hybrid",
    "bm25+bi-encoder:hashing:32",
    "hybrid+bi-encoder:hashing:32",
)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = chromium_or_skip()
    a, b = write_tiny_beir(tmp_path / "alpha"), write_tiny_beir(tmp_path / "beta")
    report = tmp_path / "r.html"
    pipelines = [arg for spec in CROWDED for arg in ("--pipeline", spec)]
    r = run_cli(
        "eval", str(a), str(b), "--model", "hashing:32", "--cache-dir", str(tmp_path / "c"),
        *pipelines, "-k", "3,6", "--report", str(report),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    page = check_page(chromium, report, tmp_path / "profile", tmp_path / "r.png")
    assert page.plots == 4  # the page's script ran: quality/latency and histogram, twice
    assert page.dom.count("<circle") >= 2 * 10  # one point per (pipeline, k) per dataset
    assert page.dom.count('class="point-label"') >= 2 * 5
    assert not page.console, page.console
    assert page.overlaps == 0, page.overlapping
    assert (tmp_path / "r.png").stat().st_size > 10_000


@pytest.mark.browser
def test_the_browser_check_catches_console_errors_and_overlaps(tmp_path: Path) -> None:
    """The checks above can fail: a page that logs an error and draws two labels on top
    of each other is caught by both."""
    chromium = chromium_or_skip()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><svg class="plot" width="200" height="100">'
        '<text x="10" y="50">k=20</text><text x="14" y="52">k=50</text></svg>'
        f'<script>console.error("boom");</script><script>{_SCRIPT}</script></body></html>'
    )
    check = check_page(chromium, page, tmp_path / "profile")
    assert any("boom" in line for line in check.console)
    assert check.overlaps == 1 and "k=20 / k=50" in check.overlapping


@pytest.mark.slow
@pytest.mark.browser
def test_docs_sample_report(tmp_path: Path) -> None:
    """The committed sample: BM25, dense, hybrid and each with the default bi-encoder on
    the real Lee and stdlib-docs collections, with the offline default model."""
    data = os.environ.get("SHORTLIST_EVAL_DATA")
    if not data:
        pytest.skip("set SHORTLIST_EVAL_DATA to a folder holding lee/ and stdlib-docs/")
    chromium = chromium_or_skip()
    cache = Path(os.environ.get("SHORTLIST_EVAL_CACHE", tmp_path / "cache"))
    report, shot = tmp_path / "eval-report.html", tmp_path / "eval-report.png"
    r = run_cli(
        "eval", str(Path(data) / "lee"), str(Path(data) / "stdlib-docs"),
        "--pipeline", "bm25", "--pipeline", "dense", "--pipeline", "hybrid",
        "--pipeline", "bm25+bi-encoder", "--pipeline", "hybrid+bi-encoder",
        "-k", "20,50,100", "--cache-dir", str(cache), "--threads", "1",
        "--report", str(report), "--json", str(tmp_path / "eval-report.json"),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    page = check_page(chromium, report, tmp_path / "profile", shot, width=1400)
    assert not page.console, page.console
    assert page.overlaps == 0, page.overlapping
    DOCS.mkdir(exist_ok=True)
    shutil.copyfile(report, DOCS / "eval-report.html")
    shutil.copyfile(shot, DOCS / "eval-report.png")
    (DOCS / "eval-report.txt").write_text(r.stdout, encoding="utf-8")


@pytest.mark.browser
def test_tables_sort_by_the_clicked_column(tmp_path: Path) -> None:
    """Clicking a column title sorts numerically by the cells' values (10 after 9), and
    clicking again reverses the order."""
    chromium = chromium_or_skip()
    rows = "".join(
        f'<tr><td class="t" data-value="{n}">{n}</td><td data-value="{v}">{v}</td></tr>'
        for n, v in (("b", 10), ("a", 9), ("c", 0.5))
    )
    page = tmp_path / "sort.html"
    page.write_text(
        '<!DOCTYPE html><html><body><table class="sortable" id="t"><thead><tr><th>name</th>'
        f"<th>value</th></tr></thead><tbody>{rows}</tbody></table><script>{_SCRIPT}</script>"
        "<script>"
        'const th = document.querySelectorAll("#t th")[1]; const order = [];'
        "const names = () => Array.from(document.querySelectorAll('#t tbody tr'))"
        "  .map(r => r.cells[0].textContent).join('');"
        "th.click(); order.push(names()); th.click(); order.push(names());"
        'document.body.dataset.order = order.join(",");'
        "</script></body></html>"
    )
    check = check_page(chromium, page, tmp_path / "profile")
    assert 'data-order="cab,bac"' in check.dom
    assert not check.console, check.console
