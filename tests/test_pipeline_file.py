"""The pipeline file (shortlist.toml), first-stage spec parameters, and the same pipeline
run from the library, `shortlist search --pipeline-file` and `/v1/search`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from clirun import run_cli
from shortlist.errors import InvalidInputError, SpecError
from shortlist.pipeline import Pipeline, parse_pipeline
from shortlist.pipeline_file import PipelineConfig, TomlWriteError, dumps_toml
from shortlist.retrieve.hybrid import HybridConfig
from shortlist.retrieve.stages import (
    BM25Params,
    FirstStageSpec,
    HybridRetriever,
    first_stage,
    parse_first_stage,
)
from shortlist.store.index import Index
from shortlist.types import Document

TUNED = PipelineConfig(
    mode="hybrid",
    k=30,
    top_n=5,
    reranker="bi-encoder:hashing:32",
    bm25=BM25Params(1.5, 0.4),
    fusion=HybridConfig("zscore", 100, 60, (0.3, 0.7)),
    notes={"dataset": "lee", "out_of_sample": {"tuned": 0.5, "single": 0.48}},
)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    docs = [
        Document(
            f"d{i}", " ".join(words[j % len(words)] for j in range(i, i + 3 + i % 5)) * (1 + i % 3)
        )
        for i in range(30)
    ]
    return Index.create(tmp_path_factory.mktemp("pf") / "index", docs, encoder="hashing:32")


# ---- the file ------------------------------------------------------------------------------
def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "shortlist.toml"
    TUNED.save(path, header="written by a test\n\nsecond line")
    text = path.read_text()
    assert text.startswith("# written by a test\n#\n# second line\n")
    loaded = PipelineConfig.load(path)
    assert loaded == TUNED and loaded.notes == TUNED.notes
    assert tomllib.loads(text)["first_stage"]["fusion"]["weights"] == [0.3, 0.7]
    assert not [p for p in tmp_path.iterdir() if p.name != "shortlist.toml"]  # no temp left


def test_minimal_file_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('version = 1\n[first_stage]\nmode = "bm25"\n')
    config = PipelineConfig.load(path)
    assert (config.mode, config.k, config.top_n, config.reranker) == ("bm25", 50, 10, None)
    assert config.bm25 is None and config.fusion is None and config.spec == "bm25"
    PipelineConfig(mode="dense").save(path)
    assert PipelineConfig.load(path) == PipelineConfig(mode="dense")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('[first_stage]\nmode = "bm25"\n', ["version", "version = 1"]),
        ('version = 9\n[first_stage]\nmode = "bm25"\n', ["version", "upgrade"]),
        ("version = 1\n", ["first_stage", "mode"]),
        (
            'version = 1\n[first_stage]\nmode = "sparse"\n',
            ["first_stage.mode", "bm25, dense, hybrid"],
        ),
        ('version = 1\nkk = 3\n[first_stage]\nmode = "bm25"\n', ["kk", "valid here", "top_n"]),
        ('version = 1\nk = "50"\n[first_stage]\nmode = "bm25"\n', ["k ", "integer"]),
        ('version = 1\ntop_n = 0\n[first_stage]\nmode = "bm25"\n', ["top_n", ">= 1"]),
        (
            'version = 1\n[first_stage]\nmode = "bm25"\n[first_stage.fusion]\nmethod = "rrf"\n',
            ["fusion", "hybrid"],
        ),
        (
            'version = 1\n[first_stage]\nmode = "hybrid"\n[first_stage.fusion]\nweights = [1]\n',
            ["first_stage.fusion.weights", "[0.3, 0.7]"],
        ),
        (
            'version = 1\n[first_stage]\nmode = "hybrid"\n[first_stage.fusion]\nmethod = "x"\n',
            ["first_stage.fusion.method", "dbsf", "rrf"],
        ),
        (
            'version = 1\n[first_stage]\nmode = "bm25"\n[first_stage.bm25]\nk1 = 1.2\n',
            ["first_stage.bm25", "k1 and b"],
        ),
        (
            'version = 1\n[first_stage]\nmode = "bm25"\n[first_stage.bm25]\nk1 = 1.2\nb = 2\n',
            ["first_stage.bm25", "[0, 1]"],
        ),
        (
            'version = 1\n[first_stage]\nmode = "dense"\n[first_stage.bm25]\nk1 = 1\nb = 0.5\n',
            ["first_stage.bm25", "dense"],
        ),
        ("version = [", ["not valid TOML"]),
    ],
)
def test_invalid_files_name_the_key_and_the_fix(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as info:
        PipelineConfig.load(path)
    for needle in needles:
        assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no pipeline file at .*shortlist tune"):
        PipelineConfig.load(tmp_path / "none.toml")


def test_toml_writer_reads_back_exactly() -> None:
    data = {
        "s": 'quote " back \\ tab \t nl \n del \x7f uni é 😀 ctl \x01',
        "i": -3,
        "f": [0.1, 1e-300, 2.5e17, -0.0],
        "t": True,
        "weird key": "x",
        "nested": {"a": 1, "deeper": {"b": "c"}},
    }
    assert tomllib.loads(dumps_toml(data)) == data
    with pytest.raises(TomlWriteError, match="finite"):
        dumps_toml({"x": float("nan")})
    with pytest.raises(TomlWriteError, match="cannot write"):
        dumps_toml({"x": None})


# ---- first-stage spec strings ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("bm25", FirstStageSpec("bm25")),
        ("bm25?k1=1.5&b=0.75", FirstStageSpec("bm25", bm25=BM25Params(1.5, 0.75))),
        (
            "hybrid?fusion=zscore&w=0.3",
            FirstStageSpec("hybrid", method="zscore", weights=(0.3, 0.7)),
        ),
        ("hybrid?wd=0.25", FirstStageSpec("hybrid", weights=(0.75, 0.25))),
        ("hybrid?w=0.9", FirstStageSpec("hybrid", weights=(0.9, 0.1))),
        ("hybrid?w=2&wd=1", FirstStageSpec("hybrid", weights=(2.0, 1.0))),
        ("hybrid?rrf_k=10&depth=200", FirstStageSpec("hybrid", rrf_k=10, depth=200)),
    ],
)
def test_parse_first_stage(spec: str, expected: FirstStageSpec) -> None:
    parsed = parse_first_stage(spec)
    assert parsed == expected
    assert parse_first_stage(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        ("bm25?w=0.3", ["'w'", "valid: k1, b"]),
        ("dense?k1=1", ["'k1'", "valid: chunk, overlap, unit"]),
        ("hybrid?alpha=1", ["'alpha'", "fusion, w, wd, wl, rrf_k, depth, k1, b, chunk"]),
        ("hybrid?wl=2", ["wl=2", "[0, 1]", "long"]),
        ("hybrid?w=abc", ["w='abc'", "number"]),
        ("hybrid?w=1.5", ["[0, 1]", "wd="]),
        ("hybrid?fusion=max", ["max", "dbsf", "rrf"]),
        ("hybrid?rrf_k=1.5", ["rrf_k", "integer"]),
        ("bm25?k1=1.2", ["k1 and b together"]),
        ("bm25?k1=-1&b=0.5", ["k1"]),
        ("bm25?k1", ["needs a value"]),
        ("sparse?k1=1", ["bm25, dense, hybrid"]),
    ],
)
def test_first_stage_spec_errors_name_valid_keys(spec: str, needles: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_first_stage(spec)
    for needle in needles:
        assert needle in str(info.value)


def test_pipeline_spec_with_parameters_and_reranker() -> None:
    p = parse_pipeline("hybrid?fusion=dbsf&w=0.4+cross-encoder:/m?backend=onnx")
    assert p.first_stage == "hybrid?fusion=dbsf&w=0.4" and p.mode == "hybrid"
    assert p.reranker == "cross-encoder:/m?backend=onnx"
    assert TUNED.spec == (
        "hybrid?fusion=zscore&w=0.3&rrf_k=60&depth=100&k1=1.5&b=0.4+bi-encoder:hashing:32"
    )
    with pytest.raises(SpecError, match="valid: k1, b"):
        parse_pipeline("bm25?z=1+bi-encoder")


def test_spec_overrides_only_the_named_fields(index: Index) -> None:
    stage = first_stage(index, "hybrid?fusion=minmax&w=0.2")
    assert isinstance(stage, HybridRetriever)
    assert stage.config == HybridConfig(
        "minmax", index.hybrid.depth, index.hybrid.rrf_k, (0.2, 0.8)
    )


# ---- BM25 k1/b at query time ---------------------------------------------------------------------
@pytest.mark.parametrize(("k1", "b"), [(0.9, 0.4), (2.0, 1.0), (0.0, 0.0)])
def test_query_time_bm25_params_equal_an_index_built_with_them(
    index: Index, tmp_path: Path, k1: float, b: float
) -> None:
    docs = [Document(p.doc_id, p.text) for p in index.passages_at(range(index.num_passages))]
    rebuilt = Index.create(tmp_path / "rebuilt", docs, dense=False, k1=k1, b=b)
    spec = f"bm25?k1={k1}&b={b}"
    for query in ("alpha beta", "gamma kappa kappa", "zeta"):
        got = first_stage(index, spec).run(query, k=12)
        want = rebuilt.search(query, k=12, mode="bm25")
        assert [(h.id, round(h.score, 5)) for h in got] == [(h.id, round(h.score, 5)) for h in want]
    default = first_stage(index, "bm25").run("alpha beta", k=12)
    assert [h.score for h in default] != [
        h.score for h in first_stage(index, spec).run("alpha beta", k=12)
    ]


def test_query_time_params_follow_writes(tmp_path: Path) -> None:
    docs = [Document("a", "alpha beta"), Document("b", "beta gamma")]
    small = Index.create(tmp_path / "small", docs, dense=False)
    first_stage(small, "bm25?k1=2&b=1").run("gamma", k=5)  # caches the rescored postings
    small.add([Document("c", "gamma gamma gamma")])
    small.delete(["a"])
    fresh = Index.create(
        tmp_path / "fresh", [docs[1], Document("c", "gamma gamma gamma")], dense=False, k1=2, b=1
    )
    got = first_stage(small, "bm25?k1=2&b=1").run("gamma beta", k=5)
    want = fresh.search("gamma beta", k=5, mode="bm25")
    assert [(h.doc_id, round(h.score, 5)) for h in got] == [
        (h.doc_id, round(h.score, 5)) for h in want
    ]


# ---- one pipeline: library, CLI, server ----
QUERIES = ("alpha gamma", "kappa lambda theta", "delta")


def _library(index: Index, config: PipelineConfig, query: str) -> list[tuple[str, float]]:
    ranking = Pipeline.from_config(config, index).run(query)
    return [(h.id, round(h.score, 5)) for h in ranking]


def test_from_config_builds_exactly_the_file(index: Index) -> None:
    pipeline = Pipeline.from_config(TUNED, index)
    assert (pipeline.k, pipeline.top_n) == (30, 5)
    stage = pipeline.first_stage
    assert isinstance(stage, HybridRetriever) and stage.config == TUNED.fusion
    manual = Pipeline.from_spec(TUNED.spec, index, k=30, top_n=5)
    for q in QUERIES:
        assert _library(index, TUNED, q) == [(h.id, round(h.score, 5)) for h in manual.run(q)]


def test_search_cli_runs_the_file(index: Index, tmp_path: Path) -> None:
    path = tmp_path / "shortlist.toml"
    TUNED.save(path)
    for q in QUERIES:
        r = run_cli("search", q, "--index", str(index.path), "--pipeline-file", str(path), "--json")
        assert r.exit_code == 0, r.stderr
        got = [(h["id"], round(h["score"], 5)) for h in json.loads(r.stdout)["results"]]
        assert got == _library(index, TUNED, q)
    r = run_cli("search", "x", "--index", str(index.path), "--pipeline-file", str(path), "-k", "5")
    assert r.exit_code == 2 and "-k" in r.stderr and "--pipeline-file" in r.stderr


def test_server_runs_the_file(index: Index) -> None:
    pytest.importorskip("fastapi")
    import httpx

    from serve_fakes import running
    from shortlist.rerank.registry import load_reranker
    from shortlist.serve.app import ServeConfig, create_app

    assert TUNED.reranker is not None
    rerankers = {TUNED.reranker: load_reranker(TUNED.reranker)}
    app = create_app(ServeConfig(), rerankers, index, TUNED)
    with running(app) as url:
        for q in QUERIES:
            body = httpx.post(f"{url}/v1/search", json={"query": q}).json()
            got = [(h["id"], round(h["score"], 5)) for h in body["results"]]
            assert got == _library(index, TUNED, q)
        # a request may still ask for something else explicitly
        body = httpx.post(f"{url}/v1/search", json={"query": "delta", "rerank": False}).json()
        assert len(body["results"]) == 5 and "rerank" not in body["timings_ms"]
    with pytest.raises(InvalidInputError, match="not among the served"):
        create_app(ServeConfig(), {}, index, TUNED)
    with pytest.raises(InvalidInputError, match="--max-docs"):
        create_app(ServeConfig(max_documents=20), rerankers, index, TUNED)


def test_serve_cli_needs_an_index_for_the_file(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    path = tmp_path / "p.toml"
    PipelineConfig(mode="bm25").save(path)
    r = run_cli("serve", "--pipeline-file", str(path))
    assert r.exit_code == 2 and "--index" in r.stderr


def test_the_readme_example_loads(tmp_path: Path) -> None:
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", readme.split("### Pipeline file", 1)[1], re.S)
    assert block is not None
    path = tmp_path / "shortlist.toml"
    path.write_text(block.group(1))
    config = PipelineConfig.load(path)
    assert config.fusion == HybridConfig("zscore", 100, 60, (0.3, 0.7))
    assert config.spec == "hybrid?fusion=zscore&w=0.3&rrf_k=60&depth=100&k1=1.2&b=0.75"


def test_serve_cli_serves_the_file(
    index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shortlist serve --index DIR --pipeline-file FILE` answers /v1/search as the library."""
    pytest.importorskip("fastapi")
    import httpx
    import uvicorn

    from serve_fakes import running

    path = tmp_path / "shortlist.toml"
    TUNED.save(path)
    apps = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_kw: apps.append(app))
    r = run_cli("serve", "--index", str(index.path), "--pipeline-file", str(path))
    assert r.exit_code == 0, r.stderr
    with running(apps[0]) as url:
        for q in QUERIES:
            body = httpx.post(f"{url}/v1/search", json={"query": q}).json()
            got = [(h["id"], round(h["score"], 5)) for h in body["results"]]
            assert got == _library(index, TUNED, q)


def test_rescored_bm25_variants_are_bounded(tmp_path: Path) -> None:
    small = Index.create(tmp_path / "s", [Document("a", "alpha beta")], dense=False)
    for i in range(20):
        first_stage(small, f"bm25?k1={1 + i / 10}&b=0.5").run("alpha", k=1)
    assert len(small._bm25_variants) == 16


def test_long_query_weights_in_specs_and_files(tmp_path: Path) -> None:
    from shortlist.retrieve.hybrid import DEFAULT_HYBRID
    from shortlist.retrieve.stages import parse_first_stage

    # Weights without `wl` are fixed weights; with `wl` they move with query length.
    fixed = parse_first_stage("hybrid?w=0.3").hybrid_config(DEFAULT_HYBRID)
    assert fixed.long_weights is None
    adaptive = parse_first_stage("hybrid?w=0.3&wl=0.8")
    assert str(adaptive) == "hybrid?w=0.3&wl=0.8"
    assert adaptive.hybrid_config(DEFAULT_HYBRID).long_weights == (0.8, 0.2)
    # Only the method: the store's weights, long-query weights included.
    assert parse_first_stage("hybrid?fusion=zscore").hybrid_config(DEFAULT_HYBRID).long_weights
    # The pipeline file keeps them.
    path = tmp_path / "p.toml"
    PipelineConfig("hybrid", 20, 5, None, None, DEFAULT_HYBRID).save(path)
    loaded = PipelineConfig.load(path)
    assert loaded.fusion == DEFAULT_HYBRID
    assert loaded.first_stage_spec().hybrid_config(DEFAULT_HYBRID) == DEFAULT_HYBRID
    text = path.read_text()
    assert "long_query_weights" in text and "long_query_words" not in text
    path.write_text(text.replace("long_query_weights = [0.9, 0.1]", 'long_query_weights = "x"'))
    with pytest.raises(InvalidInputError, match="long_query_weights"):
        PipelineConfig.load(path)
