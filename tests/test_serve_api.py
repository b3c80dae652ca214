"""The HTTP service against a real uvicorn server on loopback, through plain HTTP.

The official Cohere SDK's view of the same server is in test_serve_cohere_sdk.py, which
alone needs that SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="fastapi not installed: pip install -e '.[serve]'")

from serve_fakes import (
    DOCS,
    QUERY,
    ApiLikeReranker,
    OverlapScorer,
    WindowedScorer,
    make_index,
    running,
)
from shortlist.pipeline import Pipeline
from shortlist.retrieve.stages import first_stage
from shortlist.serve.app import ServeConfig, create_app
from shortlist.store.index import Index

CONFIG = ServeConfig(max_documents=20, max_top_n=10, max_request_bytes=20_000)


@pytest.fixture(scope="module")
def scorer() -> OverlapScorer:
    return OverlapScorer()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return make_index(tmp_path_factory.mktemp("serve") / "index")


@pytest.fixture(scope="module")
def base_url(scorer: OverlapScorer, index: Index) -> Iterator[str]:
    rerankers = {"overlap": scorer, "windowed": WindowedScorer(), "api": ApiLikeReranker()}
    with running(create_app(CONFIG, rerankers, index)) as url:
        yield url


@pytest.fixture(scope="module")
def bare_url(scorer: OverlapScorer) -> Iterator[str]:
    with running(create_app(CONFIG, {"overlap": scorer})) as url:
        yield url


def test_model_by_spec_name_and_default(base_url: str) -> None:
    def order(model: str) -> list[int]:
        body = {"model": model, "query": QUERY, "documents": DOCS}
        r = httpx.post(f"{base_url}/v2/rerank", json=body)
        assert r.status_code == 200, r.text
        return [x["index"] for x in r.json()["results"]]

    assert order("overlap") == order("fake:overlap") == order("default")


def test_unknown_model_is_404_and_never_loaded(base_url: str) -> None:
    body = {"model": "cross-encoder:/etc/passwd", "query": QUERY, "documents": DOCS}
    r = httpx.post(f"{base_url}/v2/rerank", json=body)
    assert r.status_code == 404
    assert "not served" in r.json()["message"]
    assert r.json()["error"]["type"] == "model_not_served_error"


def test_window_plan_batches_windows_and_takes_best(base_url: str) -> None:
    # 4-word windows: the long document's best window holds all of "big cat garden".
    long_doc = "unrelated words at the start big cat garden then more filler words"
    r = httpx.post(
        f"{base_url}/v2/rerank",
        json={"model": "windowed", "query": "big cat garden", "documents": ["cat", long_doc]},
    )
    assert r.status_code == 200, r.text
    assert [x["index"] for x in r.json()["results"]] == [1, 0]
    # max_tokens_per_doc reaches the plan (windows of 1 word: no window holds 2 query words).
    r = httpx.post(
        f"{base_url}/v2/rerank",
        json={
            "model": "windowed",
            "query": "big cat garden",
            "documents": ["cat", long_doc],
            "max_tokens_per_doc": 1,
        },
    )
    scores = [x["relevance_score"] for x in r.json()["results"]]
    assert scores[0] == pytest.approx(scores[1])
    assert "warnings" not in r.json()["meta"]


def test_unsupported_option_is_reported_not_silently_dropped(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v2/rerank",
        json={"model": "overlap", "query": QUERY, "documents": DOCS, "max_tokens_per_doc": 64},
    )
    assert r.status_code == 200
    assert r.json()["meta"]["warnings"] == [
        "max_tokens_per_doc is not supported by this model and was ignored"
    ]


def test_non_pair_scorer_reranker_is_called_directly(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v2/rerank", json={"model": "api", "query": QUERY, "documents": DOCS[:3]}
    )
    assert r.status_code == 200
    assert [x["index"] for x in r.json()["results"]] == [2, 1, 0]


def test_tei_rerank(base_url: str, scorer: OverlapScorer) -> None:
    direct = scorer.rerank(QUERY, DOCS)
    r = httpx.post(f"{base_url}/rerank", json={"query": QUERY, "texts": DOCS})
    assert r.status_code == 200
    body = r.json()
    assert [x["index"] for x in body] == [h.index for h in direct]
    assert [x["score"] for x in body] == pytest.approx([h.calibrated_score for h in direct])
    assert all("text" not in x for x in body)
    r = httpx.post(
        f"{base_url}/rerank",
        json={
            "query": QUERY,
            "texts": DOCS,
            "raw_scores": True,
            "return_text": True,
            "truncate": True,
            "truncation_direction": "Left",
        },
    )
    body = r.json()
    assert [x["score"] for x in body] == pytest.approx([h.raw_score for h in direct])
    assert [x["text"] for x in body] == [DOCS[h.index] for h in direct]
    # Hand-computed: "the big garden has a cat" shares big, cat, garden, the; others: has, a.
    assert body[0] == {"index": 4, "score": pytest.approx(4 - 0.2), "text": DOCS[4]}


def test_search_runs_the_library_pipeline(
    base_url: str, index: Index, scorer: OverlapScorer
) -> None:
    r = httpx.post(
        f"{base_url}/v1/search",
        json={"query": "big cat garden", "k": 4, "top_n": 2, "filter": {"lang": "en"},
              "mode": "bm25"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "big cat garden"
    pipeline = Pipeline(first_stage(index, "bm25"), scorer, k=4, top_n=2)
    want = pipeline.run("big cat garden", filter={"lang": "en"})
    results = body["results"]
    assert [h["id"] for h in results] == want.ids
    assert [h["score"] for h in results] == [h.score for h in want]
    assert [h["first_stage_rank"] for h in results] == [h.first_stage_rank for h in want]
    assert [h["rank"] for h in results] == [1, 2]
    assert set(results[0]) >= {
        "id",
        "doc_id",
        "rank",
        "score",
        "first_stage_rank",
        "first_stage_score",
        "text",
        "metadata",
        "citation",
    }
    assert results[0]["metadata"] == {"lang": "en"}
    assert [h["citation"] for h in results] == [h.doc_id for h in want]  # no source: the id
    assert {"retrieve", "retrieve.bm25", "rerank", "total"} <= set(body["timings_ms"])


def test_search_without_rerank_and_with_mode(base_url: str, index: Index) -> None:
    r = httpx.post(
        f"{base_url}/v1/search",
        json={"query": "big cat garden", "k": 4, "top_n": 2, "rerank": False, "mode": "dense"},
    )
    assert r.status_code == 200
    want = index.search("big cat garden", k=2, mode="dense")
    assert [h["id"] for h in r.json()["results"]] == want.ids
    assert [h["first_stage_rank"] for h in r.json()["results"]] == [1, 2]
    assert "rerank" not in r.json()["timings_ms"]
    assert "retrieve.dense" in r.json()["timings_ms"]
    r = httpx.post(f"{base_url}/v1/search", json={"query": "cat", "rerank": "nope"})
    assert r.status_code == 404


def test_search_without_index_is_404_json(bare_url: str) -> None:
    r = httpx.post(f"{bare_url}/v1/search", json={"query": "cat"})
    assert r.status_code == 404
    assert "no index is served" in r.json()["message"]


def test_health_ready_openapi(base_url: str) -> None:
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{base_url}/ready").json()
    assert ready["status"] == "ready" and ready["index"] is True
    assert {"overlap", "fake:overlap", "windowed", "api"} <= set(ready["models"])
    spec = httpx.get(f"{base_url}/openapi.json").json()
    assert {"/v1/rerank", "/v2/rerank", "/rerank", "/v1/search"} <= set(spec["paths"])


@pytest.mark.parametrize(
    ("content", "status", "fragment"),
    [
        (b"", 422, "body"),
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 422, "invalid request"),
        (json.dumps({"query": "q", "documents": []}).encode(), 422, "documents"),
        (json.dumps({"query": "", "documents": ["a"]}).encode(), 422, "query"),
        (json.dumps({"query": "q", "documents": ["a"], "top_n": 0}).encode(), 422, "top_n"),
        (json.dumps({"query": "q", "documents": [7]}).encode(), 422, "documents"),
    ],
)
def test_bad_bodies_are_4xx_json(base_url: str, content: bytes, status: int, fragment: str) -> None:
    r = httpx.post(
        f"{base_url}/v1/rerank", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert fragment in r.json()["message"]
    assert r.json()["error"]["message"] == r.json()["message"]


def test_limits_name_the_limit(base_url: str) -> None:
    r = httpx.post(
        f"{base_url}/v2/rerank", json={"model": "overlap", "query": "q", "documents": ["a"] * 21}
    )
    assert r.status_code == 422
    assert "max_documents=20" in r.json()["message"]
    r = httpx.post(
        f"{base_url}/v2/rerank",
        json={"model": "overlap", "query": "q", "documents": ["a"], "top_n": 11},
    )
    assert r.status_code == 422
    assert "max_top_n=10" in r.json()["message"]
    r = httpx.post(f"{base_url}/v1/search", json={"query": "q", "k": 21})
    assert r.status_code == 422
    assert "max_documents=20" in r.json()["message"]


def test_body_size_limit_by_header_and_by_actual_size(base_url: str) -> None:
    big = json.dumps({"query": "q", "documents": ["x" * 30_000]}).encode()
    r = httpx.post(
        f"{base_url}/v1/rerank", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    assert "max_request_bytes=20000" in r.json()["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    r = httpx.post(
        f"{base_url}/v1/rerank", content=chunks(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_unknown_path_is_json_404(base_url: str) -> None:
    r = httpx.get(f"{base_url}/nope")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "http_error"


def test_auth(scorer: OverlapScorer) -> None:
    app = create_app(ServeConfig(api_key="s3cret"), {"overlap": scorer})
    with running(app) as url:
        body = {"model": "overlap", "query": QUERY, "documents": DOCS}
        assert httpx.post(f"{url}/v2/rerank", json=body).status_code == 401
        wrong = httpx.post(f"{url}/v2/rerank", json=body, headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401
        assert "API key" in wrong.json()["message"]
        ok = httpx.post(f"{url}/v2/rerank", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and len(ok.json()["results"]) == len(DOCS)
        assert httpx.post(f"{url}/rerank", json={"query": "q", "texts": ["a"]}).status_code == 401
        assert httpx.get(f"{url}/health").status_code == 200


def test_metrics(base_url: str) -> None:
    httpx.post(
        f"{base_url}/v2/rerank", json={"model": "overlap", "query": QUERY, "documents": DOCS}
    )
    httpx.post(f"{base_url}/v2/rerank", json={"model": "nope", "query": QUERY, "documents": DOCS})
    httpx.post(f"{base_url}/v1/search", json={"query": "cat"})
    text = httpx.get(f"{base_url}/metrics").text
    assert 'shortlist_requests_total{endpoint="/v2/rerank",status="200"}' in text
    assert 'shortlist_requests_total{endpoint="/v2/rerank",status="404"}' in text
    assert 'shortlist_request_duration_seconds_bucket{endpoint="/v1/search",le="+Inf"}' in text
    for stage in ("retrieve", "rerank", "queue"):
        assert f'shortlist_stage_duration_seconds_count{{stage="{stage}"}}' in text
    assert 'shortlist_batch_pairs_count{model="overlap"}' in text
    assert 'shortlist_queue_depth{model="overlap"} 0.0' in text


@pytest.mark.parametrize("batching", [True, False])
def test_served_cross_encoder_applies_max_tokens_per_doc(
    tmp_path_factory: pytest.TempPathFactory, batching: bool
) -> None:
    """A real cross-encoder behind the server: v2's max_tokens_per_doc cuts each document,
    with batching on and off, and the scores equal the library's on the cut documents."""
    pytest.importorskip("torch")
    from models import build_tiny_cross_encoder
    from shortlist.rerank.cross_encoder import CrossEncoderReranker

    folder = build_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "bert", "bert", 1)
    reranker = CrossEncoderReranker(str(folder), max_length=32, window_stride=4)
    docs = [" ".join(["river", "bread"] * 40), "apple tree grows", " ".join(["cat"] * 90)]
    cut = reranker.cut_texts("cat tree", docs, max_tokens_per_doc=5)
    want = {h.index: h.raw_score for h in reranker.rerank("cat tree", cut)}
    full = {h.index: h.raw_score for h in reranker.rerank("cat tree", docs)}
    assert want != full  # the option matters for these documents
    config = ServeConfig(batching=batching)
    with running(create_app(config, {"ce": reranker})) as url:
        r = httpx.post(
            f"{url}/v2/rerank",
            json={"model": "ce", "query": "cat tree", "documents": docs, "max_tokens_per_doc": 5},
            timeout=30,
        )
    assert r.status_code == 200, r.text
    assert "warnings" not in r.json()["meta"]
    got = {x["index"]: x["relevance_score"] for x in r.json()["results"]}
    expected = reranker.calibrate(np.asarray([want[i] for i in range(3)]))
    assert [got[i] for i in range(3)] == pytest.approx(expected.tolist(), abs=1e-6)
