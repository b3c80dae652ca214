"""`shortlist eval` with first-stage parameters, sweeps and pipeline files; the sweep plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import run_cli
from shortlist.cli.eval_cmd import expand_sweep
from shortlist.evaluate.harness import ConfigResult, EvalResult, find_sweeps
from shortlist.pipeline_file import PipelineConfig
from shortlist.retrieve.hybrid import HybridConfig
from tiny_beir import write_tiny_beir


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("sweep") / "data")


def test_expand_sweep() -> None:
    assert expand_sweep("h", "hybrid?w=0.3") == [("h", "hybrid?w=0.3")]
    assert expand_sweep("h", "hybrid?fusion=zscore&w=0.1,0.9+bi-encoder") == [
        ("h w=0.1", "hybrid?fusion=zscore&w=0.1+bi-encoder"),
        ("h w=0.9", "hybrid?fusion=zscore&w=0.9+bi-encoder"),
    ]
    both = expand_sweep("b", "bm25?k1=1,2&b=0.4,0.8")
    assert [n for n, _ in both] == ["b k1=1 b=0.4", "b k1=1 b=0.8", "b k1=2 b=0.4", "b k1=2 b=0.8"]


def _cfg(name: str, spec: str, k: int, value: float) -> ConfigResult:
    return ConfigResult(name, spec, k, {"ndcg@10": {"q": value}}, {}, None, {}, {})


def test_find_sweeps_groups_one_parameter() -> None:
    configs = [
        _cfg("a", "hybrid?fusion=zscore&w=0.1", 10, 0.2),
        _cfg("b", "hybrid?fusion=zscore&w=0.5", 10, 0.4),
        _cfg("c", "hybrid?fusion=zscore&w=0.9", 10, 0.3),
        _cfg("d", "hybrid?fusion=rrf&w=0.5", 10, 0.5),  # another fusion: not the same sweep
        _cfg("e", "bm25", 10, 0.1),
    ]
    result = EvalResult("d", 1, ("ndcg@10",), "ndcg@10", configs)
    (sweep,) = find_sweeps(result)
    assert (sweep.param, sweep.base) == ("w", "hybrid?fusion=zscore")
    assert sweep.points == {10: ((0.1, 0.2), (0.5, 0.4), (0.9, 0.3))}
    assert find_sweeps(EvalResult("d", 1, ("ndcg@10",), "ndcg@10", configs[3:])) == []


def test_eval_sweep_report_has_the_plot(dataset: Path, tmp_path: Path) -> None:
    report, js = tmp_path / "r.html", tmp_path / "r.json"
    r = run_cli(
        "eval", str(dataset), "--model", "hashing:32", "--cache-dir", str(tmp_path / "c"),
        "--pipeline", "bm25", "--pipeline", "h=hybrid?fusion=zscore&w=0.2,0.5,0.8",
        "-k", "10,20", "--report", str(report), "--json", str(js),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    for name in ("h w=0.2", "h w=0.5", "h w=0.8"):
        assert name in r.stdout
    html = report.read_text()
    assert "First-stage parameter sweeps" in html
    assert html.count('<svg class="plot sweep" data-param="w"') == 1
    assert html.count("<polyline") >= 2 + 2  # the quality/latency lines and one per k
    sweeps = json.loads(js.read_text())["sweeps"]
    assert [(s["param"], s["base"], sorted(s["points"])) for s in sweeps] == [
        ("w", "hybrid?fusion=zscore", ["10", "20"])
    ]


def test_eval_runs_a_pipeline_file(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "tuned.toml"
    PipelineConfig("hybrid", 15, 10, None, None, HybridConfig("dbsf", 100, 60, (0.4, 0.6))).save(
        path
    )
    r = run_cli(
        "eval", str(dataset), "--model", "hashing:32", "--cache-dir", str(tmp_path / "c"),
        "--pipeline", "bm25", "--pipeline-file", str(path), "-k", "10", "--json",
        str(tmp_path / "r.json"),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert {(row["pipeline"], row["k"]) for row in rows} == {
        ("bm25", 10), ("bm25", 15), ("tuned", 10), ("tuned", 15)
    }  # fmt: skip
    assert {row["spec"] for row in rows if row["pipeline"] == "tuned"} == {
        "hybrid?fusion=dbsf&w=0.4&rrf_k=60&depth=100"
    }
    r = run_cli("eval", str(dataset), "--cache-dir", str(tmp_path / "c"))
    assert r.exit_code == 2 and "--pipeline-file" in r.stderr
    r = run_cli("eval", str(dataset), "--pipeline", "hybrid?wx=1", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "valid: fusion, w, wd" in r.stderr


def test_eval_sweeps_chunking_with_one_index_each(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    js = tmp_path / "r.json"
    r = run_cli(
        "eval", str(dataset), "--model", "hashing:32", "--cache-dir", str(cache),
        "--pipeline", "bm25", "--pipeline", "c=bm25?chunk=6,12&overlap=2&unit=words",
        "-k", "10", "--json", str(js),
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    # The default index, plus one per chunking asked for, each named by its chunking.
    built = sorted(p.name for p in cache.iterdir() if p.name.startswith("index-"))
    assert len(built) == 3
    assert sum(name.endswith("-chunk-6-2-words") for name in built) == 1
    assert sum(name.endswith("-chunk-12-2-words") for name in built) == 1
    out = json.loads(js.read_text())
    names = [row["pipeline"] for row in out["summary"]]
    assert names == ["bm25", "c chunk=6", "c chunk=12"]  # the order asked for
    (sweep,) = out["sweeps"]
    assert (sweep["param"], sweep["base"]) == ("chunk", "bm25?overlap=2&unit=words")
    # A second run reuses every index and run: nothing is rebuilt.
    again = run_cli(
        "eval", str(dataset), "--model", "hashing:32", "--cache-dir", str(cache),
        "--pipeline", "bm25", "--pipeline", "c=bm25?chunk=6,12&overlap=2&unit=words",
        "-k", "10",
    )  # fmt: skip
    assert again.exit_code == 0, again.stderr
    assert "indexed" not in again.stderr and again.stderr.count("reusing index") == 3


def test_a_chunking_other_than_the_store_s_is_refused(tmp_path: Path) -> None:
    from shortlist.errors import SpecError
    from shortlist.retrieve.stages import first_stage, parse_first_stage
    from shortlist.store.index import Index
    from shortlist.types import Document

    index = Index.create(tmp_path / "i", [Document("a", "one two three")], encoder="hashing:8")
    spec = parse_first_stage("bm25?chunk=254&overlap=32&unit=tokens")
    assert str(spec) == "bm25?chunk=254&overlap=32&unit=tokens"
    assert first_stage(index, spec).run("one", k=1).ids  # the index's own chunking: fine
    with pytest.raises(SpecError, match=r"--chunk-size 128 --chunk-overlap 32"):
        first_stage(index, "dense?chunk=128")
    with pytest.raises(SpecError, match="give its size"):
        parse_first_stage("bm25?overlap=3")
    with pytest.raises(SpecError, match="unit"):
        parse_first_stage("bm25?chunk=10&unit=lines")
