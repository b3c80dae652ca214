"""`colbert:` late-interaction reranking against PyLate's own scores.

The checkpoints under tests/data/colbert/ are tiny random-weight ColBERTs that PyLate
built and saved, and `pylate_scores.json` holds PyLate's scores for them; both come from
tests/data/make_colbert_fixture.py (run in a side venv: PyLate pins other versions of
sentence-transformers and transformers than shortlist's).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reranker_contract import check_reranker_contract, check_served_matches_library
from shortlist.errors import InvalidInputError, ModelLoadError, SpecError
from shortlist.rerank.base import PairScorer, PlannedReranker, RerankOptions, rerank_planned
from shortlist.rerank.cache import CachedReranker, MemoryScoreCache
from shortlist.rerank.colbert import ColbertReranker, maxsim
from shortlist.rerank.registry import load_reranker, parse_spec

pytest.importorskip("torch")

DATA = Path(__file__).parent / "data" / "colbert"
RECORD: dict[str, Any] = json.loads((DATA / "pylate_scores.json").read_text())
VARIANTS = list(RECORD["variants"])
LONG = RECORD["long_document"]


@pytest.fixture(scope="module")
def models() -> dict[str, ColbertReranker]:
    return {name: ColbertReranker(str(DATA / name)) for name in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_scores_equal_pylate(variant: str, models: dict[str, ColbertReranker]) -> None:
    """Every (query, document) score equals PyLate's pairwise MaxSim within 1e-4; the long
    document's first window is exactly what PyLate scores (it truncates)."""
    want = np.asarray(RECORD["variants"][variant]["pairwise"])
    first = ColbertReranker(str(DATA / variant), aggregate="first")
    for q, query in enumerate(RECORD["queries"]):
        ranking = models[variant].rerank(query, RECORD["documents"])
        raw = {h.index: h.raw_score for h in ranking}
        short = [i for i in range(len(RECORD["documents"])) if i != LONG]
        assert np.allclose([raw[i] for i in short], want[q, short], atol=1e-4, rtol=0)
        truncated = first.score_pairs([(query, RECORD["documents"][LONG])])[0]
        assert truncated == pytest.approx(want[q, LONG], abs=1e-4)
        assert raw[LONG] >= truncated - 1e-6  # best window, never worse than the first


@pytest.mark.parametrize("variant", list(RECORD["config_variants"]))
def test_config_variants_equal_pylate(variant: str, tmp_path: Path) -> None:
    """Settings that live only in the sentence-transformers config (a default prompt)
    change the scores as they change PyLate's."""
    recorded = RECORD["config_variants"][variant]
    folder = _copy(recorded["base"], tmp_path)
    path = folder / "config_sentence_transformers.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **recorded["config"]}))
    model = ColbertReranker(str(folder))
    documents = RECORD["documents"][:LONG]
    got = [model.score_pairs([(q, d) for d in documents]) for q in RECORD["queries"]]
    want = np.asarray(recorded["pairwise"])[:, :LONG]
    assert np.allclose(got, want, atol=1e-4, rtol=0)
    base = np.asarray(RECORD["variants"][recorded["base"]]["pairwise"])[:, :LONG]
    assert not np.allclose(want, base, atol=1e-3), "the variant must change the scores"


@pytest.mark.parametrize("variant", VARIANTS)
def test_token_counts_equal_pylate(variant: str, models: dict[str, ColbertReranker]) -> None:
    """Query vectors (expansion included or not) and document vectors after the skiplist
    are the ones PyLate scores."""
    model = models[variant]
    recorded = RECORD["variants"][variant]
    queries = [model.encode_query(q) for q in RECORD["queries"]]
    assert [len(v) for v in model.query_embeddings(queries)] == recorded["query_tokens"]
    windows, owner = model.encode_documents(RECORD["documents"], max_tokens=None)
    firsts = [windows[owner.index(i)] for i in range(len(RECORD["documents"]))]
    assert [len(v) for v in model.document_embeddings(firsts)] == recorded["document_tokens"]


def test_settings_read_from_the_checkpoint(models: dict[str, ColbertReranker]) -> None:
    default, attend, plain, stanford = (
        models[n].settings for n in ("default", "attend", "plain", "stanford")
    )
    assert (stanford.query_prefix, stanford.document_prefix) == ("[unused0]", "[unused1]")
    assert (stanford.query_length, stanford.document_length) == (12, 20)
    assert (default.query_prefix, default.document_prefix) == ("[Q] ", "[D] ")
    assert (default.query_length, default.document_length) == (16, 24)
    assert default.do_query_expansion and not default.attend_to_expansion_tokens
    assert attend.attend_to_expansion_tokens
    assert plain.query_prefix == "" and not plain.do_query_expansion
    assert plain.skiplist_words == (",", "!")
    ids = models["default"].encode_query("river").ids
    assert len(ids) == 16 and ids[1] == models["default"]._tokenizer.convert_tokens_to_ids("[Q] ")


def test_rank_rerank_floor_is_not_copied(models: dict[str, ColbertReranker]) -> None:
    """PyLate's rank.rerank pads candidates with unmasked zero vectors; where that changed
    a score, ours is the pairwise one, and rank.rerank's is never lower."""
    for variant in VARIANTS:
        pairwise = np.asarray(RECORD["variants"][variant]["pairwise"])
        padded = np.asarray(RECORD["variants"][variant]["rank_rerank"])
        assert np.all(padded >= pairwise - 1e-5)
    assert np.any(
        np.abs(np.asarray(RECORD["variants"]["default"]["rank_rerank"])
               - np.asarray(RECORD["variants"]["default"]["pairwise"])) > 1e-3
    ), "the fixture should show the padding effect it documents"


def test_maxsim_by_hand() -> None:
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    d = np.array([[0.6, 0.8], [1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    assert maxsim(q, d) == pytest.approx(1.0 + 0.8)
    assert maxsim(q, d[:0]) == 0.0


def test_units_score_independently_of_batching(models: dict[str, ColbertReranker]) -> None:
    """A unit's score never depends on the other units or the batch budget (the server
    merges units of many requests)."""
    model = models["default"]
    docs = RECORD["documents"]
    plans = [model.plan(q, docs) for q in RECORD["queries"]]
    alone = [model.score_units(p.units) for p in plans]
    merged = model.score_units([u for p in plans for u in p.units])
    assert np.allclose(np.concatenate(alone), merged, atol=1e-6, rtol=0)
    small = ColbertReranker(str(DATA / "default"), batch_tokens=32)
    assert np.allclose(small.score_units(plans[0].units), alone[0], atol=1e-5, rtol=0)


def test_protocol_cache_and_calibration(models: dict[str, ColbertReranker]) -> None:
    model = models["default"]
    assert isinstance(model, PlannedReranker) and isinstance(model, PairScorer)
    query, docs = RECORD["queries"][0], RECORD["documents"]
    ranking = model.rerank(query, docs)
    for hit in ranking:
        assert hit.raw_score is not None
        assert hit.calibrated_score == pytest.approx((hit.raw_score / 16 + 1) / 2)
    cached = CachedReranker(model, MemoryScoreCache())
    first = cached.rerank(query, docs)
    again = cached.rerank(query, docs)
    assert [h.index for h in first] == [h.index for h in again] == [h.index for h in ranking]
    assert cached.cache.stats().hits == len(docs)
    pairs = [(query, d) for d in docs]
    assert np.allclose(model.score_pairs(pairs), [h.raw_score for h in sorted(
        ranking, key=lambda h: h.index or 0)], atol=1e-6)


def test_long_documents_are_windowed(models: dict[str, ColbertReranker]) -> None:
    model = models["default"]
    query, long_text = RECORD["queries"][0], RECORD["documents"][LONG]
    plan = model.plan(query, [long_text])
    assert len(plan.units) > 1 and all(len(u.document) <= 24 for u in plan.units)
    assert all(u.document[1] == plan.units[0].document[1] for u in plan.units)  # [D] each
    one = rerank_planned(model, query, [long_text], options=RerankOptions(max_chunks_per_doc=1))
    first = ColbertReranker(str(DATA / "default"), aggregate="first")
    assert one.hits[0].raw_score == pytest.approx(first.score_pairs([(query, long_text)])[0])
    cut = model.plan(query, [long_text], RerankOptions(max_tokens_per_doc=5))
    assert len(cut.units) == 1 and len(cut.units[0].document) == 5 + 3  # [CLS] [D] ... [SEP]


def test_contract_and_served_scores(models: dict[str, ColbertReranker]) -> None:
    pytest.importorskip("fastapi")
    reranker = load_reranker(f"colbert:{DATA / 'default'}")
    check_reranker_contract(reranker)
    for batching in (True, False):
        check_served_matches_library(reranker, batching=batching)


def test_served_under_its_name_on_v2(models: dict[str, ColbertReranker]) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from shortlist.serve.app import ServeConfig, create_app

    model = models["attend"]
    query, docs = RECORD["queries"][1], RECORD["documents"]
    library = model.rerank(query, docs, top_n=3)
    app = create_app(ServeConfig(batching=True), {"colbert-tiny": model})
    with TestClient(app) as client:
        response = client.post(
            "/v2/rerank",
            json={"model": "colbert-tiny", "query": query, "documents": docs, "top_n": 3},
        )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [h.index for h in library]
    for r, h in zip(results, library, strict=True):
        assert r["relevance_score"] == pytest.approx(h.score, abs=1e-6)


def test_spec_and_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shortlist.cli import cli

    spec = parse_spec(f"colbert:{DATA / 'plain'}?query_length=8&aggregate=first")
    assert spec.kind == "colbert" and dict(spec.params) == {"query_length": 8,
                                                            "aggregate": "first"}
    reranker = load_reranker(str(spec))
    assert isinstance(reranker, ColbertReranker) and reranker.settings.query_length == 8
    with pytest.raises(SpecError, match="unknown parameter 'backend'"):
        parse_spec(f"colbert:{DATA / 'plain'}?backend=onnx")

    docs = tmp_path / "d.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                            for i, t in enumerate(RECORD["documents"])))
    query = RECORD["queries"][0]
    result = CliRunner().invoke(cli, ["rerank", query, "--model", f"colbert:{DATA / 'default'}",
                                      "--docs", str(docs), "--json", "--top-n", "3"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    want = np.asarray(RECORD["variants"]["default"]["pairwise"][0])
    assert [r["index"] for r in out["results"]] == list(np.argsort(-want, kind="stable")[:3])
    for r in out["results"]:
        assert r["raw_score"] == pytest.approx(want[r["index"]], abs=1e-4)


# ---- bad input ---------------------------------------------------------------------


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA / name, tmp_path / name))


def test_not_a_colbert_folder(tmp_path: Path) -> None:
    from models import build_tiny_cross_encoder

    cross = build_tiny_cross_encoder(tmp_path / "cross", "bert", 1)
    with pytest.raises(ModelLoadError, match="not a ColBERT checkpoint: no modules.json"):
        ColbertReranker(str(cross))
    with pytest.raises(ModelLoadError, match="does not exist"):
        ColbertReranker(str(tmp_path / "missing" / "x"))


def test_checkpoint_without_projection(tmp_path: Path) -> None:
    folder = _copy("default", tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(
        [m for m in modules if not m["type"].endswith("Dense")]
        + [{"idx": 1, "name": "1", "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling"}]))
    with pytest.raises(ModelLoadError, match="no Dense projection.*bi-encoder:PATH"):
        ColbertReranker(str(folder))


def test_stanford_checkpoint_without_projection(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = _copy("stanford", tmp_path)
    weights = load_file(str(folder / "model.safetensors"))
    del weights["linear.weight"]
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"HF_ColBERT checkpoint keeps its projection"):
        ColbertReranker(str(folder))


def test_marker_missing_from_vocabulary(tmp_path: Path) -> None:
    folder = _copy("default", tmp_path)
    path = folder / "config_sentence_transformers.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "query_prefix": "[QUERY]"}))
    with pytest.raises(ModelLoadError, match=r"marker token '\[QUERY\]' is not in"):
        ColbertReranker(str(folder))


def test_untrusted_activation(tmp_path: Path) -> None:
    folder = _copy("default", tmp_path)
    path = folder / "1_Dense" / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()),
                                "activation_function": "evil.module.Act"}))
    with pytest.raises(ModelLoadError, match="not a torch module"):
        ColbertReranker(str(folder))
    config = json.loads(path.read_text())
    del config["activation_function"]
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="names no activation_function"):
        ColbertReranker(str(folder))


def test_bad_options() -> None:
    path = str(DATA / "default")
    with pytest.raises(InvalidInputError, match="unknown aggregate"):
        ColbertReranker(path, aggregate="median")
    with pytest.raises(InvalidInputError, match="window_stride must be in"):
        ColbertReranker(path, window_stride=100)
    with pytest.raises(InvalidInputError, match="query_length leaves no room"):
        ColbertReranker(path, query_length=3)
    with pytest.raises(InvalidInputError, match="batch_tokens"):
        ColbertReranker(path, batch_tokens=8)
    with pytest.raises(InvalidInputError, match="max_chunks_per_doc must be >= 1"):
        ColbertReranker(path).plan("q", ["d"], RerankOptions(max_chunks_per_doc=0))


# ---- PyLate itself, where it is installed ---------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("pylate") is None,
    reason="pylate is not installed (it pins sentence-transformers/transformers versions "
    "other than shortlist's; see tests/data/make_colbert_fixture.py for its side venv)",
)
def test_live_pylate_agreement() -> None:
    import torch
    from pylate import models as pylate_models
    from pylate.scores import colbert_scores_pairwise

    queries = ["which river runs by the city", "python: find a file path!"]
    docs = ["The river runs by the old city.", "open(path) reads a file; find it fast",
            "  bread and apples  "]
    for variant in VARIANTS:
        theirs = pylate_models.ColBERT(str(DATA / variant), device="cpu")
        ours = ColbertReranker(str(DATA / variant))
        q = theirs.encode(queries, is_query=True)
        d = theirs.encode(docs, is_query=False)
        for qi, query in enumerate(queries):
            want = [float(colbert_scores_pairwise([torch.from_numpy(q[qi])],
                                                  [torch.from_numpy(x)])[0]) for x in d]
            got = ours.score_pairs([(query, doc) for doc in docs])
            assert np.allclose(got, want, atol=1e-4, rtol=0)


def test_eval_and_pipeline(tmp_path: Path) -> None:
    """`shortlist eval` runs a colbert pipeline beside a plain one; the pipeline's scores
    are the reranker's own."""
    from clirun import run_cli
    from shortlist.pipeline import Pipeline
    from shortlist.store.index import Index
    from shortlist.types import Document

    data = tmp_path / "ds"
    (data / "qrels").mkdir(parents=True)
    docs = RECORD["documents"]
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)))
    (data / "queries.jsonl").write_text("".join(
        json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(RECORD["queries"])))
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td2\t1\n")
    spec = f"bm25+colbert:{DATA / 'default'}"
    out = tmp_path / "r.json"
    result = run_cli("eval", str(data), "--pipeline", "bm25", "--pipeline", f"c={spec}",
                     "-k", "5", "--model", "hashing", "--json", str(out),
                     "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.stderr
    names = {row["pipeline"] for row in json.loads(out.read_text())["summary"]}
    assert {"bm25", "c"} <= names

    index = Index.create(tmp_path / "i", [Document(f"d{i}", t) for i, t in enumerate(docs)],
                         encoder="hashing:32")
    pipeline = Pipeline.from_spec(spec, index, k=5, top_n=3)
    ranking = pipeline.run(RECORD["queries"][0])
    direct = ColbertReranker(str(DATA / "default")).score_pairs(
        [(RECORD["queries"][0], h.text) for h in ranking])
    assert np.allclose([h.raw_score for h in ranking], direct, atol=1e-6)
