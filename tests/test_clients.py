"""The clients people already use, against a real server on loopback, each changed only
in its base URL (and given the server's API key): the Cohere SDK (v1 `Client`, v2
`ClientV2` and `AsyncClientV2`), langchain-cohere's `CohereRerank` inside a
`ContextualCompressionRetriever`, LlamaIndex's `CohereRerank` (its default model name)
and TEI postprocessors, shortlist's own `tei:` spec and `shortlist.client.Client`.

The server runs a tiny random-weight cross-encoder under the model names those clients
send, and a BM25 index; every answer is compared with the same reranker called
directly. The client packages come with the `compat` extra (in `dev`); a test whose
package is missing is skipped with the extra named.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")

from models import build_tiny_cross_encoder
from serve_fakes import DOCS, QUERY, make_index, running
from shortlist.client import Client, ServerError, ServerUnreachableError
from shortlist.errors import ProviderAuthError
from shortlist.serve.app import ServeConfig, create_app
from shortlist.types import Ranking

KEY = "compat-s3cret"
NAMES = ("tiny-ce", "rerank-v3.5", "rerank-english-v3.0")
"""What the server answers to: its own name, then the model names the clients send."""


def need(module: str) -> Any:
    reason = f"{module} is not installed: pip install -e '.[compat]'"
    return pytest.importorskip(module, reason=reason)


@pytest.fixture(scope="module")
def reranker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from shortlist.rerank.cross_encoder import CrossEncoderReranker

    folder = build_tiny_cross_encoder(tmp_path_factory.mktemp("compat") / "ce", "bert")
    return CrossEncoderReranker(str(folder), max_length=64, name="tiny-ce")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_index(tmp_path_factory.mktemp("compat-index") / "index")


@pytest.fixture(scope="module")
def base_url(reranker: Any, index: Any) -> Iterator[str]:
    app = create_app(ServeConfig(api_key=KEY), {name: reranker for name in NAMES}, index)
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def direct(reranker: Any) -> Ranking:
    ranking: Ranking = reranker.rerank(QUERY, DOCS)
    return ranking


def close_sdk(client: Any) -> None:
    """Close the connection pool a Cohere SDK client made for itself. The SDK has no
    close(); langchain-cohere and LlamaIndex build their client from the base URL, and
    an unclosed pool's socket is a ResourceWarning, an error under this suite's filters."""
    client._client_wrapper.httpx_client.httpx_client.close()


def order(ranking: Ranking) -> list[int]:
    return [h.index for h in ranking if h.index is not None]


def test_cohere_v1_and_v2_clients(base_url: str, direct: Ranking) -> None:
    cohere = need("cohere")
    with httpx.Client() as http:
        v1 = cohere.Client(base_url=base_url, api_key=KEY, httpx_client=http)
        one = v1.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=3)
        v2 = cohere.ClientV2(base_url=base_url, api_key=KEY, httpx_client=http)
        two = v2.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=3)
        with pytest.raises(cohere.errors.NotFoundError):
            v2.rerank(model="rerank-v9", query=QUERY, documents=DOCS)
    for got in (one, two):
        assert [r.index for r in got.results] == order(direct)[:3]
        assert [r.relevance_score for r in got.results] == pytest.approx(
            [h.score for h in direct.hits[:3]], abs=1e-5
        )


def test_cohere_async_v2_client(base_url: str, direct: Ranking) -> None:
    cohere = need("cohere")

    async def call() -> Any:
        async with httpx.AsyncClient() as http:
            client = cohere.AsyncClientV2(base_url=base_url, api_key=KEY, httpx_client=http)
            return await asyncio.gather(
                *(client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS) for _ in range(3))
            )

    answers = asyncio.run(call())
    assert all([r.index for r in got.results] == order(direct) for got in answers)


def test_langchain_cohere_rerank_in_contextual_compression(
    base_url: str, index: Any, reranker: Any
) -> None:
    need("langchain_cohere")
    retrievers = need("langchain_classic.retrievers")
    from langchain_cohere import CohereRerank

    from shortlist.integrations.langchain import ShortlistRetriever

    first_stage = ShortlistRetriever(index=index, mode="bm25", k=5, top_n=5)
    compressor = CohereRerank(model="rerank-v3.5", cohere_api_key=KEY, base_url=base_url, top_n=2)
    retriever = retrievers.ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=first_stage
    )
    try:
        docs = retriever.invoke("cat garden")
    finally:
        close_sdk(compressor.client)
    candidates = [d.page_content for d in first_stage.invoke("cat garden")]
    expected = reranker.rerank("cat garden", candidates, top_n=2)
    assert [d.page_content for d in docs] == [candidates[i] for i in order(expected)]
    assert [d.metadata["relevance_score"] for d in docs] == pytest.approx(
        [h.score for h in expected], abs=1e-5
    )


def nodes(texts: list[str]) -> list[Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    return [NodeWithScore(node=TextNode(text=t), score=0.0) for t in texts]


def test_llamaindex_cohere_rerank_with_its_default_model(base_url: str, direct: Ranking) -> None:
    need("llama_index.postprocessor.cohere_rerank")
    from llama_index.postprocessor.cohere_rerank import CohereRerank

    rerank = CohereRerank(api_key=KEY, base_url=base_url, top_n=3)
    assert rerank.model == "rerank-english-v3.0"  # what it sends unless told otherwise
    try:
        got = rerank.postprocess_nodes(nodes(DOCS), query_str=QUERY)
    finally:
        close_sdk(rerank._client)
    assert [n.node.get_content() for n in got] == [DOCS[i] for i in order(direct)[:3]]


def test_llamaindex_tei_rerank(base_url: str, direct: Ranking) -> None:
    need("llama_index.postprocessor.tei_rerank")
    from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

    rerank = TextEmbeddingInference(base_url=base_url, auth_token=f"Bearer {KEY}", top_n=3)
    got = rerank.postprocess_nodes(nodes(DOCS), query_str=QUERY)
    assert [n.node.get_content() for n in got] == [DOCS[i] for i in order(direct)[:3]]
    calibrated = {h.index: h.calibrated_score for h in direct}
    assert [n.score for n in got] == pytest.approx(
        [calibrated[i] for i in order(direct)[:3]], abs=1e-5
    )


def test_tei_spec_reads_its_key_from_the_variable_it_names(
    base_url: str, direct: Ranking, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shortlist.rerank.registry import load_reranker

    spec = f"tei:{base_url}?api_key_env=SHORTLIST_TEST_TEI_KEY"
    monkeypatch.delenv("SHORTLIST_TEST_TEI_KEY", raising=False)
    with pytest.raises(ProviderAuthError, match="variable SHORTLIST_TEST_TEI_KEY .* is not set"):
        load_reranker(spec)
    monkeypatch.setenv("SHORTLIST_TEST_TEI_KEY", KEY)
    with load_reranker(spec) as tei:  # type: ignore[attr-defined]
        got = tei.rerank(QUERY, DOCS)
        assert KEY not in tei.name and KEY not in repr(tei)
    assert order(got) == order(direct)
    monkeypatch.setenv("SHORTLIST_TEST_TEI_KEY", "wrong")
    with load_reranker(spec, max_retries=0) as tei, pytest.raises(ProviderAuthError):  # type: ignore[attr-defined]
        tei.rerank(QUERY, DOCS)
    with pytest.raises(Exception, match="one environment variable"):
        load_reranker(f"tei:{base_url}?api_key_env=bad-name")
    with pytest.raises(Exception, match="do not put the API key in the spec") as err:
        load_reranker(f"tei:{base_url}?api_key={KEY}")
    assert KEY not in str(err.value)


def test_shortlist_client_search_rerank_and_health(
    base_url: str, direct: Ranking, index: Any
) -> None:
    with Client(base_url, api_key=KEY) as client:
        assert client.health()
        ready = client.ready()
        assert ready.ready and ready.index and set(NAMES) <= set(ready.models)
        reranked = client.rerank(QUERY, DOCS, model="rerank-v3.5", top_n=3, request_id="r-1")
        found = client.search("cat garden", k=5, top_n=3, mode="bm25")
        first_only = client.search("cat garden", k=5, top_n=3, mode="bm25", rerank=False)
        with pytest.raises(ServerError) as missing:
            client.rerank(QUERY, DOCS, model="rerank-v9")
        assert KEY not in repr(client)
    assert order(reranked.ranking) == order(direct)[:3]
    assert [h.text for h in reranked.ranking] == [DOCS[i] for i in order(direct)[:3]]
    assert reranked.model == "tiny-ce" and reranked.request_id == "r-1"
    assert reranked.warnings == ()
    assert len(found.ranking) == 3 and found.ranking.hits[0].first_stage_rank is not None
    assert {"retrieve", "rerank"} <= set(found.ranking.timings_ms)
    expected = index.search("cat garden", k=3, mode="bm25")
    assert first_only.ranking.ids == expected.ids
    assert missing.value.status == 404 and missing.value.kind == "model_not_served_error"
    assert "rerank-v9" in str(missing.value)


def test_shortlist_client_errors(base_url: str) -> None:
    with Client(base_url) as anonymous, pytest.raises(ServerError) as denied:
        anonymous.rerank(QUERY, DOCS)
    assert denied.value.status == 401 and "Authorization: Bearer" in str(denied.value)
    with socket_closed_port() as url, Client(url, timeout=2) as nobody:
        assert nobody.health() is False
        with pytest.raises(ServerUnreachableError, match="shortlist serve"):
            nobody.search("q")


class socket_closed_port:
    """A loopback URL where nothing listens (the port was free a moment ago)."""

    def __enter__(self) -> str:
        from serve_fakes import free_port

        return f"http://127.0.0.1:{free_port()}"

    def __exit__(self, *exc: object) -> None:
        return None


def test_client_checks_its_base_url(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="http://"):
        Client("127.0.0.1:8000")
