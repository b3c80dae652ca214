"""`shortlist eval` end to end on the real Lee collection (hashing encoder, so it stays fast)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from clirun import run_cli
from optional import skip_without_extra
from shortlist.evaluate.harness import EvalResult, recommend


@pytest.fixture(scope="module")
def lee_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skip_without_extra("datasets")
    from shortlist_datasets import build_dataset

    out = tmp_path_factory.mktemp("lee") / "lee"
    build_dataset("lee", out)
    return out


def _eval(lee_dir: Path, tmp: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli(
        "eval",
        str(lee_dir),
        "--model",
        "hashing:64",
        "--cache-dir",
        str(tmp / "cache"),
        "--pipeline",
        "bm25",
        "--pipeline",
        "hybrid",
        "--pipeline",
        "rerank=bm25+bi-encoder:hashing:64",
        "-k",
        "10,30",
        "--max-queries",
        "12",
        *extra,
    )


def test_eval_table_json_report_and_cache(lee_dir: Path, tmp_path: Path) -> None:
    report, js = tmp_path / "r.html", tmp_path / "r.json"
    r = _eval(lee_dir, tmp_path, "--report", str(report), "--json", str(js), "--budget-ms", "1000")
    assert r.exit_code == 0, r.stderr
    assert "lee: 12 queries" in r.stdout
    for name in ("bm25", "hybrid", "rerank"):
        assert name in r.stdout
    assert "recommendation" in r.stdout
    data = json.loads(js.read_text())
    assert len(data["summary"]) == 6
    row = data["summary"][0]
    for key in ("ndcg@10", "mrr@10", "recall@k", "total_p50_ms", "total_p95_ms", "total_p99_ms"):
        assert key in row
    assert 0.0 <= row["ndcg@10"] <= 1.0
    assert {(c["name"], c["k"]) for c in data["comparisons"]} == {
        ("hybrid", 10),
        ("hybrid", 30),
        ("rerank", 10),
        ("rerank", 30),
    }
    assert data["metric_cutoffs"]["recall@k"] == {"10": "recall@10", "30": "recall@30"}
    # recall@k at k=10 can never beat k=30 for the same first stage
    by = {(s["pipeline"], s["k"]): s for s in data["summary"]}
    assert by[("bm25", 10)]["recall@k"] <= by[("bm25", 30)]["recall@k"]
    # reranking never changes the candidate set, so recall@k matches its first stage
    assert by[("rerank", 30)]["recall@k"] == pytest.approx(by[("bm25", 30)]["recall@k"])
    # only the evaluated queries are scored: --max-queries 12 means 12 values per metric
    assert all(len(v["metrics"]["ndcg@10"]) == 12 for v in data["per_query"].values())
    assert all(c["wins"] + c["losses"] + c["ties"] == 12 for c in data["comparisons"])
    html = report.read_text()
    assert html.count('<svg class="plot"') == 2 and "Where reranking hurt" in html
    assert "Where reranking helped" in html and 'class="rec"' in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert data["metadata"]["command"].startswith("shortlist eval ")
    assert data["metadata"]["cpu"]["model"]

    # a second run reuses every saved configuration
    js2 = tmp_path / "r2.json"
    r2 = _eval(lee_dir, tmp_path, "--json", str(js2))
    assert r2.exit_code == 0
    assert r2.stderr.count("reused saved run") == 6
    # the reranker was never loaded, yet the saved runs name its model
    models = json.loads(js2.read_text())["metadata"]["models"]
    assert "bi-encoder" in json.dumps(models["reranker bi-encoder:hashing:64"])
    assert all(row["reused_saved_run"] for row in json.loads(js2.read_text())["summary"])
    assert "pass --remeasure to time them again" in r2.stderr
    # --remeasure executes and times them again, and saves them anew
    r3 = _eval(lee_dir, tmp_path, "--remeasure")
    assert r3.exit_code == 0, r3.stderr
    assert "reused saved run" not in r3.stderr
    assert r3.stderr.count("re-measured saved run") == 6
    # another query set is another run: nothing is reused
    r4 = _eval(lee_dir, tmp_path, "--max-queries", "11")
    assert r4.exit_code == 0 and "reused saved run" not in r4.stderr
    runs = list((tmp_path / "cache" / "runs").glob("*.trec"))
    assert len(runs) == 12  # 6 configurations x 2 query sets, each under its own key
    first = runs[0].read_text().splitlines()[0].split()
    assert len(first) == 6 and first[1] == "Q0"


def test_bad_input_messages(lee_dir: Path, tmp_path: Path) -> None:
    r = run_cli("eval", str(lee_dir), "--pipeline", "bm25+nonsense:x", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "nonsense" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("eval", str(lee_dir), "--pipeline", "sparse", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "bm25, dense, hybrid" in r.stderr
    broken = tmp_path / "broken"
    shutil.copytree(lee_dir, broken)
    (broken / "queries.jsonl").unlink()
    r = run_cli("eval", str(broken), "--pipeline", "bm25", "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "queries.jsonl" in r.stderr
    r = run_cli(
        "eval",
        str(lee_dir),
        "--pipeline",
        "bm25",
        "--max-queries",
        "0",
        "--cache-dir",
        str(tmp_path),
    )
    assert r.exit_code == 2 and "nothing to evaluate" in r.stderr


def _config(name: str, k: int, values: list[float], ms: float):  # type: ignore[no-untyped-def]
    from shortlist.evaluate.harness import ConfigResult

    qids = [f"q{i:02d}" for i in range(len(values))]
    return ConfigResult(
        name,
        name,
        k,
        {"ndcg@10": dict(zip(qids, values, strict=True))},
        {"total": {q: ms for q in qids}},
        None,
        {},
        {},
    )


def _spread(base: float, n: int = 30) -> list[float]:
    """n per-query values around `base`, alternating +-0.1 so that differences between
    two such lists are constant and a paired test finds them significant."""
    return [base + (0.1 if i % 2 else -0.1) for i in range(n)]


def test_recommend_respects_budget() -> None:
    res = EvalResult(
        "d",
        30,
        ("ndcg@10",),
        "ndcg@10",
        [
            _config("fast", 10, _spread(0.3), 5),
            _config("mid", 10, _spread(0.5), 50),
            _config("slow", 10, _spread(0.6), 500),
            _config("dominated", 10, _spread(0.4), 80),
        ],
    )
    rec = recommend(res, 100)
    assert (rec.name, rec.k) == ("mid", 10)
    assert "slow" in rec.reason and "500" in rec.reason and "significantly better" in rec.reason
    assert [p[0] for p in rec.frontier] == ["fast", "mid", "slow"]
    assert recommend(res, 1).name is None
    # without a budget, the significantly best one wins, and the rule is stated
    free = recommend(res)
    assert free.name == "slow" and free.budget_ms is None
    assert "Holm" in free.rule and "never preferred" in free.rule


def test_recommend_never_prefers_an_insignificant_improvement() -> None:
    """A slower configuration with a higher mean whose difference is noise (here, one
    query of 30 better: p = 1 after correction) loses to the faster one."""
    noisy = _spread(0.5)
    noisy[0] += 0.05
    res = EvalResult(
        "d",
        30,
        ("ndcg@10",),
        "ndcg@10",
        [_config("fast", 20, _spread(0.5), 5), _config("slower", 20, noisy, 900)],
    )
    rec = recommend(res)
    assert (rec.name, rec.k) == ("fast", 20)
    assert "slower at k=20 has a higher mean" in rec.reason and "not significant" in rec.reason


class _Costly:
    """A fake hosted reranker: reverses the order and bills one search unit per query."""

    name = "cohere:fake"

    def rerank(self, query, documents, top_n=None):  # type: ignore[no-untyped-def]
        from shortlist.rerank.base import build_ranking

        n = len(documents)
        return build_ranking(query, documents, list(range(n)), [i / n for i in range(n)], top_n)

    def cost_units(self, query, documents):  # type: ignore[no-untyped-def]
        from shortlist.rerank.api.base import CostEstimate

        return CostEstimate(requests=1, search_units=1, tokens=0)


class _Interrupting(_Costly):
    def rerank(self, query, documents, top_n=None):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt


def _harness(tmp_path: Path, lee_dir: Path, loader):  # type: ignore[no-untyped-def]
    from shortlist.evaluate.beir import load_beir
    from shortlist.evaluate.harness import Harness
    from shortlist.store.index import Index

    ds = load_beir(lee_dir)
    queries = dict(list(sorted(ds.queries.items()))[:5])
    idx_path = tmp_path / "idx"
    index = (
        Index.open(idx_path)
        if idx_path.exists()
        else Index.create(idx_path, ds.corpus, dense=False)
    )
    return Harness(
        index,
        queries,
        ds.qrels,
        ignore_identical_ids=True,
        cache_dir=tmp_path / "c",
        dataset_fingerprint="fp",
        prices={"cohere": {"searches": 0.002}},
        load_reranker=loader,
    )


def test_interrupt_loses_only_the_unfinished_configuration(lee_dir: Path, tmp_path: Path) -> None:
    from shortlist.evaluate.harness import run_harness

    h = _harness(tmp_path, lee_dir, lambda spec: _Interrupting())
    with pytest.raises(KeyboardInterrupt):
        run_harness(
            h,
            [("bm25", "bm25"), ("api", "bm25+cohere:fake")],
            [5, 10],
            dataset="lee",
            primary="ndcg@10",
        )
    saved = sorted(p.name.split(".")[0] for p in (tmp_path / "c" / "runs").glob("*.trec"))
    assert saved == ["bm25@k10", "bm25@k5"]
    assert not list((tmp_path / "c" / "runs").glob("*.tmp"))

    messages: list[str] = []
    h2 = _harness(tmp_path, lee_dir, lambda spec: _Costly())
    h2._progress = messages.append
    result = run_harness(
        h2,
        [("bm25", "bm25"), ("api", "bm25+cohere:fake")],
        [5, 10],
        dataset="lee",
        primary="ndcg@10",
    )
    assert sum("reused saved run" in m for m in messages) == 2
    api = [c for c in result.configs if c.name == "api"]
    # one search unit per query at $0.002 -> $2.00 per 1,000 queries
    assert [c.cost_per_1k for c in api] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert all(c.cost_per_1k is None for c in result.configs if c.name == "bm25")


def test_each_first_stage_is_timed_with_a_cold_query_memo(tmp_path: Path, lee_dir: Path) -> None:
    """A dense first stage run after another must embed its queries again: the harness
    empties the index's query memo before timing each first stage."""
    from shortlist.evaluate.beir import load_beir
    from shortlist.evaluate.harness import Harness
    from shortlist.store.index import Index

    ds = load_beir(lee_dir)
    queries = dict(list(sorted(ds.queries.items()))[:4])
    index = Index.create(tmp_path / "idx", ds.corpus, encoder="hashing:32")
    embedded: list[str] = []
    real_encode = index.encoder.encode

    def counting_encode(texts, **kwargs):  # type: ignore[no-untyped-def]
        embedded.extend(texts)
        return real_encode(texts, **kwargs)

    index.encoder.encode = counting_encode  # type: ignore[method-assign]
    harness = Harness(
        index, queries, ds.qrels, ignore_identical_ids=True, cache_dir=tmp_path / "c",
        dataset_fingerprint="fp",
    )  # fmt: skip
    harness.run_config("dense", "dense", 10, 10)
    after_dense = len(embedded)
    harness.run_config("hybrid", "hybrid", 10, 10)
    again = embedded[after_dense:]
    assert all(q in again for q in queries.values())  # paid again, not read from the memo
