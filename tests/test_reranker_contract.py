"""Every reranker kind that runs offline keeps the reranker contract, and is served with
the library's scores: through the real HTTP app, batching on and off, and through
`/v1/search` as the library `Pipeline` runs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")

from api_fakes import FakeRerankServer
from listwise_fakes import FakeChatServer
from reranker_contract import check_reranker_contract, check_served_matches_library
from shortlist.pipeline import Pipeline
from shortlist.rerank.base import Reranker
from shortlist.rerank.registry import load_reranker
from shortlist.retrieve.encoders import HashingEncoder
from shortlist.retrieve.stages import first_stage
from shortlist.serve.app import ServeConfig, create_app
from shortlist.store.index import Index
from shortlist.types import Document

Factory = Callable[[], Reranker]
KEY = "test-key"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    pytest.importorskip("torch")
    from models import build_tiny_cross_encoder

    root = tmp_path_factory.mktemp("contract-models")
    return {labels: build_tiny_cross_encoder(root / f"bert-{labels}", "bert", labels)
            for labels in (1, 2)}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export-cache")


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, str]]:
    servers: dict[str, FakeRerankServer | FakeChatServer] = {
        flavor: FakeRerankServer(flavor, api_key=KEY).start()
        for flavor in ("cohere", "voyage", "jina", "tei")
    }
    servers["listwise"] = FakeChatServer(model="fake-llm").start()
    try:
        yield {flavor: s.url for flavor, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()


def _cross(tiny: dict[int, Path], cache: Path, labels: int, backend: str) -> Reranker:
    module = {"onnx": "onnxruntime", "openvino": "openvino"}.get(backend)
    if module is not None:
        pytest.importorskip(module)
    spec = f"cross-encoder:{tiny[labels]}?backend={backend}&max_length=32"
    return load_reranker(spec, cache_dir=cache)


KINDS: dict[str, Callable[[dict[int, Path], Path, dict[str, str]], tuple[Reranker, int | None]]] = {
    "none": lambda t, c, f: (load_reranker("none"), None),
    "bi-encoder": lambda t, c, f: (load_reranker("bi-encoder:hashing:64"), None),
    "cross-encoder-torch": lambda t, c, f: (_cross(t, c, 1, "torch"), None),
    "cross-encoder-torch-2-labels": lambda t, c, f: (_cross(t, c, 2, "torch"), None),
    "cross-encoder-onnx": lambda t, c, f: (_cross(t, c, 1, "onnx"), None),
    "cross-encoder-openvino": lambda t, c, f: (_cross(t, c, 1, "openvino"), None),
    "cascade": lambda t, c, f: (
        load_reranker(f"cascade:bi-encoder:hashing:64>3>cross-encoder:{t[1]}?max_length=32"), 3
    ),
    "cohere": lambda t, c, f: (
        load_reranker("cohere:rerank-v3.5", api_key=KEY, base_url=f["cohere"]), None
    ),
    "voyage": lambda t, c, f: (
        load_reranker("voyage:rerank-2", api_key=KEY, base_url=f["voyage"]), None
    ),
    "jina": lambda t, c, f: (load_reranker("jina:jina-m", api_key=KEY, base_url=f["jina"]), None),
    "tei": lambda t, c, f: (load_reranker(f"tei:{f['tei']}", api_key=KEY), None),
    # windows of 3 moved by 2, so the 8 served texts take several windows
    "listwise": lambda t, c, f: (
        load_reranker(f"listwise:{f['listwise']}/v1?model=fake-llm&window=3&step=2"), None
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_contract_and_served_scores(
    kind: str, tiny: dict[int, Path], cache_dir: Path, fakes: dict[str, str]
) -> None:
    reranker, keeps = KINDS[kind](tiny, cache_dir, fakes)
    check_reranker_contract(reranker, keeps=keeps)
    for batching in (True, False):
        check_served_matches_library(reranker, batching=batching)


# ---- /v1/search is the library pipeline ----------------------------------------------

DOCS = [
    Document(f"d{i}", text, metadata={"lang": "en" if i % 3 else "de"})
    for i, text in enumerate(
        [
            "solar panels store energy in batteries",
            "the roman empire spans centuries",
            "lithium batteries for solar power storage",
            "banana bread with walnuts",
            "panels on the roof produce power",
            "energy storage keeps the lights on at night",
            "a history of batteries and cells",
        ]
    )
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    return Index.create(tmp_path_factory.mktemp("search") / "i", DOCS, encoder="hashing:64")


@pytest.mark.parametrize("kind", ["none", "bi-encoder", "cross-encoder-torch", "cascade"])
@pytest.mark.parametrize("batching", [True, False])
def test_search_equals_library_pipeline(
    kind: str, batching: bool, index: Index, tiny: dict[int, Path], cache_dir: Path,
    fakes: dict[str, str],
) -> None:
    from fastapi.testclient import TestClient

    reranker, _ = KINDS[kind](tiny, cache_dir, fakes)
    query = "solar batteries storage"
    want = Pipeline(first_stage(index, "hybrid"), reranker, k=6, top_n=4).run(query)
    app = create_app(ServeConfig(batching=batching), {"r": reranker}, index)
    with TestClient(app) as client:
        got = client.post("/v1/search", json={"query": query, "k": 6, "top_n": 4})
    assert got.status_code == 200, got.text
    results = got.json()["results"]
    assert [r["id"] for r in results] == want.ids
    for r, h in zip(results, want, strict=True):
        assert abs(r["score"] - h.score) <= 1e-6
        assert r["first_stage_rank"] == h.first_stage_rank
    assert set(got.json()["timings_ms"]) == set(want.timings_ms)


class CountingEncoder(HashingEncoder):
    """The index's hashing encoder, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__(dim=64)
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], **kw: Any) -> np.ndarray:
        self.texts.extend(texts)
        return super().encode(texts, **kw)


@pytest.mark.parametrize("batching", [True, False])
def test_served_bi_encoder_reuses_the_index_vectors(index: Index, batching: bool) -> None:
    """Regression: /v1/search re-encoded every candidate instead of reading the index.
    Now the only text embedded is the query, once, shared by the first stage and the
    bi-encoder."""
    from fastapi.testclient import TestClient

    encoder = CountingEncoder()
    counted = Index.open(index.path, encoder=encoder)
    app = create_app(ServeConfig(batching=batching), {"bi": load_reranker("bi-encoder:hashing:64")},
                     counted)
    with TestClient(app) as client:
        r = client.post("/v1/search", json={"query": "solar batteries", "k": 6})
        assert r.status_code == 200, r.text
        assert len(r.json()["results"]) > 1
        assert encoder.texts == ["solar batteries"]
        r = client.post("/v1/search", json={"query": "roman bread", "k": 6, "mode": "bm25"})
        assert r.status_code == 200, r.text
    assert encoder.texts == ["solar batteries", "roman bread"]


def test_served_bi_encoder_score_is_the_library_score() -> None:
    """Regression: the server calibrated a bi-encoder's cosine with a sigmoid (0.7311)."""
    from fastapi.testclient import TestClient

    reranker = load_reranker("bi-encoder:hashing:64")
    assert reranker.rerank("red apple", ["red apple"])[0].score == pytest.approx(1.0)
    for batching in (True, False):
        with TestClient(create_app(ServeConfig(batching=batching), {"bi": reranker})) as client:
            r = client.post("/v2/rerank", json={"model": "bi", "query": "red apple",
                                                "documents": ["red apple"]})
        assert r.json()["results"][0]["relevance_score"] == pytest.approx(1.0, abs=1e-6)


def test_search_defaults_to_bm25_on_an_index_without_vectors(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    sparse = Index.create(tmp_path / "sparse", DOCS, dense=False)
    app = create_app(ServeConfig(), {"none": load_reranker("none")}, sparse)
    with TestClient(app) as client:
        r = client.post("/v1/search", json={"query": "solar batteries", "k": 3})
    assert r.status_code == 200, r.text
    assert "retrieve.bm25" in r.json()["timings_ms"]
    assert r.json()["results"][0]["id"] == sparse.search("solar batteries", mode="bm25").ids[0]


def test_served_bi_encoder_shares_the_index_encoder(index: Index) -> None:
    from shortlist.rerank.bi_encoder import BiEncoderReranker

    app = create_app(ServeConfig(), {"bi": load_reranker("bi-encoder:hashing:64")}, index)
    served = app.state.slots["bi"].reranker
    assert isinstance(served, BiEncoderReranker)
    assert served.encoder is index.encoder  # one model in memory, batcher included
